"""The records a report is made of: counts for charts, capped tables, the run's summary.

Built by `crawler.db.report_queries` from SQL aggregates (never from every row of a crawl)
and read by `charts` and `render`. Every table carries the total number of rows it was cut
from and the SQL that gives all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TABLE_ROWS = 100  # rows each table shows; the rest are behind its query

Cell = str | int | float | None


@dataclass(frozen=True, slots=True)
class Count:
    """One bar: a label and how many."""

    label: str
    count: int


@dataclass(frozen=True, slots=True)
class Histogram:
    """Response times in equal-width bins from 0 to `width * len(counts)` milliseconds; the
    fetches slower than that are counted in `over`."""

    width: int
    counts: tuple[int, ...]
    over: int


@dataclass(frozen=True, slots=True)
class RunOutcomes:
    """What one run of the crawl found (from the `run_changes` view)."""

    run_id: int
    started_at: datetime
    new: int
    changed: int
    unchanged: int
    gone: int


@dataclass(frozen=True, slots=True)
class Table:
    """The first rows of a longer list, with its total and the SQL that gives all rows."""

    key: str  # the table's id in the page (and in tests)
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    total: int
    query: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Summary:
    """The run the report is about, and its crawl."""

    crawl: str
    crawl_id: int
    run_id: int
    status: str
    started_at: datetime
    finished_at: datetime | None
    duration_s: float
    fetches: int
    pages: int  # HTML pages stored or found unchanged by the run
    errors: int
    bytes: int
    current_pages: int  # the crawl's pages that are there now
    runs: int  # the crawl's runs in all
    seeds: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Fetches a second over the run's duration."""
        return self.fetches / self.duration_s if self.duration_s > 0 else 0.0


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything one report shows."""

    summary: Summary
    generated_at: datetime
    statuses: tuple[Count, ...]
    response_times: Histogram
    depths: tuple[Count, ...]
    content_types: tuple[Count, ...]
    error_kinds: tuple[Count, ...]
    runs: tuple[RunOutcomes, ...]
    tables: tuple[Table, ...]
