"""How a completed task reaches PostgreSQL: one writer task, one statement a batch.

1. A worker hands its task's `PageRecord` to `BatchWriter.write` (through `PgStore.complete`)
   and awaits the answer: how many new URLs its links queued, or -1 if its lease was lost.
2. The records wait in a queue. One writer task takes every record waiting, up to
   MAX_BATCH: under load a batch holds what piled up while the previous one was written, so
   round trips a page fall as the rate rises, and a lone page is written at once.
3. The batch becomes one statement (crawler.db.batch: parallel arrays, one element a task),
   run in a short autocommit session from the process's one shared sessionmaker
   (`Database.execute`): one round trip, no connection held while anything waits on the
   network. The seed's pattern stands, short sessions from one maker; the unit of work is a
   batch, not a page.
4. Each worker's future gets its own answer. A record the server refuses must not fail the
   others with it: a refused batch is written again record by record, and only the culprit
   fails. A server that is away, or a full disk, fails the whole batch at once.

One writer, not several: several writers wrote smaller batches, and each statement costs
its encoding and planning whatever its size (README, "Performance").

Plans: the batch statement is prepared once a connection and, after a few runs, executed
with a cached generic plan. A first crawl's tables grow from nothing faster than autovacuum
analyzes them, and a generic plan made from the statistics of empty tables stays wrong as
they grow (the page lookups walked the wrong index). So once a run has written
ANALYZE_AFTER pages, the writer analyzes the crawl's tables in the background (ANALYZE
blocks no writes), which invalidates the cached plans, and the next ones are made from real
statistics. Planning each statement afresh instead (plan_cache_mode=force_custom_plan) cost
about an eighth of the statement's time in the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import text

from crawler.db.batch import WRITE_BATCH, BatchParams
from crawler.db.database import Database
from crawler.errors import DatabaseError, DatabaseFull, DatabaseUnavailable
from crawler.records import PageRecord

log = logging.getLogger(__name__)

# Pages a statement at most. A batch is encoded and sent in one step of the loop (its text is
# tens of KB a page), and the server's work on it can take the loop's CPU for as long: larger
# batches after a stall held the loop too long (README, "Performance").
MAX_BATCH = 16
ANALYZE_AFTER = 500  # pages written in a run before its tables are analyzed
ANALYZE_WAIT = 2.0  # seconds an analysis still running at the end may take

ANALYZE_TABLES = text("ANALYZE pages, frontier, page_links, fetches")

_Pending = tuple[PageRecord, "asyncio.Future[int]"]


class BatchWriter:
    """The one writer of a run's completed tasks in this process, fenced by its leases."""

    def __init__(self, db: Database, crawl_id: int, run_id: int, owner: str) -> None:
        self.db = db
        self.crawl_id = crawl_id
        self.run_id = run_id
        self.owner = owner
        self.pending: asyncio.Queue[_Pending] = asyncio.Queue()
        self.writer: asyncio.Task[None] | None = None
        self.batches = 0
        self.written = 0
        self.analyzing: asyncio.Task[None] | None = None

    async def write(self, record: PageRecord) -> int:
        """Store the record; return how many new URLs it queued (-1: its lease was lost).
        Raises what its batch raised (a DatabaseError)."""
        if self.writer is None:
            self.writer = asyncio.create_task(self._run())
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.pending.put_nowait((record, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self.pending.get()]
            while len(batch) < MAX_BATCH and not self.pending.empty():
                batch.append(self.pending.get_nowait())
            batch = [item for item in batch if not item[1].done()]  # waiter cancelled
            if not batch:
                continue
            try:
                results = await self._write([record for record, _ in batch])
            except Exception as exc:  # a DatabaseError, or a bug: the waiters get it
                if len(batch) > 1 and not isinstance(exc, DatabaseUnavailable | DatabaseFull):
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
        row = await self.db.first(
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
            await self.db.execute(ANALYZE_TABLES, {})
        except DatabaseError as exc:
            log.info("could not analyze the crawl's tables: %s", exc)

    async def close(self) -> None:
        """Stop the writer (waiters still pending are cancelled) and the analysis."""
        if self.analyzing is not None:
            # Let a short ANALYZE finish (statistics for the next run); cancel a long one.
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self.analyzing, ANALYZE_WAIT)
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        while not self.pending.empty():
            _, future = self.pending.get_nowait()
            if not future.done():
                future.cancel()
