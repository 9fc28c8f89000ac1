"""The write path of a run: completed tasks, batched; retries, skips and sitemap entries.

Workers hand each completed task to `PgPageSink.complete` and wait for it to be stored.
Behind it, one writer task takes every record waiting and writes them as one batch
statement (crawler.db.batch) through a short-lived session: under load a batch holds what
piled up while the previous one was written, so round trips per page fall as the rate
rises, and a lone page is written at once. One writer rather than two: measured on the
10,000-page benchmark, two writers wrote batches of about 3 pages where one writes about
12, and the larger batches cost both the database and this process about a third less CPU
a page (each statement is encoded whatever its size, and was then also planned afresh).

Plans: the batch statement is prepared once a connection and, after a few runs, executed
with a cached generic plan. A first crawl's tables grow from nothing faster than autovacuum
analyzes them, and a generic plan made from the statistics of empty tables stays wrong as
they grow: measured on a fresh 10,000-page crawl, the page lookups walked the
(crawl_id, status) index instead of the unique (crawl_id, url) one, 68 million rows read.
So once a run has written `ANALYZE_AFTER` pages, the sink analyzes the crawl's tables (in
the background; ANALYZE blocks no writes), which invalidates the cached plans, and the next
ones are made from real statistics (170 thousand rows read). The alternative, planning each
statement afresh (plan_cache_mode=force_custom_plan), cost about 1 ms a batch statement,
an eighth of its time in the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import text

from crawler.db.batch import WRITE_BATCH, BatchParams, clean
from crawler.db.database import Database
from crawler.errors import DatabaseUnavailable
from crawler.records import CrawlTask, FetchResult, PageRecord

log = logging.getLogger(__name__)

WRITERS = 1
# Pages a statement at most. A batch is encoded and sent in one step of the loop (its text is
# about 25 KB a page), and the server's work on it can take the loop's CPU for as long: with
# up to 64, batches after a stall held the loop for over 10 ms. Measured on the 10,000-page
# benchmark (6 interleaved crawls), 16 instead of 64 took the lag p99 from 10.9 to 8.7 ms at
# about the same rate (1,602 and 1,613 pages/s).
MAX_BATCH = 16
ANALYZE_AFTER = 500  # pages written in a run before its tables are analyzed
ANALYZE_WAIT = 2.0  # seconds an analysis still running at the end may take

ANALYZE_TABLES = text("ANALYZE pages, frontier, page_links, fetches")

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
    """
WITH done AS (
    UPDATE frontier SET state = 'done', lease_until = NULL
    WHERE id = :fid AND lease_owner = :owner AND state = 'leased'
    RETURNING id
),"""
    + _ENQUEUE
    + """
SELECT (SELECT count(*) FROM done) AS done, (SELECT count(*) FROM queued) AS queued
"""
)

_RETRY = text(
    """
WITH again AS (
    UPDATE frontier SET state = 'queued', lease_owner = NULL, lease_until = NULL,
        not_before = now() + make_interval(secs => :delay)
    WHERE id = :fid AND lease_owner = :owner AND state = 'leased'
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
    """
    UPDATE frontier SET state = 'queued', lease_owner = NULL, lease_until = NULL,
        not_before = now() + make_interval(secs => :delay),
        attempts = greatest(attempts - 1, 0)
    WHERE id = :fid AND lease_owner = :owner AND state = 'leased'
    """
)

# Sitemap entries. A URL the run has already is left out before the insert, and the
# lastmod of rows still queued is updated by a statement of its own. One upsert did both
# before, and it deadlocked with page writes (seen at the start of one benchmark crawl in
# three: a second's standstill, deadlock_timeout, until the server aborted one): the write
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
# statement that inserts it runs (about 12 ms for 1,000; 10,000 took 120 ms).
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

_Pending = tuple[PageRecord, "asyncio.Future[int]"]


class PgPageSink:
    """The `PageSink` of one run: writes completed tasks, fenced by this process's leases."""

    def __init__(self, db: Database, crawl_id: int, run_id: int, owner: str) -> None:
        self.db = db
        self.crawl_id = crawl_id
        self.run_id = run_id
        self.owner = owner
        self.pending: asyncio.Queue[_Pending] = asyncio.Queue()
        self.writers: list[asyncio.Task[None]] = []
        self.batches = 0
        self.written = 0
        self.analyzing: asyncio.Task[None] | None = None

    async def complete(self, record: PageRecord) -> int:
        """Store the record; return how many new URLs it queued (-1: its lease was lost).
        Raises what the write raised (DatabaseUnavailable when the server is away)."""
        if not self.writers:
            self.writers = [asyncio.create_task(self._writer()) for _ in range(WRITERS)]
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.pending.put_nowait((record, future))
        return await future

    async def _writer(self) -> None:
        while True:
            batch = [await self.pending.get()]
            while len(batch) < MAX_BATCH and not self.pending.empty():
                batch.append(self.pending.get_nowait())
            batch = [item for item in batch if not item[1].done()]  # waiter cancelled
            if not batch:
                continue
            try:
                results = await self._write([record for record, _ in batch])
            except Exception as exc:
                if len(batch) > 1 and not isinstance(exc, DatabaseUnavailable):
                    # One record the server refuses must not fail the others with it:
                    # each is written on its own, and only the culprit fails.
                    for item in batch:
                        await self._write_alone(*item)
                    continue
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _write_alone(self, record: PageRecord, future: asyncio.Future[int]) -> None:
        try:
            (result,) = await self._write([record])
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(result)

    async def _write(self, records: list[PageRecord]) -> list[int]:
        params = BatchParams()
        for record in records:
            params.add(record)
        row = await self.db.execute_retrying(
            WRITE_BATCH, params.params(crawl_id=self.crawl_id, run_id=self.run_id, owner=self.owner)
        )
        assert row is not None
        self.batches += 1
        self.written += len(records)
        if self.analyzing is None and self.written >= ANALYZE_AFTER:
            self.analyzing = asyncio.create_task(self._analyze())
        done = set(row.done)
        queued = set(row.queued)
        results = []
        for record in records:
            if record.task.frontier_id not in done:
                results.append(-1)
                continue
            mine = queued.intersection(record.enqueue)
            queued -= mine
            results.append(len(mine))
        return results

    async def _analyze(self) -> None:
        """Fresh statistics for the planner (see the module docstring). Only an optimisation:
        a failure (a server that went away, a user who does not own the tables) is logged."""
        try:
            await self.db.execute_all(ANALYZE_TABLES, {})
        except Exception as exc:
            log.info("could not analyze the crawl's tables: %s", exc)

    async def close(self) -> None:
        """Stop the writers (waiters still pending get an error) and the analysis."""
        if self.analyzing is not None:
            # Let a short ANALYZE finish (statistics for the next run); cancel a long one.
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self.analyzing, ANALYZE_WAIT)
        for writer in self.writers:
            writer.cancel()
        for writer in self.writers:
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        self.writers = []
        while not self.pending.empty():
            _, future = self.pending.get_nowait()
            if not future.done():
                future.cancel()

    async def skip(self, task: CrawlTask, enqueue: tuple[str, ...], depth: int) -> int:
        """Mark a task done without fetching it (not due for a revisit); queue its links."""
        params = {
            "fid": task.frontier_id,
            "owner": self.owner,
            "run_id": self.run_id,
            "enqueue": sorted(set(enqueue)),
            "child_depth": depth,
        }
        row = await self.db.execute_retrying(_SKIP, params)
        assert row is not None
        return int(row.queued) if row.done else -1

    async def postpone(self, task: CrawlTask, delay: float) -> None:
        """Give the task back to the queue, not to be claimed for `delay` seconds (no fetch
        happened, so nothing is recorded and the attempt does not count)."""
        params = {"fid": task.frontier_id, "owner": self.owner, "delay": delay}
        await self.db.execute_all(_POSTPONE, params)

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
            changed += len(await self.db.execute_all(_ENQUEUE_LISTED, {**params, "depth": depth}))
            if any(lastmod is not None for _, lastmod in chunk):
                changed += len(await self.db.execute_all(_LISTED_LASTMOD, params))
        return changed

    async def stored_links(self, url: str) -> list[tuple[str, bool]]:
        """The followable links stored for a page (none when its meta robots says nofollow)."""
        rows = await self.db.execute_all(_STORED_LINKS, {"crawl_id": self.crawl_id, "url": url})
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
        await self.db.execute_retrying(_RETRY, params)
