"""The worker pool: N asyncio workers take leased tasks, fetch, parse, scope and store them.

It sees only the `Frontier`, `Fetcher` and `PageSink` Protocols (PostgreSQL and aiohttp are
wired in by run.py), so tests can drive it with fakes. A feeder claims batches from the
frontier while workers drain a small local queue; the run ends when the frontier holds no
open row (queued, or leased by any process), when the page budget is spent, or on `stop()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import time
from collections import deque
from collections.abc import Mapping
from typing import Protocol

from crawler.config import Settings
from crawler.parse import parse_html
from crawler.politeness import HostClock, backoff
from crawler.records import CrawlTask, FetchResult, PageRecord, RunStats
from crawler.robots import RobotsPolicy
from crawler.scope import Scope
from crawler.urls import canonicalize, host_key, origin

log = logging.getLogger("crawler")

HTML_TYPES = ("text/html", "application/xhtml+xml")
ROBOTS_TTL = 3600.0
LAG_INTERVAL = 0.05


class Frontier(Protocol):
    async def claim(self, n: int) -> list[CrawlTask]: ...
    async def open_count(self) -> int: ...
    async def release(self, ids: list[int]) -> None: ...
    async def renew(self, ids: list[int]) -> None: ...


class Fetcher(Protocol):
    async def fetch(self, url: str, *, headers: Mapping[str, str] | None = None) -> FetchResult: ...


class PageSink(Protocol):
    async def complete(self, record: PageRecord) -> int: ...
    async def retry_later(self, task: CrawlTask, fetch: FetchResult, delay: float) -> None: ...


class Pool:
    def __init__(
        self,
        settings: Settings,
        scope: Scope,
        frontier: Frontier,
        fetcher: Fetcher,
        sink: PageSink,
        *,
        stats: RunStats | None = None,
        already_fetched: int = 0,
    ) -> None:
        self.settings = settings
        self.scope = scope
        self.frontier = frontier
        self.fetcher = fetcher
        self.sink = sink
        self.stats = stats or RunStats()
        self.budget = settings.max_pages - already_fetched if settings.max_pages else None
        self.in_flight: set[int] = set()
        self.queue: asyncio.Queue[CrawlTask] = asyncio.Queue()
        self.progress = asyncio.Event()
        self.stopping = False
        self.host_slots: dict[str, asyncio.Semaphore] = {}
        self.host_clocks: dict[str, HostClock] = {}
        self.robots: dict[str, tuple[float, RobotsPolicy]] = {}
        self.robots_locks: dict[str, asyncio.Lock] = {}
        self.lags: deque[float] = deque(maxlen=200_000)
        self.open_rows = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop claiming; in-flight tasks finish (run() gives them a grace period)."""
        self.stopping = True
        self.progress.set()

    async def run(self, *, grace: float = 5.0) -> str:
        """Crawl until the frontier is empty ('finished'), the budget is spent ('limit') or
        stop() is called ('stopped')."""
        self.stats.started_at = time.monotonic()
        workers = [asyncio.create_task(self._worker()) for _ in range(self.settings.concurrency)]
        helpers = [asyncio.create_task(self._watch_lag()), asyncio.create_task(self._renew())]
        try:
            outcome = await self._feed()
            await self._drain(grace if outcome == "stopped" else None)
        finally:
            for task in workers + helpers:
                task.cancel()
            await asyncio.gather(*workers, *helpers, return_exceptions=True)
            leftover = list(self.in_flight)
            self.in_flight.clear()
            with contextlib.suppress(Exception):
                await asyncio.shield(self.frontier.release(leftover))
            self.stats.finished_at = time.monotonic()
            self.stats.loop_lag_ms = self.lag_summary()
        return outcome

    async def _feed(self) -> str:
        idle = 0.01
        batch = max(1, min(self.settings.concurrency, 64))
        while not self.stopping:
            if self.budget is not None and self.budget <= 0:
                return "limit"
            if self.queue.qsize() >= batch:
                await self._wait(1.0)
                continue
            n = batch if self.budget is None else min(batch, self.budget)
            tasks = await self.frontier.claim(n)
            if tasks:
                idle = 0.01
                if self.budget is not None:
                    self.budget -= len(tasks)
                for task in tasks:
                    self.in_flight.add(task.frontier_id)
                    self.queue.put_nowait(task)
                continue
            if not self.in_flight:
                self.open_rows = await self.frontier.open_count()
                if self.open_rows == 0:
                    return "finished"
            await self._wait(idle)
            idle = min(idle * 2, 1.0)
        return "stopped"

    async def _wait(self, seconds: float) -> None:
        self.progress.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.progress.wait()

    async def _drain(self, grace: float | None) -> None:
        """Wait for in-flight tasks; with a grace period, drop queued ones and stop waiting
        after it."""
        if grace is not None:
            while not self.queue.empty():
                self.queue.get_nowait()
        deadline = None if grace is None else time.monotonic() + grace
        while self.in_flight:
            if deadline is not None and time.monotonic() >= deadline:
                return
            await self._wait(0.1)

    async def _renew(self) -> None:
        interval = max(self.settings.lease_seconds / 3, 1.0)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                await self.frontier.renew(list(self.in_flight))

    async def _watch_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_INTERVAL)
            self.lags.append(max(loop.time() - before - LAG_INTERVAL, 0.0) * 1000)

    def lag_summary(self) -> dict[str, float]:
        if not self.lags:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0}
        ordered = sorted(self.lags)

        def pick(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

        return {"p50": pick(0.5), "p99": pick(0.99), "max": round(ordered[-1], 2)}

    # -- one task ----------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            task = await self.queue.get()
            try:
                await self._handle(task)
            except Exception as exc:  # a bug or a lost database must not kill the worker
                await self._failed(task, exc)
            finally:
                self.in_flight.discard(task.frontier_id)
                self.progress.set()

    async def _handle(self, task: CrawlTask) -> None:
        if not self.settings.ignore_robots:
            robots = await self._robots(task.url)
            if not robots.allowed(task.url):
                result = FetchResult(
                    task.url,
                    task.url,
                    None,
                    None,
                    error_kind="robots",
                    error="disallowed by robots.txt",
                )
                await self._complete(PageRecord(task, result, None, None))
                return
        result = await self._fetch(task.url)
        if result.retryable and task.attempts <= self.settings.retries:
            self.stats.retries += 1
            await self.sink.retry_later(task, result, self._retry_delay(result, task.attempts))
            return
        await self._complete(self._record(task, result))

    async def _failed(self, task: CrawlTask, exc: Exception) -> None:
        """Record an unexpected failure of one task; its lease expires if even that fails."""
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        log.warning("task %s failed: %s", task.url, message)
        result = FetchResult(task.url, task.url, None, None, error_kind="internal", error=message)
        try:
            await self._complete(PageRecord(task, result, None, None))
        except Exception as again:
            log.warning("could not record the failure of %s: %s", task.url, again)

    def _retry_delay(self, result: FetchResult, attempt: int) -> float:
        retry_after = _retry_after(result.header("retry-after"))
        if retry_after is not None:
            return min(retry_after, self.settings.max_crawl_delay * 10)
        return backoff(attempt)

    def _record(self, task: CrawlTask, result: FetchResult) -> PageRecord:
        if result.error_kind is not None:
            return PageRecord(task, result, None, None)
        status = result.status or 0
        if status >= 400 or status < 200:
            failed = dataclasses.replace(result, error_kind="http_status", error=f"HTTP {status}")
            return PageRecord(task, failed, None, None)
        final = canonicalize(result.final_url) or task.url
        if final != task.url:
            # Redirected: the target is crawled under its own URL, if in scope.
            target = self.scope.filter([final], task.depth)
            return PageRecord(task, result, None, None, tuple(target), task.depth)
        if result.text is None or not _is_html(result.content_type):
            return PageRecord(task, result, None, None)
        page = parse_html(result.text, result.final_url)
        digest = hashlib.blake2b(result.body, digest_size=16).hexdigest()
        follow: tuple[str, ...] = ()
        if not page.nofollow:
            candidates = [url for url, _text, nofollow in page.links if not nofollow]
            follow = tuple(self.scope.filter(candidates, task.depth + 1))
        return PageRecord(task, result, page, digest, follow, task.depth + 1)

    async def _complete(self, record: PageRecord) -> None:
        queued = await self.sink.complete(record)
        self.stats.count(record.fetch)
        if record.page is not None:
            self.stats.pages += 1
        if queued > 0:
            self.stats.queued += queued

    # -- politeness --------------------------------------------------------------------------

    async def _fetch(self, url: str) -> FetchResult:
        host = host_key(url)
        slot = self.host_slots.get(host)
        if slot is None:
            slot = self.host_slots[host] = asyncio.Semaphore(self.settings.host_concurrency)
            self.host_clocks[host] = HostClock(self.settings.delay)
        clock = self.host_clocks[host]
        async with slot:
            wait = clock.reserve(time.monotonic())
            if wait > 0:
                await asyncio.sleep(wait)
            result = await self.fetcher.fetch(url)
            if result.status in (429, 503):
                retry_after = _retry_after(result.header("retry-after"))
                if retry_after is not None:
                    clock.block_until(time.monotonic() + min(retry_after, 3600.0))
            return result

    async def _robots(self, url: str) -> RobotsPolicy:
        key = origin(url)
        cached = self.robots.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        lock = self.robots_locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self.robots.get(key)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
            result = await self._fetch(key + "/robots.txt")
            status = result.status if result.error_kind is None else None
            policy = RobotsPolicy.from_response(status, result.body, self.settings.user_agent)
            ttl = 60.0 if policy.temporary else ROBOTS_TTL
            self.robots[key] = (time.monotonic() + ttl, policy)
            if policy.crawl_delay:
                delay = min(policy.crawl_delay, self.settings.max_crawl_delay)
                clock = self.host_clocks.setdefault(host_key(url), HostClock())
                clock.delay = max(self.settings.delay, delay)
            return policy


def _is_html(content_type: str | None) -> bool:
    return content_type is None or content_type.split(";")[0].strip().lower() in HTML_TYPES


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)
