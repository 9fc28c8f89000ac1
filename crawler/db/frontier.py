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

# A task's frontier row is written only while this process holds its lease: once the lease
# has expired and passed to another process, our write is a no-op.
LEASE_HELD = "lease_owner = :owner AND state = 'leased'"

# The claim must walk the open rows' index (ix_frontier_open, (run_id, id) where not done),
# whose first entries are the next to claim. With `run_id = :run_id` and `ORDER BY id`, the
# primary key gives the same order, and a plan cached from the statistics of a young run
# (most rows open) walked it from the run's first row, past every row already done: thousands
# of rows read a claim late in the crawl, growing with the run. As a range, run_id is no
# constant the planner can drop from `ORDER BY run_id, id`, which only the open rows' index
# provides: a claim reads only the rows it takes.
_CLAIM = text(
    """
    WITH claimed AS (
    UPDATE frontier SET
        state = 'leased',
        lease_owner = :owner,
        lease_until = now() + make_interval(secs => :lease),
        attempts = attempts + 1
    WHERE id IN (
        SELECT id FROM frontier
        WHERE run_id >= :run_id AND run_id <= :run_id  -- a range, not =: see above
          AND state <> 'done'
          AND (state = 'queued' OR lease_until < now())
          AND (not_before IS NULL OR not_before <= now())
        ORDER BY run_id, id
        LIMIT :n
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, url, depth, attempts, lastmod
    )
    SELECT c.id, c.url, c.depth, c.attempts, p.etag, p.last_modified,
           extract(epoch FROM now() - p.fetched_at) AS age,
           coalesce(c.lastmod > p.fetched_at, false) AS sitemap_newer
    FROM claimed c
    LEFT JOIN LATERAL (
        SELECT etag, last_modified, fetched_at FROM pages
        WHERE pages.crawl_id = :crawl_id AND pages.url = c.url AND pages.gone_at IS NULL
        LIMIT 1
    ) p ON true
    """
)

OPEN_ROWS = text("SELECT count(*) FROM frontier WHERE run_id = :run_id AND state <> 'done'")

_RELEASE = text(
    f"""
    UPDATE frontier SET state = 'queued', lease_owner = NULL, lease_until = NULL,
        attempts = greatest(attempts - 1, 0)
    WHERE id = ANY(CAST(:ids AS bigint[])) AND {LEASE_HELD}
    """
)

_RENEW = text(
    f"""
    UPDATE frontier SET lease_until = now() + make_interval(secs => :lease)
    WHERE id = ANY(CAST(:ids AS bigint[])) AND {LEASE_HELD}
    """
)


def _by_id(task: CrawlTask) -> int:
    return task.frontier_id


class PgFrontier:
    """The `Frontier` of one run, as seen by one process (its lease owner id)."""

    def __init__(
        self, db: Database, crawl_id: int, run_id: int, owner: str, lease_seconds: float
    ) -> None:
        self.db = db
        self.crawl_id = crawl_id
        self.run_id = run_id
        self.owner = owner
        self.lease_seconds = lease_seconds

    async def claim(self, n: int) -> list[CrawlTask]:
        params = {
            "crawl_id": self.crawl_id,
            "run_id": self.run_id,
            "owner": self.owner,
            "lease": self.lease_seconds,
            "n": n,
        }
        rows = await self.db.execute(_CLAIM, params)
        tasks = (
            CrawlTask(
                r.id,
                r.url,
                r.depth,
                r.attempts,
                etag=r.etag,
                last_modified=r.last_modified,
                age=None if r.age is None else float(r.age),
                sitemap_newer=r.sitemap_newer,
            )
            for r in rows
        )
        return sorted(tasks, key=_by_id)

    async def open_count(self) -> int:
        """Rows of the run not done yet (queued, or leased by any process)."""
        row = await self.db.first(OPEN_ROWS, {"run_id": self.run_id})
        return int(row[0]) if row is not None else 0

    async def release(self, ids: list[int]) -> None:
        """Hand leased rows back to the queue (graceful stop)."""
        if ids:
            await self.db.execute(_RELEASE, {"ids": ids, "owner": self.owner})

    async def renew(self, ids: list[int]) -> None:
        """Extend the leases of rows still in flight."""
        if ids:
            params = {"ids": ids, "owner": self.owner, "lease": self.lease_seconds}
            await self.db.execute(_RENEW, params)
