"""Crawls and their runs: create, resume, finish, and read back for reports."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from crawler.db.database import DB_ERRORS, Database, translate
from crawler.db.frontier import OPEN_ROWS
from crawler.kinds import RunStatus


@dataclass(frozen=True, slots=True)
class CrawlInfo:
    id: int
    name: str
    seeds: tuple[str, ...]


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
    RETURNING id, name, seeds
    """
)

_FIND_CRAWL = text("SELECT id, name, seeds FROM crawls WHERE name = :name")

_UNFINISHED_RUN = text(
    """
    SELECT id FROM crawl_runs
    WHERE crawl_id = :crawl_id AND status IN ('running', 'interrupted')
    ORDER BY id DESC LIMIT 1
    """
)

_JOIN_RUN = text(
    """
    UPDATE crawl_runs SET coordinated = true
    WHERE id = (
        SELECT id FROM crawl_runs
        WHERE crawl_id = :crawl_id AND status = 'running'
        ORDER BY id DESC LIMIT 1
    )
    RETURNING id
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

_FINISH_RUN = text(
    """
    UPDATE crawl_runs SET
        status = CASE WHEN status = 'finished' THEN status ELSE :status END,
        finished_at = CASE WHEN :status = 'running' THEN NULL ELSE now() END,
        pages = (SELECT count(*) FROM fetches
                 WHERE run_id = :run_id AND outcome IN ('new', 'changed', 'unchanged')),
        errors = (SELECT count(*) FROM fetches WHERE run_id = :run_id AND error_kind IS NOT NULL),
        stats = CAST(:stats AS jsonb)
    WHERE id = :run_id
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

_FETCHED = text("SELECT count(*) FROM fetches WHERE run_id = :run_id")


async def find_crawl(db: Database, name: str) -> CrawlInfo | None:
    async with db.transaction() as session:
        row = (await session.execute(_FIND_CRAWL, {"name": name})).first()
    return None if row is None else CrawlInfo(row.id, row.name, tuple(row.seeds))


async def ensure_crawl(
    db: Database, name: str, seeds: tuple[str, ...], config: dict[str, Any]
) -> CrawlInfo:
    """Create the crawl, or update its seeds (when given) and config."""
    params = {"name": name, "seeds": list(seeds), "config": json.dumps(config)}
    async with db.transaction() as session:
        row = (await session.execute(_UPSERT_CRAWL, params)).one()
    return CrawlInfo(row.id, row.name, tuple(row.seeds))


async def join_run(db: Database, crawl: CrawlInfo) -> RunInfo | None:
    """The crawl's run in progress, to add workers to (from now on its processes share
    per-host politeness through the database); None if there is none."""
    async with db.transaction() as session:
        run_id = (await session.execute(_JOIN_RUN, {"crawl_id": crawl.id})).scalar()
    return None if run_id is None else RunInfo(int(run_id), crawl, resumed=True)


async def open_run(db: Database, crawl: CrawlInfo, *, new_run: bool = False) -> RunInfo:
    """Resume the crawl's unfinished run, or start a new one seeded from the crawl's seeds."""
    async with db.transaction() as session:
        if not new_run:
            run_id = (await session.execute(_UNFINISHED_RUN, {"crawl_id": crawl.id})).scalar()
            if run_id is not None:
                await session.execute(_MARK_RUNNING, {"run_id": run_id})
                return RunInfo(int(run_id), crawl, resumed=True)
        run_id = (await session.execute(_NEW_RUN, {"crawl_id": crawl.id})).scalar_one()
        await session.execute(_ENQUEUE_SEEDS, {"run_id": run_id, "urls": list(crawl.seeds)})
        await session.execute(_ENQUEUE_KNOWN, {"run_id": run_id, "crawl_id": crawl.id})
    return RunInfo(int(run_id), crawl, resumed=False)


async def finish_run(db: Database, run_id: int, status: RunStatus, stats: dict[str, Any]) -> None:
    params = {"run_id": run_id, "status": status, "stats": json.dumps(stats)}
    async with db.transaction() as session:
        await session.execute(_FINISH_RUN, params)


async def free_dead_leases(db: Database, run_id: int) -> int:
    """Return to the queue the URLs leased by processes with no session on the server."""
    async with db.transaction() as session:
        result = await session.execute(_FREE_DEAD_LEASES, {"run_id": run_id})
        return int(result.rowcount)  # type: ignore[attr-defined]


async def open_in_run(db: Database, run_id: int) -> int:
    """Frontier rows of the run not done yet."""
    row = await db.first(OPEN_ROWS, {"run_id": run_id})
    return int(row[0]) if row is not None else 0


async def fetched_in_run(db: Database, run_id: int) -> int:
    async with db.transaction() as session:
        return int((await session.execute(_FETCHED, {"run_id": run_id})).scalar_one())


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
