"""Named read operations for `crawler report`: the aggregates and capped tables of one run.

Every chart is a GROUP BY (response times binned with `width_bucket`) and every table is
its first `TABLE_ROWS` rows with its total from a window count, so the report reads the
same few hundred rows whatever the size of the crawl; `report_tables` reads the tables.
JIT compilation is off for the report's transaction: the planner cannot see how many links
an array holds, overestimates, and would spend seconds compiling one-off statements.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crawler.db import report_tables
from crawler.db.database import Database
from crawler.db.reports import resolve
from crawler.db.runs import errors_of_run, pages_of_run
from crawler.errors import ConfigError
from crawler.report.data import (
    Count,
    Histogram,
    ReportData,
    RunOutcomes,
    Summary,
)

# Settings left out of the report: where the database is (a URL may hold a password) and
# the seeds, shown on their own.
_NOT_SHOWN = frozenset({"database_url", "data_dir", "seeds"})
HISTOGRAM_BINS = 30
RUNS_SHOWN = 30  # the latest runs up to the report's in the runs chart
CONTENT_TYPES_SHOWN = 8

# Pages and errors as every other place counts them (crawler.db.runs): URLs, each once.
_SUMMARY = text(
    f"""
    SELECT c.name, c.seeds, c.config, r.status, r.started_at, r.finished_at,
           f.fetches, {errors_of_run("r.id")} AS errors, {pages_of_run("r.id")} AS pages,
           f.bytes, f.first_at, f.last_at,
           (SELECT count(*) FROM pages p WHERE p.crawl_id = c.id AND p.gone_at IS NULL)
               AS current_pages,
           (SELECT count(*) FROM crawl_runs a WHERE a.crawl_id = c.id) AS runs
    FROM crawl_runs r
    JOIN crawls c ON c.id = r.crawl_id
    CROSS JOIN LATERAL (
        SELECT count(*) AS fetches,
               coalesce(sum(bytes), 0) AS bytes,
               min(fetched_at) AS first_at, max(fetched_at) AS last_at
        FROM fetches WHERE run_id = r.id
    ) f
    WHERE r.id = :run
    """
)
_STATUSES = text(
    "SELECT status, count(*) AS n FROM fetches WHERE run_id = :run "
    "GROUP BY status ORDER BY status NULLS LAST"
)
# The 99th percentile sets the histogram's range, so one stalled fetch does not squash it.
_P99 = text(
    "SELECT percentile_disc(0.99) WITHIN GROUP (ORDER BY elapsed_ms) FROM fetches "
    "WHERE run_id = :run AND status IS NOT NULL"
)
_BINS = text(
    "SELECT width_bucket(elapsed_ms, 0, :top, :bins) AS bin, count(*) AS n FROM fetches "
    "WHERE run_id = :run AND status IS NOT NULL GROUP BY bin ORDER BY bin"
)
_DEPTHS = text(
    "SELECT depth, count(*) AS n FROM pages WHERE crawl_id = :crawl AND gone_at IS NULL "
    "GROUP BY depth ORDER BY depth"
)
_CONTENT_TYPES = text(
    """
    SELECT coalesce(nullif(lower(btrim(split_part(content_type, ';', 1))), ''), '(none)')
               AS label,
           count(*) AS n
    FROM fetches WHERE run_id = :run AND status IS NOT NULL
    GROUP BY label ORDER BY n DESC, label
    """
)
_ERROR_KINDS = text(
    "SELECT error_kind AS label, count(*) AS n FROM fetches "
    "WHERE run_id = :run AND error_kind IS NOT NULL GROUP BY label ORDER BY n DESC, label"
)
_RUNS = text(
    """
    SELECT r.id, r.started_at,
           count(*) FILTER (WHERE rc.outcome = 'new') AS new,
           count(*) FILTER (WHERE rc.outcome = 'changed') AS changed,
           count(*) FILTER (WHERE rc.outcome = 'unchanged') AS unchanged,
           count(*) FILTER (WHERE rc.outcome = 'gone') AS gone
    FROM (SELECT id, started_at FROM crawl_runs WHERE crawl_id = :crawl AND id <= :run
          ORDER BY id DESC LIMIT :shown) r
    LEFT JOIN run_changes rc ON rc.run_id = r.id
    GROUP BY r.id, r.started_at
    ORDER BY r.id
    """
)


async def _counts(session: AsyncSession, statement: Any, params: dict[str, Any]) -> list[Count]:
    rows = (await session.execute(statement, params)).all()
    return [Count(str(r[0]), int(r[1])) for r in rows]


def _nice_width(top: int, bins: int) -> int:
    """The smallest 1-2-5 × 10^k width (ms) whose `bins` bins reach `top`."""
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale * bins >= top:
                return step * scale
        scale *= 10


async def _histogram(session: AsyncSession, run: int) -> Histogram:
    p99 = (await session.execute(_P99, {"run": run})).scalar()
    width = _nice_width(max(int(p99 or 0) + 1, HISTOGRAM_BINS), HISTOGRAM_BINS)
    top = width * HISTOGRAM_BINS
    counts = [0] * HISTOGRAM_BINS
    over = 0
    params = {"run": run, "top": top, "bins": HISTOGRAM_BINS}
    for row in (await session.execute(_BINS, params)).all():
        # width_bucket: 0 below the range (none: times are >= 0), bins + 1 at or above it.
        if row.bin > HISTOGRAM_BINS:
            over += int(row.n)
        else:
            counts[max(int(row.bin), 1) - 1] += int(row.n)
    return Histogram(width=width, counts=tuple(counts), over=over)


def _top(counts: list[Count], shown: int) -> tuple[Count, ...]:
    if len(counts) <= shown:
        return tuple(counts)
    rest = sum(c.count for c in counts[shown - 1 :])
    return (*counts[: shown - 1], Count("other", rest))


async def _summary(session: AsyncSession, crawl_id: int, run: int) -> Summary:
    r = (await session.execute(_SUMMARY, {"run": run})).one()
    end = r.finished_at or r.last_at or r.started_at
    return Summary(
        crawl=str(r.name),
        crawl_id=crawl_id,
        run_id=run,
        status=str(r.status),
        started_at=r.started_at,
        finished_at=r.finished_at,
        duration_s=max((end - r.started_at).total_seconds(), 0.0),
        fetches=int(r.fetches),
        pages=int(r.pages),
        errors=int(r.errors),
        bytes=int(r.bytes),
        current_pages=int(r.current_pages),
        runs=int(r.runs),
        seeds=tuple(r.seeds or ()),
        settings={k: v for k, v in (r.config or {}).items() if k not in _NOT_SHOWN},
    )


async def gather(db: Database, crawl_name: str | None, run_id: int | None) -> ReportData:
    """Everything the report of `run_id` (default: the crawl's latest run) shows."""
    target = await resolve(db, crawl_name, run_id)
    if target.run_id is None:
        raise ConfigError(f"crawl {target.crawl!r} has no runs yet")
    crawl, run = target.crawl_id, target.run_id
    async with db.transaction() as session:
        await session.execute(text("SET LOCAL jit = off"))
        summary = await _summary(session, crawl, run)
        statuses = [
            Count("none" if r.status is None else str(r.status), int(r.n))
            for r in (await session.execute(_STATUSES, {"run": run})).all()
        ]
        histogram = await _histogram(session, run)
        depths = await _counts(session, _DEPTHS, {"crawl": crawl})
        types = await _counts(session, _CONTENT_TYPES, {"run": run})
        kinds = await _counts(session, _ERROR_KINDS, {"run": run})
        runs = [
            RunOutcomes(r.id, r.started_at, r.new, r.changed, r.unchanged, r.gone)
            for r in (
                await session.execute(_RUNS, {"crawl": crawl, "run": run, "shown": RUNS_SHOWN})
            ).all()
        ]
        tables = await report_tables.read(session, crawl, run)
    return ReportData(
        summary=summary,
        generated_at=datetime.now(UTC),
        statuses=tuple(statuses),
        response_times=histogram,
        depths=tuple(depths),
        content_types=_top(types, CONTENT_TYPES_SHOWN),
        error_kinds=tuple(kinds),
        runs=tuple(runs),
        tables=tuple(tables),
    )
