"""Per-host politeness and robots.txt, as one process of a run applies them.

`Hosts.fetch` is the only way the runner fetches, whatever the `Fetcher` behind it (plain
HTTP, or a browser that renders). Which host goes next is the frontier's: a task comes
with a `Booking` (crawler.records), its host's request slot and start time booked in the
database for every process of the run (crawler.db.host_frontier), and the pool starts it
no earlier than booked. A request with no task behind it (a sitemap, robots.txt read for
the sitemaps or a rendered page's scripts) takes a `HostTurn` of its host, booked the same
way (`booker`). Here a request also waits for one of this process's `concurrency` request
slots. When it ends, the throttle (crawler.throttle) sets the host's next delay from the
answer, and the pacer (crawler.pacer) hands that to the frontier: the slot freed, the next
start paced from when the request went out; or the slot goes on to the next task of its lane
(`handoff`, the pool's). A Retry-After blocks the host for every process; a 429/503 without
one backs its delay off. With no frontier (unit tests), an in-process clock per host spaces
the requests instead.

`Hosts.robots_for` fetches, caches and refreshes each origin's robots.txt with the booking
of the task that asked (that task then goes back to the queue: its booking is spent), and
gives way to a read without a booking that may be waiting for that very slot. A host whose
429/5xx asks for a pause longer than --max-crawl-delay (`decide.deferral`) is left for the
next run: `deferred` says why, and the runner fails its URLs without fetching them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from crawler.config import Settings
from crawler.decide import (
    ROBOTS_RETRY_DELAY,
    THROTTLE_STATUSES,
    UNREACHABLE_KINDS,
    asked_wait,
    deferral,
)
from crawler.kinds import ErrorKind
from crawler.pacer import HostPacer
from crawler.politeness import HostClock
from crawler.records import Booking, FetchResult, HostDone, HostTurn
from crawler.robots import RobotsPolicy
from crawler.seams import Fetcher
from crawler.throttle import Throttle
from crawler.urls import host_key, origin

ROBOTS_TTL = 3600.0
ROBOTS_RETRY_TTL = ROBOTS_RETRY_DELAY  # 5xx/429: fetched again for the task's retry
ROBOTS_DOWN_TTL = 60.0  # no answer at all: the host's URLs fail meanwhile, none fetched
ROBOTS_MAX_REDIRECTS = 5  # RFC 9309: follow at least five
SWEEP_EVERY = 1000  # requests between sweeps of idle hosts' in-process state
TURN_RETRY = 0.1  # seconds between asks for a turn of a host with no free slot
# Books a turn of a host for a request with no task (the frontier's `book`, through the
# pool's outage): None while the host has no free slot.
Booker = Callable[[str], Awaitable[HostTurn | None]]
# Takes a booking's slot when its request is over (or was never made): to the next task of
# its lane (the pool's), else back to the frontier (`HostPacer.done`).
Handoff = Callable[[Booking, HostDone], None]


@dataclass(slots=True)
class _Local:
    """A host as this process sees it while it has requests to it in flight or recent."""

    clock: HostClock
    slot: asyncio.Semaphore
    users: int = 0
    blocked_until: float = 0.0  # Retry-After, backoff (monotonic)


class Hosts:
    """The hosts of a run as this process sees them: bookings used, robots policies."""

    def __init__(
        self,
        settings: Settings,
        fetcher: Fetcher,
        pacer: HostPacer | None = None,
        booker: Booker | None = None,
        handoff: Handoff | None = None,
    ) -> None:
        self.settings = settings
        self.fetcher = fetcher
        self.pacer = pacer or HostPacer()
        self.booker = booker
        self.handoff = handoff or self._free
        self.throttle = Throttle.from_delay(settings.delay)
        # Requests in flight in this process (--concurrency), taken last: a task waiting for
        # its host holds none.
        self.requests = asyncio.Semaphore(settings.concurrency)
        self.requests_in_flight = 0  # HTTP requests under way now (the live display's)
        self.local: dict[str, _Local] = {}
        self.policies: dict[str, tuple[float, RobotsPolicy]] = {}
        self.robots_locks: dict[str, asyncio.Lock] = {}
        self.robots_readers: dict[str, bool] = {}  # origin -> is its reader booked?
        self.robots_read: dict[str, asyncio.Event] = {}  # origin -> set once it has a policy
        self.deferrals: dict[str, str] = {}  # host -> why it is left for the next run
        self.spent: set[int] = set()  # frontier ids whose booking a request has used
        self.floors: dict[str, float] = {}  # host -> Crawl-delay, for unbooked requests
        self.requests_done = 0

    def deferred(self, url: str) -> str | None:
        """Why the URL's host is left for the next run (a Retry-After over
        --max-crawl-delay), or None."""
        return self.deferrals.get(host_key(url)) if self.deferrals else None

    def wait(self, url: str) -> float:
        """Seconds before the URL's host may be asked again (Retry-After, backoff)."""
        local = self.local.get(host_key(url))
        return 0.0 if local is None else max(local.blocked_until - time.monotonic(), 0.0)

    def settle(self, booking: Booking) -> None:
        """The task of `booking` is done with its host: a booking no request used hands its
        slot on (`handoff`), and keeps the start it booked."""
        if booking.task.frontier_id in self.spent:
            self.spent.discard(booking.task.frontier_id)
        else:
            self.handoff(booking, HostDone(booking.host_id, 0.0, booking.delay))

    def _free(self, booking: Booking, done: HostDone) -> None:
        self.pacer.done(done)

    async def fetch(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        max_redirects: int | None = None,
        booking: Booking | None = None,
    ) -> FetchResult:
        """Fetch politely: with a booking, at its start or later; without one (robots.txt
        for the sitemaps, a sitemap), in a turn of the host booked here, or with no frontier
        to book from, at the host's delay from this process's last request to it. At most
        `concurrency` requests of this process are in flight at once."""
        host = host_key(url)
        local = self._local(host)
        local.users += 1
        turn: Booking | HostTurn | None = booking
        try:
            if turn is None and self.booker is not None:
                turn = await self._turn(host)
            async with local.slot:
                now = time.monotonic()
                # In a booking or turn: at its start or later, and after any unbooked
                # request of ours to the host; unbooked: the host's delay after our last
                # request to it.
                pause = local.clock.reserve(now) if turn is None else local.clock.waiting(now)
                if pause > 0:
                    await asyncio.sleep(pause)
                async with self.requests:
                    self.requests_in_flight += 1
                    started = time.monotonic()
                    # The real start, after the wait for a request slot: the next unbooked
                    # request keeps its distance from it.
                    gap = local.clock.delay if turn is None else turn.gap
                    local.clock.block_until(started + gap)
                    try:
                        result = await self.fetcher.fetch(
                            url, headers=headers, max_redirects=max_redirects
                        )
                    finally:
                        self.requests_in_flight -= 1
                        if booking is not None:
                            self.spent.add(booking.task.frontier_id)
                # Paced from when the request went out, if known: later than `started`
                # when the loop was busy, and what the host saw.
                started = max(started, result.sent_at)
                local.clock.block_until(started + gap)
                self._paced(host, local, result, started, turn)
                turn = None
        finally:
            if isinstance(turn, HostTurn):  # booked here, never used: give the slot back
                self.pacer.done(HostDone(turn.host_id, 0.0, turn.delay))
            local.users -= 1
            self.requests_done += 1
            if self.requests_done % SWEEP_EVERY == 0:
                self._sweep()
        return result

    async def _turn(self, host: str) -> HostTurn:
        """A turn of `host` from the frontier, at its start."""
        assert self.booker is not None
        while True:
            turn = await self.booker(host)
            if turn is not None:
                break
            await asyncio.sleep(TURN_RETRY)  # a slot frees when a request ends: poll
        if turn.wait > 0:
            await asyncio.sleep(turn.wait)
        return turn

    def _local(self, host: str) -> _Local:
        local = self.local.get(host)
        if local is None:
            delay = self.throttle.first
            if host in self.floors:
                delay = max(delay, self.floors[host])
            slot = asyncio.Semaphore(self.settings.host_concurrency)
            local = self.local[host] = _Local(HostClock(delay), slot)
        return local

    def _paced(
        self,
        host: str,
        local: _Local,
        result: FetchResult,
        started: float,
        booking: Booking | HostTurn | None,
    ) -> None:
        """The host's pace after an answer: its next delay, blocks, deferral."""
        now = time.monotonic()
        status = result.status if result.error_kind is None else None
        reason = deferral(result, self.settings)
        if reason is not None:
            self.deferrals.setdefault(host, reason)
        # A 429/503 the host is not left for: a Retry-After blocks it, else it backs off.
        throttled = reason is None and result.status in THROTTLE_STATUSES
        seconds = asked_wait(result, self.settings) if throttled else None
        if seconds is not None:
            local.blocked_until = max(local.blocked_until, now + seconds)
            if booking is not None:
                self.pacer.block(booking.host_id, seconds)
        elif throttled and booking is None:
            local.clock.throttled(now)
            local.blocked_until = max(local.blocked_until, local.clock.next_at)
        if booking is not None:
            pace = self.throttle.after(booking.delay, now - started, status)
            if throttled and seconds is None:
                local.blocked_until = max(local.blocked_until, started + pace.delay)
            done = HostDone(booking.host_id, started, pace.delay)
            if isinstance(booking, Booking):
                self.handoff(booking, done)  # at the fetch's end: the page is not written yet
            else:
                self.pacer.done(done)

    def _sweep(self) -> None:
        """Forget hosts with nothing of this process in flight, waiting or blocked."""
        now = time.monotonic()
        idle = [
            host
            for host, local in self.local.items()
            if local.users == 0 and local.clock.next_at < now and local.blocked_until < now
        ]
        for host in idle:
            del self.local[host]

    async def robots_soon(self, url: str, within: float) -> RobotsPolicy:
        """The policy of the URL's origin, as the tasks of its host read it (with their
        bookings), waited for at most `within` seconds; then read in a turn of the host."""
        key = origin(url)
        read = self.robots_read.setdefault(key, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await read.wait()
        return await self.robots(url)

    async def robots(self, url: str) -> RobotsPolicy:
        """The policy of the URL's origin (see `_robots`), read in a turn of the host."""
        policy = await self._robots(url, None)
        assert policy is not None  # only a booked read gives way
        return policy

    async def robots_for(self, url: str, booking: Booking) -> RobotsPolicy | None:
        """The policy of the URL's origin for a booked task: read, if it must be, with the
        task's booking (`spent` then holds its id); None when a read without a booking (the
        sitemaps') is under way: it may be waiting for the very slot this booking holds,
        so the task gives its booking up and goes back to the queue."""
        return await self._robots(url, booking)

    async def _robots(self, url: str, booking: Booking | None) -> RobotsPolicy | None:
        """Cached (ROBOTS_TTL; a failed fetch of robots.txt for less long), else fetched
        once however many tasks ask at the same time. A host left for the next run is not
        asked again: the last policy stands."""
        key = origin(url)
        cached = self.policies.get(key)
        now = time.monotonic()
        if cached is not None and (cached[0] > now or self.deferred(url) is not None):
            return cached[1]
        lock = self.robots_locks.setdefault(key, asyncio.Lock())
        if booking is not None and lock.locked() and not self.robots_readers.get(key, True):
            return None
        async with lock:
            cached = self.policies.get(key)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
            self.robots_readers[key] = booking is not None
            result = await self.fetch(
                key + "/robots.txt", max_redirects=ROBOTS_MAX_REDIRECTS, booking=booking
            )
            status = result.status if result.error_kind is None else None
            if result.error_kind is ErrorKind.BLOCKED_ADDRESS:
                # A refused host: there is no robots.txt to obey; each fetch fails, and is
                # recorded with its own reason (blocked_address) by the fetcher itself.
                status = 404
            policy = RobotsPolicy.from_response(
                status,
                result.body,
                self.settings.user_agent,
                failure=result.error_kind if status is None else None,
                error=result.error or "",
            )
            ttl = ROBOTS_TTL
            if policy.temporary:
                down = policy.failure in UNREACHABLE_KINDS
                ttl = ROBOTS_DOWN_TTL if down else ROBOTS_RETRY_TTL
            self.policies[key] = (time.monotonic() + ttl, policy)
            self.robots_read.setdefault(key, asyncio.Event()).set()
            if policy.crawl_delay:
                self._crawl_delay(host_key(url), policy.crawl_delay)
            return policy

    def _crawl_delay(self, host: str, seconds: float) -> None:
        """robots.txt's Crawl-delay (capped at --max-crawl-delay): the least delay of the
        host for every process of the run."""
        delay = min(seconds, self.settings.max_crawl_delay)
        self.floors[host] = delay
        local = self.local.get(host)
        if local is not None:
            local.clock.delay = max(local.clock.delay, delay)
        self.pacer.min_delay(host, delay)
