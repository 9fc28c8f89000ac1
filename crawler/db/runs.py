"""Crawls and their runs: create, resume, finish, and read back for reports.

A run's counts have one definition each, over the run's whole life (every invocation, every
joined process), used by the summary's run totals, `crawl_runs` and `crawler runs`: `pages`
the URLs it fetched with an HTML outcome (new, changed, unchanged), `fetched` the URLs it
completed (done, with a fetch recorded), `errors` those of them whose final outcome in the
run is a failure (however often they were retried).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from crawler.db.database import DB_ERRORS, Database, translate
from crawler.db.frontier import OPEN_ROWS
from crawler.db.host_frontier import PREPARE
from crawler.kinds import RunStatus
from crawler.summary import RunTotals


@dataclass(frozen=True, slots=True)
class CrawlInfo:
    id: int
    name: str
    seeds: tuple[str, ...]
    config: Mapping[str, Any] = field(default_factory=dict)  # its stored settings


@dataclass(frozen=True, slots=True)
class HostPace:
    """How a run's hosts start: request slots each, the delay of a host nothing is known of,
    and whether that delay is fixed (--delay given) or adaptive."""

    slots: int
    first_delay: float
    fixed: bool


@dataclass(frozen=True, slots=True)
class RunInfo:
    id: int
    crawl: CrawlInfo
    resumed: bool


_UPSERT_CRAWL = text(
    """
    INSERT INTO crawls (name, seeds, config)
    VALUES (:name, CAST(:seeds AS text[]), CAST(:config AS jsonb))
    ON CONFLICT (name) DO UPDATE SET
        seeds = CASE WHEN cardinality(EXCLUDED.seeds) > 0 THEN EXCLUDED.seeds ELSE crawls.seeds END,
        config = EXCLUDED.config
    RETURNING id, name, seeds, config
    """
)

_FIND_CRAWL = text("SELECT id, name, seeds, config FROM crawls WHERE name = :name")

_UNFINISHED_RUN = text(
    """
    SELECT id FROM crawl_runs
    WHERE crawl_id = :crawl_id AND status IN ('running', 'interrupted')
    ORDER BY id DESC LIMIT 1
    """
)

_JOIN_RUN = text(
    """
    SELECT id FROM crawl_runs
    WHERE crawl_id = :crawl_id AND status = 'running'
    ORDER BY id DESC LIMIT 1
    """
)

_NEW_RUN = text("INSERT INTO crawl_runs (crawl_id) VALUES (:crawl_id) RETURNING id")

_ENQUEUE_SEEDS = text(
    """
    INSERT INTO frontier (run_id, url, depth)
    SELECT :run_id, u, 0 FROM unnest(CAST(:urls AS text[])) AS u ORDER BY u
    ON CONFLICT (run_id, url) DO NOTHING
    """
)

# A new run of a crawl starts from its seeds and every page it knows, so unchanged pages
# are revalidated (304) and deleted ones found gone even when nothing links to them any more.
_ENQUEUE_KNOWN = text(
    """
    INSERT INTO frontier (run_id, url, depth)
    SELECT :run_id, url, depth FROM pages
    WHERE crawl_id = :crawl_id AND gone_at IS NULL
    ORDER BY url
    ON CONFLICT (run_id, url) DO NOTHING
    """
)

_MARK_RUNNING = text("UPDATE crawl_runs SET status = 'running' WHERE id = :run_id")


def pages_of_run(run: str) -> str:
    """SQL for a run's `pages` (run: an SQL expression for its id): the URLs it fetched with
    an HTML outcome, each counted once (a URL fetched again after a lost lease too)."""
    return f"""(SELECT count(DISTINCT url) FROM fetches
        WHERE run_id = {run} AND outcome IN ('new', 'changed', 'unchanged'))"""


def errors_of_run(run: str) -> str:
    """SQL for a run's `errors` (run: an SQL expression for its id): the URLs done in the
    run whose latest fetch failed. A failed attempt that was retried is not an error."""
    return f"""(SELECT count(*) FROM (
            SELECT DISTINCT ON (url) url, error_kind FROM fetches
            WHERE run_id = {run} ORDER BY url, id DESC
        ) latest
        JOIN frontier fr ON fr.run_id = {run} AND fr.url = latest.url AND fr.state = 'done'
        WHERE latest.error_kind IS NOT NULL)"""


def fetched_of_run(run: str) -> str:
    """SQL for a run's `fetched` (run: an SQL expression for its id): the URLs done in the
    run with at least one fetch recorded (fetched, failed, or refused by robots.txt)."""
    return f"""(SELECT count(*) FROM frontier fr
        WHERE fr.run_id = {run} AND fr.state = 'done'
          AND EXISTS (SELECT 1 FROM fetches f WHERE f.run_id = {run} AND f.url = fr.url))"""


_RUN_TOTALS = text(
    f"""
    SELECT {pages_of_run("CAST(:run_id AS bigint)")} AS pages,
           {fetched_of_run("CAST(:run_id AS bigint)")} AS fetched,
           {errors_of_run("CAST(:run_id AS bigint)")} AS errors
    """
)

# pages and errors: the run's totals the summary counted (stats), so the row and its stats
# agree; counted here only when the summary could not count them.
_FINISH_RUN = text(
    f"""
    UPDATE crawl_runs SET
        status = CASE WHEN status = 'finished' THEN status ELSE :status END,
        finished_at = CASE WHEN :status = 'running' THEN NULL ELSE now() END,
        pages = coalesce(CAST(:pages AS int), {pages_of_run("CAST(:run_id AS bigint)")}),
        errors = coalesce(CAST(:errors AS int), {errors_of_run("CAST(:run_id AS bigint)")}),
        stats = CAST(:stats AS jsonb)
    WHERE id = :run_id
    """
)

# Rows that enter the frontier without canonicalize's checks: the seeds (depth 0).
_OPEN_SEED_ROWS = text(
    "SELECT id, url FROM frontier WHERE run_id = :run_id AND depth = 0 AND state <> 'done'"
)

_FAIL_ROWS = text(
    """
    WITH failed AS (
        SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:errors AS text[])) AS f(id, error)
    ), done AS (
        UPDATE frontier fr SET state = 'done', lease_owner = NULL, lease_until = NULL
        FROM failed WHERE fr.id = failed.id AND fr.run_id = :run_id AND fr.state <> 'done'
        RETURNING fr.url, failed.error
    )
    INSERT INTO fetches (run_id, url, final_url, error_kind, error)
    SELECT :run_id, url, url, :kind, error FROM done
    """
)

# Each seed of the run: done or not, whether any fetch of it got a response, its last failure.
_SEED_OUTCOMES = text(
    """
    SELECT fr.url, fr.state = 'done' AS done,
           EXISTS (SELECT 1 FROM fetches f
                   WHERE f.run_id = :run_id AND f.url = fr.url AND f.status IS NOT NULL)
               AS answered,
           latest.error_kind, latest.error
    FROM frontier fr
    LEFT JOIN LATERAL (
        SELECT error_kind, error FROM fetches f
        WHERE f.run_id = :run_id AND f.url = fr.url ORDER BY f.id DESC LIMIT 1
    ) latest ON true
    WHERE fr.run_id = :run_id AND fr.url = ANY(CAST(:seeds AS text[]))
    ORDER BY fr.url
    """
)

# A lease whose owner has no session left on the server belongs to a process that is gone.
_FREE_DEAD_LEASES = text(
    """
    UPDATE frontier SET state = 'queued', lease_owner = NULL, lease_until = NULL
    WHERE run_id = :run_id AND state = 'leased'
      AND lease_owner NOT IN (
          SELECT application_name FROM pg_stat_activity WHERE application_name <> ''
      )
    """
)
# The request slots their bookings held: a host with no leased row has no request booked.
_FREE_DEAD_SLOTS = text(
    """
    UPDATE frontier_hosts h SET in_flight = 0, busy_until = NULL
    WHERE h.run_id = :run_id AND h.in_flight > 0
      AND NOT EXISTS (
          SELECT 1 FROM frontier f
          WHERE f.run_id = h.run_id AND f.host = h.host AND f.state = 'leased'
      )
    """
)

_FETCHED = text("SELECT count(*) FROM fetches WHERE run_id = :run_id")


async def find_crawl(db: Database, name: str) -> CrawlInfo | None:
    async with db.transaction() as session:
        row = (await session.execute(_FIND_CRAWL, {"name": name})).first()
    return None if row is None else _crawl_info(row)


async def ensure_crawl(
    db: Database, name: str, seeds: tuple[str, ...], config: dict[str, Any]
) -> CrawlInfo:
    """Create the crawl, or update its seeds (when given) and config."""
    params = {"name": name, "seeds": list(seeds), "config": json.dumps(config)}
    async with db.transaction() as session:
        row = (await session.execute(_UPSERT_CRAWL, params)).one()
    return _crawl_info(row)


def _crawl_info(row: Any) -> CrawlInfo:
    config = json.loads(row.config) if isinstance(row.config, str) else row.config
    return CrawlInfo(row.id, row.name, tuple(row.seeds), config or {})


async def join_run(db: Database, crawl: CrawlInfo) -> RunInfo | None:
    """The crawl's run in progress, to add workers to (its processes share per-host
    politeness through the frontier's host rows); None if there is none."""
    async with db.transaction() as session:
        run_id = (await session.execute(_JOIN_RUN, {"crawl_id": crawl.id})).scalar()
    return None if run_id is None else RunInfo(int(run_id), crawl, resumed=True)


async def open_run(
    db: Database,
    crawl: CrawlInfo,
    *,
    new_run: bool = False,
    seeds: tuple[str, ...] = (),
    pace: HostPace | None = None,
) -> RunInfo:
    """Resume the crawl's unfinished run (adding `seeds` to it: the seeds given now), or
    start a new one seeded from the crawl's seeds. `pace`: its hosts' slots and first delay
    (the default: one slot, no delay)."""
    pace = pace or HostPace(1, 0.0, fixed=True)
    params = {"slots": pace.slots, "delay": pace.first_delay, "fixed": pace.fixed}
    async with db.transaction() as session:
        if not new_run:
            run_id = (await session.execute(_UNFINISHED_RUN, {"crawl_id": crawl.id})).scalar()
            if run_id is not None:
                await session.execute(_MARK_RUNNING, {"run_id": run_id})
                await session.execute(PREPARE, {**params, "run_id": run_id})
                if seeds:
                    await session.execute(_ENQUEUE_SEEDS, {"run_id": run_id, "urls": list(seeds)})
                return RunInfo(int(run_id), crawl, resumed=True)
        run_id = (await session.execute(_NEW_RUN, {"crawl_id": crawl.id})).scalar_one()
        await session.execute(PREPARE, {**params, "run_id": run_id})
        await session.execute(_ENQUEUE_SEEDS, {"run_id": run_id, "urls": list(crawl.seeds)})
        await session.execute(_ENQUEUE_KNOWN, {"run_id": run_id, "crawl_id": crawl.id})
    return RunInfo(int(run_id), crawl, resumed=False)


async def run_totals(db: Database, run_id: int) -> RunTotals:
    """The run's pages, fetched and errors over its whole life (see the module docstring)."""
    row = await db.first(_RUN_TOTALS, {"run_id": run_id})
    if row is None:  # pragma: no cover - a SELECT without FROM has one row
        return RunTotals(0, 0, 0)
    return RunTotals(pages=int(row.pages), fetched=int(row.fetched), errors=int(row.errors))


async def finish_run(db: Database, run_id: int, status: RunStatus, stats: dict[str, Any]) -> None:
    """Record the run's end: its status, and its summary (`stats`, the --json object), whose
    run totals `pages` and `errors` are the row's."""
    params = {
        "run_id": run_id,
        "status": status,
        "pages": stats.get("pages"),
        "errors": stats.get("errors"),
        "stats": json.dumps(stats),
    }
    async with db.transaction() as session:
        await session.execute(_FINISH_RUN, params)


async def fail_unfetchable(
    db: Database, run_id: int, kind: str, why_not: Callable[[str], str | None]
) -> list[str]:
    """Complete as failed (`kind`, with `why_not`'s reason) the run's open seed rows whose URL
    cannot be fetched, so that no run is left with rows no process can finish. Returns them."""
    async with db.transaction() as session:
        rows = (await session.execute(_OPEN_SEED_ROWS, {"run_id": run_id})).all()
        bad = [(row.id, row.url, reason) for row in rows if (reason := why_not(row.url))]
        if bad:
            params = {
                "run_id": run_id,
                "kind": kind,
                "ids": [row_id for row_id, _, _ in bad],
                "errors": [reason for _, _, reason in bad],
            }
            await session.execute(_FAIL_ROWS, params)
    return [url for _, url, _ in bad]


async def failed_seeds(
    db: Database, run_id: int, seeds: tuple[str, ...]
) -> list[tuple[str, str, str]]:
    """When every seed of the run is done and none of them got a response (each failed with
    an error kind), the seeds as (url, error_kind, error); else an empty list."""
    params = {"run_id": run_id, "seeds": list(seeds)}
    async with db.transaction() as session:
        rows = (await session.execute(_SEED_OUTCOMES, params)).all()
    if not rows or any(not r.done or r.answered or r.error_kind is None for r in rows):
        return []
    return [(r.url, r.error_kind, r.error or "") for r in rows]


async def free_dead_leases(db: Database, run_id: int) -> int:
    """Return to the queue the URLs leased by processes with no session on the server."""
    async with db.transaction() as session:
        result = await session.execute(_FREE_DEAD_LEASES, {"run_id": run_id})
        await session.execute(_FREE_DEAD_SLOTS, {"run_id": run_id})
        return int(result.rowcount)  # type: ignore[attr-defined]


async def open_in_run(db: Database, run_id: int) -> int:
    """Frontier rows of the run not done yet."""
    row = await db.first(OPEN_ROWS, {"run_id": run_id})
    return int(row[0]) if row is not None else 0


_LOCK_NAMESPACE = 0x6372  # "cr": the first key of the two-key advisory lock


class CrawlLock:
    """One run of a crawl at a time: a session-level advisory lock on the crawl, held on a
    connection of its own. PostgreSQL drops it when that connection ends, so a killed
    process can never leave a stale lock behind."""

    def __init__(self, db: Database, crawl_id: int) -> None:
        self.db = db
        self.crawl_id = crawl_id
        self.conn: AsyncConnection | None = None

    async def acquire(self) -> bool:
        params = {"ns": _LOCK_NAMESPACE, "id": self.crawl_id}
        try:
            conn = await self.db.engine.execution_options(isolation_level="AUTOCOMMIT").connect()
            try:
                result = await conn.execute(text("SELECT pg_try_advisory_lock(:ns, :id)"), params)
            except BaseException:
                await conn.close()
                raise
        except DB_ERRORS as exc:
            raise translate(exc) from None
        got = result.scalar()
        if got:
            self.conn = conn
        else:
            await conn.close()
        return bool(got)

    async def keep(self) -> bool:
        """Check the lock's connection; after a server restart took it (and the lock) away,
        reconnect and take the lock again. False when another process holds it now."""
        if self.conn is not None:
            try:
                await self.conn.execute(text("SELECT 1"))
                return True
            except Exception:
                with contextlib.suppress(Exception):
                    await self.conn.close()
                self.conn = None
        return await self.acquire()

    async def release(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            try:
                params = {"ns": _LOCK_NAMESPACE, "id": self.crawl_id}
                await conn.execute(text("SELECT pg_advisory_unlock(:ns, :id)"), params)
            finally:
                await conn.close()
