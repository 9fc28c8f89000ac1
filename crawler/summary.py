"""What a run did, as the CLI prints it at the end and `--json` and `crawl_runs.stats` keep it.

Two kinds of figures, kept apart by name: the run's totals (`RunTotals`: its whole life, every
invocation and every joined process, read from the database, the same as `crawl_runs.pages`
and `.errors` and `crawler runs`) and what this invocation (this process) did (`RunStats`).
In the JSON object, `pages`, `fetched` and `errors` are the run's totals, `invocation` holds
this invocation's `pages`, `fetched` and `errors`, and every other count is this invocation's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crawler.kinds import RunStatus
from crawler.records import RunStats


@dataclass(frozen=True, slots=True)
class RunTotals:
    """A run's counts over its whole life (every invocation, every joined process)."""

    pages: int  # URLs fetched with an HTML outcome (new, changed, unchanged), once each
    fetched: int  # URLs completed: done in the frontier, with at least one fetch recorded
    errors: int  # URLs completed whose latest fetch failed, each counted once


@dataclass
class Summary:
    """What a run did, as printed at the end (and as the --json object)."""

    crawl: str
    run_id: int
    status: RunStatus
    resumed: bool
    stats: RunStats  # this invocation's (this process's) counts
    db_statements: int = 0
    db_batches: int = 0
    peak_rss_mb: float = 0.0
    exit_code: int = 0
    ignore_robots: bool = False
    run: RunTotals | None = None  # the run's totals; None when the database could not say

    @property
    def invocation(self) -> RunTotals:
        """This invocation's pages, fetched and errors, to set beside the run's totals."""
        s = self.stats
        return RunTotals(pages=s.pages, fetched=s.fetched, errors=s.errors)

    @property
    def run_differs(self) -> bool:
        """Whether the run's totals are not this invocation's alone (a resumed or joined
        run, or workers that joined this one), so both are worth showing."""
        return self.resumed or (self.run is not None and self.run != self.invocation)

    def to_json(self) -> dict[str, Any]:
        s = self.stats
        run = self.run
        return {
            "crawl": self.crawl,
            "run_id": self.run_id,
            "status": self.status,
            "resumed": self.resumed,
            # The run's totals, as crawl_runs.pages/errors and `crawler runs` have them.
            "pages": None if run is None else run.pages,
            "fetched": None if run is None else run.fetched,
            "errors": None if run is None else run.errors,
            # The rest is this invocation's.
            "invocation": {"pages": s.pages, "fetched": s.fetched, "errors": s.errors},
            "rendered": s.rendered,  # this invocation's
            "retries": s.retries,
            "not_modified": s.not_modified,
            "skipped": s.skipped,
            "queued": s.queued,
            "statuses": {str(k): v for k, v in sorted(s.statuses.items())},
            "error_kinds": dict(sorted(s.error_kinds.items())),
            "bytes": s.bytes,
            "duration_s": round(s.duration, 3),
            "pages_per_second": round(s.pages_per_second, 1),
            "loop_lag_ms": s.loop_lag_ms,
            "db_statements": self.db_statements,
            "db_statements_per_page": round(self.db_statements / s.fetched, 2) if s.fetched else 0,
            "pages_per_write": round(s.fetched / self.db_batches, 1) if self.db_batches else 0,
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "exit_code": self.exit_code,
            "ignore_robots": self.ignore_robots,
        }
