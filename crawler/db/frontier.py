"""The frontier: a run's queue of URLs in PostgreSQL, claimed in leased batches.

A claim takes queued rows (or rows whose lease expired) with `FOR UPDATE SKIP LOCKED`, so
several processes share one run without handing out a URL twice; a completion counts only
while the lease is still ours (the store checks `lease_owner`). Dedup is the unique key
`(run_id, url)`: nothing about seen URLs is kept in memory.
"""

from __future__ import annotations

from sqlalchemy import text

from crawler.db.database import Database
from crawler.records import CrawlTask

_CLAIM = text(
    """
    UPDATE frontier SET
        state = 'leased',
        lease_owner = :owner,
        lease_until = now() + make_interval(secs => :lease),
        attempts = attempts + 1
    WHERE id IN (
        SELECT id FROM frontier
        WHERE run_id = :run_id
          AND state <> 'done'
          AND (state = 'queued' OR lease_until < now())
          AND (not_before IS NULL OR not_before <= now())
        ORDER BY id
        LIMIT :n
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, url, depth, attempts
    """
)

_OPEN = text("SELECT count(*) FROM frontier WHERE run_id = :run_id AND state <> 'done'")

_RELEASE = text(
    """
    UPDATE frontier SET state = 'queued', lease_owner = NULL, lease_until = NULL,
        attempts = greatest(attempts - 1, 0)
    WHERE id = ANY(CAST(:ids AS bigint[])) AND lease_owner = :owner AND state = 'leased'
    """
)

_RENEW = text(
    """
    UPDATE frontier SET lease_until = now() + make_interval(secs => :lease)
    WHERE id = ANY(CAST(:ids AS bigint[])) AND lease_owner = :owner AND state = 'leased'
    """
)


def _by_id(task: CrawlTask) -> int:
    return task.frontier_id


class PgFrontier:
    """The `Frontier` of one run, as seen by one process (its lease owner id)."""

    def __init__(self, db: Database, run_id: int, owner: str, lease_seconds: float) -> None:
        self.db = db
        self.run_id = run_id
        self.owner = owner
        self.lease_seconds = lease_seconds

    async def claim(self, n: int) -> list[CrawlTask]:
        params = {"run_id": self.run_id, "owner": self.owner, "lease": self.lease_seconds, "n": n}
        async with self.db.transaction() as session:
            rows = (await session.execute(_CLAIM, params)).all()
        return sorted((CrawlTask(r.id, r.url, r.depth, r.attempts) for r in rows), key=_by_id)

    async def open_count(self) -> int:
        """Rows of the run not done yet (queued, or leased by any process)."""
        async with self.db.transaction() as session:
            return int((await session.execute(_OPEN, {"run_id": self.run_id})).scalar_one())

    async def release(self, ids: list[int]) -> None:
        """Hand leased rows back to the queue (graceful stop)."""
        if ids:
            async with self.db.transaction() as session:
                await session.execute(_RELEASE, {"ids": ids, "owner": self.owner})

    async def renew(self, ids: list[int]) -> None:
        """Extend the leases of rows still in flight."""
        if ids:
            params = {"ids": ids, "owner": self.owner, "lease": self.lease_seconds}
            async with self.db.transaction() as session:
                await session.execute(_RENEW, params)
