"""What the runner records and reads for a task, in PostgreSQL: `PgStore`, the `Store`.

Completed tasks go through the batching writer (crawler.db.writer, where the write path is
told). The rest are single statements in short autocommit sessions (`Database.execute`):
a retry records the failed attempt and queues the task again, a skip marks it done and
queues its stored links, a postpone gives it back, and sitemap entries are queued. Every
write to a task's frontier row is fenced by this process's lease (`frontier.LEASE_HELD`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text

from crawler.db.batch import clean
from crawler.db.database import Database
from crawler.db.frontier import LEASE_HELD
from crawler.db.writer import BatchWriter
from crawler.records import CrawlTask, FetchResult, PageRecord

_ENQUEUE = """
queued AS (
    INSERT INTO frontier (run_id, url, depth)
    SELECT CAST(:run_id AS bigint), u, CAST(:child_depth AS integer)
    FROM unnest(CAST(:enqueue AS text[])) AS u
    LEFT JOIN LATERAL (
        SELECT 1 AS known FROM frontier f WHERE f.run_id = :run_id AND f.url = u LIMIT 1
    ) seen ON true
    WHERE seen.known IS NULL AND EXISTS (SELECT 1 FROM done)
    ORDER BY u
    ON CONFLICT (run_id, url) DO NOTHING
    RETURNING 1
)"""

_SKIP = text(
    f"""
WITH done AS (
    UPDATE frontier SET state = 'done', lease_until = NULL
    WHERE id = :fid AND {LEASE_HELD}
    RETURNING id
),"""
    + _ENQUEUE
    + """
SELECT (SELECT count(*) FROM done) AS done, (SELECT count(*) FROM queued) AS queued
"""
)

_RETRY = text(
    f"""
WITH again AS (
    UPDATE frontier SET state = 'queued', lease_owner = NULL, lease_until = NULL,
        not_before = now() + make_interval(secs => :delay)
    WHERE id = :fid AND {LEASE_HELD}
    RETURNING id
)
INSERT INTO fetches (run_id, url, final_url, status, content_type, bytes, elapsed_ms,
                     redirects, error_kind, error)
SELECT CAST(:run_id AS bigint), :url, :final_url, CAST(:status AS integer), :content_type,
       CAST(:bytes AS integer), CAST(:elapsed_ms AS integer), CAST(:redirects AS text[]),
       :error_kind, :error
FROM again
"""
)

_POSTPONE = text(
    f"""
    UPDATE frontier SET state = 'queued', lease_owner = NULL, lease_until = NULL,
        not_before = now() + make_interval(secs => :delay),
        attempts = greatest(attempts - 1, 0)
    WHERE id = :fid AND {LEASE_HELD}
    """
)

# Sitemap entries. A URL the run has already is left out before the insert, and the
# lastmod of rows still queued is updated by a statement of its own. One upsert did both
# before, and it deadlocked with page writes (seen at the start of some benchmark crawls: a
# second's standstill, deadlock_timeout, until the server aborted one): the write
# marks its pages' rows done, then inserts their links; the upsert, having inserted a link
# that write also inserts, came to one of those rows and waited for the write, by its DO
# UPDATE, and even with DO NOTHING, since a row updated by a transaction in progress has a
# new index entry whose insert is not known to conflict until that transaction ends. Left
# out by NOT EXISTS, such a row is never reached. New URLs go in sorted, like the write's
# links, so those two never wait on each other in a cycle; the update touches only queued
# rows, which no page write holds, and claims skip the rows it holds.
_ENQUEUE_LISTED = text(
    """
    INSERT INTO frontier (run_id, url, depth, lastmod)
    SELECT CAST(:run_id AS bigint), u, CAST(:depth AS integer), m
    FROM unnest(CAST(:urls AS text[]), CAST(:lastmods AS timestamptz[])) AS x(u, m)
    WHERE NOT EXISTS (
        SELECT 1 FROM frontier f WHERE f.run_id = CAST(:run_id AS bigint) AND f.url = x.u
    )
    ORDER BY u
    ON CONFLICT (run_id, url) DO NOTHING
    RETURNING 1
    """
)

_LISTED_LASTMOD = text(
    """
    UPDATE frontier f SET lastmod = x.m
    FROM unnest(CAST(:urls AS text[]), CAST(:lastmods AS timestamptz[])) AS x(u, m)
    WHERE f.run_id = :run_id AND f.url = x.u AND f.state = 'queued'
      AND x.m IS NOT NULL AND f.lastmod IS DISTINCT FROM x.m
    RETURNING 1
    """
)
# Sitemap entries a statement: a page write that links to a listed URL waits while the
# statement that inserts it runs, which grows with the number of entries.
LISTED_CHUNK = 1_000

_STORED_LINKS = text(
    """
    SELECT l.target_url, l.nofollow, p.meta_robots
    FROM pages p
    JOIN page_links pl ON pl.page_id = p.id
    CROSS JOIN LATERAL unnest(pl.target_urls, pl.nofollow) AS l(target_url, nofollow)
    WHERE p.crawl_id = :crawl_id AND p.url = :url
    """
)


class PgStore:
    """The `Store` of one run in this process, fenced by its leases (`owner`)."""

    def __init__(self, db: Database, crawl_id: int, run_id: int, owner: str) -> None:
        self.db = db
        self.crawl_id = crawl_id
        self.run_id = run_id
        self.owner = owner
        self.writer = BatchWriter(db, crawl_id, run_id, owner)

    async def complete(self, record: PageRecord) -> int:
        """Store the record (batched with others); return how many new URLs it queued
        (-1: its lease was lost)."""
        return await self.writer.write(record)

    async def close(self) -> None:
        await self.writer.close()

    async def skip(self, task: CrawlTask, enqueue: tuple[str, ...], depth: int) -> int:
        """Mark a task done without fetching it (not due for a revisit); queue its links."""
        params = {
            "fid": task.frontier_id,
            "owner": self.owner,
            "run_id": self.run_id,
            "enqueue": sorted(set(enqueue)),
            "child_depth": depth,
        }
        row = await self.db.first(_SKIP, params)
        assert row is not None
        return int(row.queued) if row.done else -1

    async def postpone(self, task: CrawlTask, delay: float) -> None:
        """Give the task back to the queue, not to be claimed for `delay` seconds (no fetch
        happened, so nothing is recorded and the attempt does not count)."""
        params = {"fid": task.frontier_id, "owner": self.owner, "delay": delay}
        await self.db.execute(_POSTPONE, params)

    async def enqueue_listed(self, entries: list[tuple[str, datetime | None]], depth: int) -> int:
        """Queue URLs listed in a sitemap, with their lastmod; return how many rows changed."""
        changed = 0
        for start in range(0, len(entries), LISTED_CHUNK):
            # Sorted a statement (10,000 entries at once held the loop for milliseconds);
            # a URL listed twice is left out of the second statement by NOT EXISTS.
            chunk = sorted(dict(entries[start : start + LISTED_CHUNK]).items())
            params = {
                "run_id": self.run_id,
                "urls": [url for url, _ in chunk],
                "lastmods": [lastmod for _, lastmod in chunk],
            }
            changed += len(await self.db.execute(_ENQUEUE_LISTED, {**params, "depth": depth}))
            if any(lastmod is not None for _, lastmod in chunk):
                changed += len(await self.db.execute(_LISTED_LASTMOD, params))
        return changed

    async def stored_links(self, url: str) -> list[tuple[str, bool]]:
        """The followable links stored for a page (none when its meta robots says nofollow)."""
        rows = await self.db.execute(_STORED_LINKS, {"crawl_id": self.crawl_id, "url": url})
        if rows and rows[0].meta_robots and "nofollow" in rows[0].meta_robots:
            return []
        return [(row.target_url, row.nofollow) for row in rows]

    async def retry_later(self, task: CrawlTask, fetch: FetchResult, delay: float) -> None:
        """Record the failed attempt and put the task back in the queue after `delay` seconds."""
        params: dict[str, Any] = {
            "fid": task.frontier_id,
            "owner": self.owner,
            "run_id": self.run_id,
            "delay": delay,
            "url": task.url,
            "final_url": fetch.final_url,
            "status": fetch.status,
            "content_type": fetch.content_type,
            "bytes": len(fetch.body),
            "elapsed_ms": fetch.elapsed_ms,
            "redirects": list(fetch.redirects),
            "error_kind": fetch.error_kind,
            "error": clean(fetch.error),
        }
        await self.db.first(_RETRY, params)
