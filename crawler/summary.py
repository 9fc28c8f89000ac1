"""What a run did, as the CLI prints it at the end and `--json` and `crawl_runs.stats` keep it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crawler.kinds import RunStatus
from crawler.records import RunStats


@dataclass
class Summary:
    """What a run did, as printed at the end (and as the --json object)."""

    crawl: str
    run_id: int
    status: RunStatus
    resumed: bool
    stats: RunStats
    db_statements: int = 0
    db_batches: int = 0
    peak_rss_mb: float = 0.0
    exit_code: int = 0
    ignore_robots: bool = False

    def to_json(self) -> dict[str, Any]:
        s = self.stats
        return {
            "crawl": self.crawl,
            "run_id": self.run_id,
            "status": self.status,
            "resumed": self.resumed,
            "pages": s.pages,
            "rendered": s.rendered,
            "fetched": s.fetched,
            "errors": s.errors,
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
