"""The worker pool: it claims bookings, starts each at its time, drains, and renews leases.

A feeder claims `Booking`s from the host-aware `Frontier` (crawler.db.host_frontier): tasks
of hosts that may be fetched now or within a moment, each with its host's slot and start
booked for it. A booking due now goes to the workers' queue; one due later goes there at its
start (a timer), so no worker sits on a host that is busy; a lane (several tasks of a host
with no delay booked in one slot) goes on to its next task when the request before it ends,
with no claim between. N workers take tasks from the queue and hand each to the `TaskRunner`
(crawler.runner), which decides, fetches in the booking, and stores. What the requests
taught of their hosts (slots freed, next starts, Retry-After, Crawl-delay) waits in the
`HostPacer` (crawler.pacer) until the feeder writes it, just before its next claim. The
feeder claims when something may have made work claimable: a slot freed, a task's end (its
page's links queued, room in the pool), sitemap URLs queued; not when a task whose lane goes
on ends, as its slot went on to the lane's next task. The run ends when the frontier holds
no open row (queued, or leased by any process), when the page budget or time budget is
spent, on `stop()`, or when the database gives the run up (`DatabaseOutage`). Sitemap
reading and loop-lag measurement run beside the workers, in rooms of their own
(crawler.sitemap_feed, crawler.loop_health).

The pool sees only Protocols (crawler.seams); run.py wires in PostgreSQL and aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import time

from crawler.config import Settings
from crawler.errors import DatabaseFull, DatabaseUnavailable
from crawler.hosts import Hosts
from crawler.kinds import RunOutcome
from crawler.known import KnownUrls
from crawler.loop_health import LagMeter, tuned_gc
from crawler.outage import DatabaseOutage
from crawler.pacer import HostPacer
from crawler.parse_workers import InlineParser, Parser
from crawler.records import Booking, HostDone, HostTurn, RunStats
from crawler.runner import TaskRunner
from crawler.scope import Scope
from crawler.seams import Fetcher, Frontier, Store
from crawler.sitemap_feed import SitemapFeed

# Seconds between claims that found less than they asked for: hosts come due meanwhile, and
# finished requests free slots. Claims that filled their batch follow each other at once.
CLAIM_EVERY = 0.01
IDLE_CLAIM = 0.1  # seconds between claims while nothing is claimable (hosts not due yet)
GRACE = 5.0  # seconds in-flight tasks get to finish after stop()
# Workers a request slot (--concurrency; Hosts caps the requests in flight). A worker waits
# for its page's write after the fetch, and meanwhile the spare workers keep the requests
# going; with one worker a slot, the slots of the pages in the batch being written stood
# idle (README, "Performance").
WORKERS_PER_SLOT = 2
REAP_EVERY = 5.0  # seconds between looks for leases and bookings that ran out


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
        parser: Parser | None = None,
    ) -> None:
        self.settings = settings
        self.frontier = frontier
        self.stats = RunStats()
        self.budget = settings.max_pages or None  # per invocation
        self.deadline = time.monotonic() + settings.max_duration if settings.max_duration else None
        # Claimed, not done: waiting, queued, worked on, or behind another in its lane.
        self.in_flight: set[int] = set()
        self.started: set[int] = set()  # of those, handed to the runner
        self.timers: dict[int, asyncio.TimerHandle] = {}  # bookings not due yet
        self.lanes: dict[int, Booking] = {}  # frontier id -> the next task in its slot
        self.queue: asyncio.Queue[Booking] = asyncio.Queue()
        self.progress = asyncio.Event()
        self.stopping = False
        self.known = KnownUrls()
        self.outage = DatabaseOutage(settings.database_wait, self.stop)
        self.pacer = HostPacer(self.progress.set)
        self.hosts = Hosts(settings, fetcher, self.pacer, self._book, self._handoff)
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
                await asyncio.shield(self._hand_back())
                self.stats.finished_at = time.monotonic()
                self.stats.loop_lag_ms = self.lag.summary()
        fatal = self.outage.fatal
        if isinstance(fatal, DatabaseFull):
            return RunOutcome.DATABASE_FULL
        if fatal is not None:
            raise fatal
        return outcome

    async def _hand_back(self) -> None:
        """Give back what this process still holds: tasks never started with their hosts'
        slots (one a lane), started ones whose requests are already accounted for, and the
        tasks behind another in a lane."""
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        behind = {booking.task.frontier_id for booking in self.lanes.values()}
        unstarted = [i for i in self.in_flight if i not in self.started and i not in behind]
        rest = [i for i in self.in_flight if i in self.started or i in behind]
        self.in_flight.clear()
        self.lanes.clear()
        with contextlib.suppress(Exception):
            await self.pacer.flush(self.frontier)
        with contextlib.suppress(Exception):
            await self.frontier.release(unstarted)
        with contextlib.suppress(Exception):
            await self.frontier.requeue(rest)

    async def _feed(self) -> RunOutcome:
        # Bookings: a lane (several tasks of a host with no delay, one after the other in
        # one slot) counts once, as it holds one slot and one worker at a time.
        batch = max(1, min(self.settings.concurrency, 64))
        room = WORKERS_PER_SLOT * self.settings.concurrency + batch
        last_claim = 0.0
        while not self.stopping:
            # Cleared before we look: progress made while we claim (a task done, stop())
            # then ends the wait below at once instead of being lost with the clear.
            self.progress.clear()
            if self.budget is not None and self.budget <= 0:
                if not self.in_flight:
                    return RunOutcome.LIMIT
                # A task in flight may go back untried (its booking read robots.txt) and
                # give its page back to the budget.
                await self._wait(IDLE_CLAIM)
                continue
            if self.deadline is not None and time.monotonic() >= self.deadline:
                return RunOutcome.TIMEOUT
            # Bookings waiting for their start (timers) hold no worker, nor do the tasks
            # behind another in a lane: they do not count.
            n = min(batch, room - (len(self.in_flight) - len(self.lanes) - len(self.timers)))
            if self.budget is not None:
                n = min(n, self.budget)
            if n <= 0:
                await self._wait(IDLE_CLAIM)
                continue
            # Claims that found less than asked wait for slots to free and hosts to come due.
            pause = last_claim + CLAIM_EVERY - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            try:
                await self.outage(functools.partial(self.pacer.flush, self.frontier))
                last_claim = time.monotonic()
                claim = functools.partial(self.frontier.claim, n, tasks=self.budget)
                bookings = await self.outage(claim)
            except (DatabaseUnavailable, DatabaseFull):
                break
            if bookings:
                claimed = self._schedule(bookings)
                if self.budget is not None:
                    self.budget -= claimed
                if len(bookings) == n:
                    last_claim = 0.0  # a full batch: there may be more ready at once
                    continue
            elif not self.in_flight and self.sitemaps.done:
                try:
                    open_rows = await self.outage(self.frontier.open_count)
                except (DatabaseUnavailable, DatabaseFull):
                    break
                if open_rows == 0:
                    return RunOutcome.FINISHED
            await self._wait(IDLE_CLAIM)
        return RunOutcome.STOPPED

    async def _book(self, host: str) -> HostTurn | None:
        """A turn of `host` for a request with no task (robots.txt for the sitemaps, a
        sitemap), booked in the frontier like a claim's."""
        return await self.outage(functools.partial(self.frontier.book, host))

    def _schedule(self, bookings: list[Booking]) -> int:
        """Each booking to the workers at its start: at once, or by a timer; the rest of its
        lane each when the request before it ends (`_handoff`). Returns the tasks claimed."""
        loop = asyncio.get_running_loop()
        claimed = 0
        for booking in bookings:
            lane = (booking, *booking.then)
            for one, after in itertools.pairwise(lane):
                self.lanes[one.task.frontier_id] = after
            for one in lane:
                self.known.add(one.task.url)
                self.in_flight.add(one.task.frontier_id)
            claimed += len(lane)
            if booking.wait <= 0:
                self.queue.put_nowait(booking)
            else:
                handle = loop.call_later(booking.wait, self._due, booking)
                self.timers[booking.task.frontier_id] = handle
        return claimed

    def _handoff(self, booking: Booking, done: HostDone) -> None:
        """A booking's request is over: its slot goes to the next task of its lane (no
        claim; while stopping, that task is handed back with the slot), else back to the
        frontier."""
        after = self.lanes.pop(booking.task.frontier_id, None)
        if after is None:
            self.pacer.done(done)
        elif not self.stopping:
            self.queue.put_nowait(after)

    def _due(self, booking: Booking) -> None:
        if self.timers.pop(booking.task.frontier_id, None) is not None:
            self.queue.put_nowait(booking)

    async def _wait(self, seconds: float) -> None:
        """Wait for progress since the caller last cleared `progress`, at most `seconds`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.progress.wait()

    async def _drain(self, grace: float | None, *, keep_queued: bool) -> None:
        """Wait for the tasks being worked on (at most `grace` seconds if given). Tasks claimed
        but not started are handed back (`_hand_back`), unless `keep_queued` (the run is
        finishing anyway: they are started at their time)."""
        if not keep_queued:
            for handle in self.timers.values():
                handle.cancel()
            self.timers.clear()
            while not self.queue.empty():
                self.queue.get_nowait()
        deadline = None if grace is None else time.monotonic() + grace
        while True:
            self.progress.clear()
            if not (self.started & self.in_flight) and (not keep_queued or not self.in_flight):
                return
            if deadline is not None and time.monotonic() >= deadline:
                return
            await self._wait(0.1)

    async def _renew(self) -> None:
        interval = max(self.settings.lease_seconds / 3, 1.0)
        renewed = reaped = time.monotonic()
        while True:
            await asyncio.sleep(min(interval, REAP_EVERY))
            now = time.monotonic()
            with contextlib.suppress(Exception):
                if now - renewed >= interval:
                    renewed = now
                    await self.frontier.renew(list(self.in_flight))
                if now - reaped >= REAP_EVERY:
                    reaped = now
                    await self.frontier.reap()

    async def _worker(self) -> None:
        while True:
            booking = await self.queue.get()
            task = booking.task
            if self.stopping:
                continue  # not started: handed back with its host's slot (_hand_back)
            # A task whose lane goes on handed its slot to the next task when its request
            # ended: its end frees no slot and no room (a lane counts once), so it does not
            # wake the feeder, whose claim would find nothing. Any other end may.
            lane_goes_on = task.frontier_id in self.lanes
            self.started.add(task.frontier_id)
            untried = False
            try:
                untried = await self.runner.run(task, booking)
                if untried and self.budget is not None:
                    self.budget += 1  # its booking read robots.txt
            finally:
                self.in_flight.discard(task.frontier_id)
                self.started.discard(task.frontier_id)
                if untried or not lane_goes_on or self.stopping or not self.in_flight:
                    self.progress.set()
