"""Per-host politeness and robots.txt, as one process of a run applies them.

`Hosts.fetch` is the only way the runner fetches, whatever the `Fetcher` behind it (plain
HTTP, or a browser that renders): at most `concurrency` requests in flight in all (the pool
runs more workers than that), at most `host_concurrency` to a host at once, its delay (or
Crawl-delay) between their starts, Retry-After and 429/503 backoff; once another process
has joined the run, the slots and delays go through the database (`HostGate`) so they hold
across processes. `Hosts.robots` fetches, caches and refreshes each
origin's robots.txt. A host whose 429/5xx asks for a pause longer than --max-crawl-delay
(`decide.deferral`) is left for the next run: `deferred` says why, and the runner fails its
URLs without fetching them; its clock is not blocked, so its tasks are not held back.

Which task goes next is not decided here: the pool's feeder claims tasks in frontier order,
and a worker whose task's host has every slot busy takes another (`saturated`). A
host-aware frontier, handing out tasks by host readiness, replaces that pick; `wait` and
`saturated` are what it needs to know of this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping

from crawler.config import Settings
from crawler.decide import (
    ROBOTS_RETRY_DELAY,
    THROTTLE_STATUSES,
    UNREACHABLE_KINDS,
    asked_wait,
    deferral,
)
from crawler.errors import DatabaseError
from crawler.kinds import ErrorKind
from crawler.outage import DatabaseOutage
from crawler.politeness import HostClock
from crawler.records import FetchResult
from crawler.robots import RobotsPolicy
from crawler.seams import Fetcher, HostGate
from crawler.urls import host_key, origin

ROBOTS_TTL = 3600.0
ROBOTS_RETRY_TTL = ROBOTS_RETRY_DELAY  # 5xx/429: fetched again for the task's retry
ROBOTS_DOWN_TTL = 60.0  # no answer at all: the host's URLs fail meanwhile, none fetched
ROBOTS_MAX_REDIRECTS = 5  # RFC 9309: follow at least five
HOST_BUSY_WAIT = 0.2


class Hosts:
    """The hosts of a run as this process sees them: slots, clocks, robots policies."""

    def __init__(
        self,
        settings: Settings,
        fetcher: Fetcher,
        gate: HostGate | None,
        outage: DatabaseOutage,
    ) -> None:
        self.settings = settings
        self.fetcher = fetcher
        self.gate = gate
        self.outage = outage
        self.slots: dict[str, asyncio.Semaphore] = {}
        # Requests in flight in this process (--concurrency), taken last: a task waiting for
        # its host's slot or delay holds none.
        self.requests = asyncio.Semaphore(settings.concurrency)
        self.requests_in_flight = 0  # HTTP requests under way now (the live display's)
        self.clocks: dict[str, HostClock] = {}
        self.policies: dict[str, tuple[float, RobotsPolicy]] = {}
        self.robots_locks: dict[str, asyncio.Lock] = {}
        self.deferrals: dict[str, str] = {}  # host -> why it is left for the next run

    def deferred(self, url: str) -> str | None:
        """Why the URL's host is left for the next run (a Retry-After over
        --max-crawl-delay), or None."""
        return self.deferrals.get(host_key(url)) if self.deferrals else None

    def saturated(self, url: str) -> bool:
        """Are all of the URL's host's request slots in use in this process?"""
        slot = self.slots.get(host_key(url))
        return slot is not None and slot.locked()

    def wait(self, url: str) -> float:
        """Seconds before the URL's host may be asked again (Retry-After, backoff)."""
        clock = self.clocks.get(host_key(url))
        return 0.0 if clock is None else clock.waiting(time.monotonic())

    async def fetch(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        max_redirects: int | None = None,
    ) -> FetchResult:
        """Fetch politely: at most host_concurrency requests to a host at once and the
        host's delay between their starts; across processes once others joined the run. At
        most `concurrency` requests of this process are in flight at once."""
        host = host_key(url)
        slot = self.slots.get(host)
        if slot is None:
            slot = self.slots[host] = asyncio.Semaphore(self.settings.host_concurrency)
            self.clocks.setdefault(host, HostClock(self.settings.delay))
        clock = self.clocks[host]
        async with slot:
            shared = await self._shared_slot(host, clock) if self.gate is not None else None
            wait = clock.reserve(time.monotonic()) if shared is None else shared[1]
            try:
                if wait > 0:
                    await asyncio.sleep(wait)
                async with self.requests:
                    self.requests_in_flight += 1
                    try:
                        result = await self.fetcher.fetch(
                            url, headers=headers, max_redirects=max_redirects
                        )
                    finally:
                        self.requests_in_flight -= 1
            finally:
                if shared is not None and self.gate is not None:
                    with contextlib.suppress(DatabaseError):
                        await self.gate.release(host, shared[0])
            reason = deferral(result, self.settings)
            if reason is not None:
                self.deferrals.setdefault(host, reason)
            elif result.status in THROTTLE_STATUSES:
                now = time.monotonic()
                seconds = asked_wait(result, self.settings)
                if seconds is not None:
                    clock.block_until(now + seconds)
                else:
                    clock.throttled(now)
                if shared is not None and self.gate is not None:
                    with contextlib.suppress(DatabaseError):
                        await self.gate.block(host, clock.waiting(now))
            return result

    async def _shared_slot(self, host: str, clock: HostClock) -> tuple[int, float] | None:
        """A request slot of `host` from the database, once several processes share the run
        (None while this process is alone: then the in-memory clock is enough)."""
        gate = self.gate
        assert gate is not None
        if not await self.outage(gate.active):
            return None
        limit = self.settings.host_concurrency
        while True:
            got = await self.outage(lambda: gate.acquire(host, limit, clock.delay))
            if got is not None:
                return got
            await asyncio.sleep(HOST_BUSY_WAIT)

    async def robots(self, url: str) -> RobotsPolicy:
        """The policy of the URL's origin: cached (ROBOTS_TTL; a failed fetch of robots.txt
        for less long), else fetched once however many tasks ask at the same time. A host
        left for the next run is not asked again: the last policy stands."""
        key = origin(url)
        cached = self.policies.get(key)
        now = time.monotonic()
        if cached is not None and (cached[0] > now or self.deferred(url) is not None):
            return cached[1]
        lock = self.robots_locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self.policies.get(key)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
            result = await self.fetch(key + "/robots.txt", max_redirects=ROBOTS_MAX_REDIRECTS)
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
            if policy.crawl_delay:
                delay = min(policy.crawl_delay, self.settings.max_crawl_delay)
                clock = self.clocks.setdefault(host_key(url), HostClock())
                clock.delay = max(self.settings.delay, delay)
            return policy
