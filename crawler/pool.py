"""The worker pool: it claims tasks, runs workers over them, drains, and renews leases.

A feeder claims batches from the `Frontier` into a small local queue; N workers take tasks
from it and hand each to the `TaskRunner` (crawler.runner), which decides and stores. The
run ends when the frontier holds no open row (queued, or leased by any process), when the
page budget or time budget is spent, on `stop()`, or when the database gives the run up
(`DatabaseOutage`). Sitemap reading and loop-lag measurement run beside the workers, in
rooms of their own (crawler.sitemap_feed, crawler.loop_health).

The pool sees only Protocols (crawler.seams); run.py wires in PostgreSQL and aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time

from crawler.config import Settings
from crawler.errors import DatabaseFull, DatabaseUnavailable
from crawler.hosts import Hosts
from crawler.kinds import RunOutcome
from crawler.known import KnownUrls
from crawler.loop_health import LagMeter, tuned_gc
from crawler.outage import DatabaseOutage
from crawler.parse_workers import InlineParser, Parser
from crawler.records import CrawlTask, RunStats
from crawler.runner import TaskRunner
from crawler.scope import Scope
from crawler.seams import Fetcher, Frontier, HostGate, Store
from crawler.sitemap_feed import SitemapFeed

# Seconds the feeder waits when there is nothing to claim (doubling up to IDLE_MAX), unless
# a task is done first: its links may be claimable.
IDLE_FIRST = 0.01
IDLE_MAX = 1.0
MAX_LOOKAHEAD = 8  # batches claimed ahead when every queued task's host is busy
SATURATED_PAUSE = 0.01
GRACE = 5.0  # seconds in-flight tasks get to finish after stop()
# Workers a request slot (--concurrency; Hosts caps the requests in flight). A worker waits
# for its page's write after the fetch, and meanwhile the spare workers keep the requests
# going; with one worker a slot, the slots of the pages in the batch being written stood
# idle (README, "Performance").
WORKERS_PER_SLOT = 2


class Pool:
    def __init__(
        self,
        settings: Settings,
        scope: Scope,
        frontier: Frontier,
        fetcher: Fetcher,
        store: Store,
        *,
        sitemap_origins: tuple[str, ...] = (),
        gate: HostGate | None = None,
        parser: Parser | None = None,
    ) -> None:
        self.settings = settings
        self.frontier = frontier
        self.stats = RunStats()
        self.budget = settings.max_pages or None  # per invocation
        self.deadline = time.monotonic() + settings.max_duration if settings.max_duration else None
        self.in_flight: set[int] = set()
        self.unstarted: list[int] = []
        self.queue: asyncio.Queue[CrawlTask] = asyncio.Queue()
        self.progress = asyncio.Event()
        self.stopping = False
        self.waiting_on_hosts = 0
        self.known = KnownUrls()
        self.outage = DatabaseOutage(settings.database_wait, self.stop)
        self.hosts = Hosts(settings, fetcher, gate, self.outage)
        self.lag = LagMeter()
        self.runner = TaskRunner(
            settings,
            scope,
            self.hosts,
            parser or InlineParser(None),
            store,
            self.outage,
            self.stats,
            self.known,
        )
        self.sitemaps = SitemapFeed(
            settings,
            scope,
            self.hosts,
            store,
            self.outage,
            self.stats,
            self.known,
            sitemap_origins,
            self.progress,
        )

    def stop(self) -> None:
        """Stop claiming; in-flight tasks finish (run() gives them a grace period)."""
        self.stopping = True
        self.sitemaps.stopping = True
        self.progress.set()

    async def run(self) -> RunOutcome:
        """Crawl until the frontier is empty (FINISHED), the page budget is spent (LIMIT),
        the time budget is spent (TIMEOUT: in-flight tasks finish), stop() is called
        (STOPPED: in-flight tasks get GRACE seconds) or the database's disk is full
        (DATABASE_FULL). Raises the database error that made the outage give the run up
        otherwise (unavailable longer than settings.database_wait, or refusing writes)."""
        self.stats.started_at = time.monotonic()
        n = WORKERS_PER_SLOT * self.settings.concurrency
        with tuned_gc():
            workers = [asyncio.create_task(self._worker()) for _ in range(n)]
            helpers = [
                asyncio.create_task(self.lag.run()),
                asyncio.create_task(self._renew()),
                asyncio.create_task(self.sitemaps.run()),
            ]
            try:
                outcome = await self._feed()
                await self._drain(
                    GRACE if outcome is RunOutcome.STOPPED else None,
                    keep_queued=outcome in (RunOutcome.FINISHED, RunOutcome.LIMIT),
                )
            finally:
                for task in workers + helpers:
                    task.cancel()
                await asyncio.gather(*workers, *helpers, return_exceptions=True)
                leftover = list(self.in_flight) + self.unstarted
                self.in_flight.clear()
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.frontier.release(leftover))
                self.stats.finished_at = time.monotonic()
                self.stats.loop_lag_ms = self.lag.summary()
        fatal = self.outage.fatal
        if isinstance(fatal, DatabaseFull):
            return RunOutcome.DATABASE_FULL
        if fatal is not None:
            raise fatal
        return outcome

    async def _feed(self) -> RunOutcome:
        idle = IDLE_FIRST
        batch = max(1, min(self.settings.concurrency, 64))
        while not self.stopping:
            # Cleared before we look: progress made while we claim (a task done, stop())
            # then ends the wait below at once instead of being lost with the clear.
            self.progress.clear()
            if self.budget is not None and self.budget <= 0:
                return RunOutcome.LIMIT
            if self.deadline is not None and time.monotonic() >= self.deadline:
                return RunOutcome.TIMEOUT
            # Claim ahead of the workers; further ahead while they find only busy hosts'
            # tasks, so other hosts' work comes into view.
            ahead = batch * (MAX_LOOKAHEAD if self.waiting_on_hosts else 1)
            if self.queue.qsize() >= ahead:
                await self._wait(1.0)
                continue
            n = batch if self.budget is None else min(batch, self.budget)
            try:
                tasks = await self.outage(functools.partial(self.frontier.claim, n))
            except (DatabaseUnavailable, DatabaseFull):
                break
            if tasks:
                idle = IDLE_FIRST
                if self.budget is not None:
                    self.budget -= len(tasks)
                for task in tasks:
                    self.known.add(task.url)
                    self.in_flight.add(task.frontier_id)
                    self.queue.put_nowait(task)
                continue
            if not self.in_flight and self.sitemaps.done:
                try:
                    open_rows = await self.outage(self.frontier.open_count)
                except (DatabaseUnavailable, DatabaseFull):
                    break
                if open_rows == 0:
                    return RunOutcome.FINISHED
            await self._wait(idle)
            idle = min(idle * 2, IDLE_MAX)
        return RunOutcome.STOPPED

    async def _wait(self, seconds: float) -> None:
        """Wait for progress since the caller last cleared `progress`, at most `seconds`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.progress.wait()

    async def _drain(self, grace: float | None, *, keep_queued: bool) -> None:
        """Wait for the tasks being worked on (at most `grace` seconds if given). Tasks claimed
        but not started are handed back, unless `keep_queued` (the run is finishing anyway)."""
        if not keep_queued:
            while not self.queue.empty():
                task = self.queue.get_nowait()
                self.in_flight.discard(task.frontier_id)
                self.unstarted.append(task.frontier_id)
        deadline = None if grace is None else time.monotonic() + grace
        while True:
            self.progress.clear()
            if not self.in_flight:
                return
            if deadline is not None and time.monotonic() >= deadline:
                return
            await self._wait(0.1)

    async def _renew(self) -> None:
        interval = max(self.settings.lease_seconds / 3, 1.0)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                await self.frontier.renew(list(self.in_flight))

    async def _worker(self) -> None:
        while True:
            task = await self.queue.get()
            if self.hosts.saturated(task.url) and not self.queue.empty():
                # Its host has every slot busy: take another host's task first, rather than
                # wait here while other hosts could be crawled.
                self.queue.put_nowait(task)
                self.waiting_on_hosts += 1
                if self.waiting_on_hosts == 1:
                    self.progress.set()  # the feeder claims further ahead
                await asyncio.sleep(SATURATED_PAUSE)
                continue
            self.waiting_on_hosts = 0
            try:
                await self.runner.run(task)
            finally:
                self.in_flight.discard(task.frontier_id)
                self.progress.set()
