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
import functools
import gc
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol, TypeVar

from crawler.config import Settings
from crawler.errors import DatabaseUnavailable
from crawler.hosts import Fetcher, HostGate, Hosts
from crawler.parse import stored_page
from crawler.parsers import InlineParser, Parser
from crawler.politeness import backoff, retry_after
from crawler.records import CrawlTask, FetchResult, PageRecord, RunStats
from crawler.robots import RobotsPolicy
from crawler.scope import Scope
from crawler.sitemap import SitemapReader, inflate
from crawler.urls import canonicalize

log = logging.getLogger("crawler")
T = TypeVar("T")
DB_WARN_AFTER = 3.0

HTML_TYPES = ("text/html", "application/xhtml+xml")
ROBOTS_RETRY_DELAY = 30.0
LAG_INTERVAL = 0.05
KNOWN_URLS = 50_000
SATURATED_PAUSE = 0.01
# Seconds the feeder waits when there is nothing to claim (doubling up to IDLE_MAX), unless
# a task is done first: its links may be claimable.
IDLE_FIRST = 0.01
IDLE_MAX = 1.0
MAX_LOOKAHEAD = 8  # batches claimed ahead when every queued task's host is busy
POSTPONE_AFTER = 2.0  # seconds a host may keep a worker waiting before its task goes back
MAX_SITEMAPS = 50
SITEMAP_SLICE = 200  # sitemap URLs decided on between two turns of the loop (about 1 ms)
GC_YOUNG = 10_000  # allocations between collections of the young generation, while crawling
# Workers a request slot (--concurrency; Hosts caps the requests in flight). A worker waits
# for its page's write after the fetch, and meanwhile the spare workers keep the requests
# going. With one worker a slot, the slots of the pages in the batch being written stood idle.
# Measured on the 10,000-page benchmark (medians of 6 interleaved crawls): 1,602 pages/s
# instead of 1,433, batches of 15 pages instead of 10, and the loop's CPU a page 15% lower.
WORKERS_PER_SLOT = 2


class KnownUrls:
    """A bounded set of URLs known to be in the run's frontier already (oldest forgotten
    first). Frontier rows are never removed during a run, so skipping these is always safe;
    it spares the database most of the links of a page, which point at known URLs."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.urls: dict[str, None] = {}

    def __contains__(self, url: object) -> bool:
        return url in self.urls

    def __len__(self) -> int:
        return len(self.urls)

    def add(self, url: str) -> None:
        urls = self.urls
        if url not in urls:
            urls[url] = None
            if len(urls) > self.size:
                del urls[next(iter(urls))]

    def update(self, urls: tuple[str, ...]) -> None:
        for url in urls:
            self.add(url)


class Frontier(Protocol):
    async def claim(self, n: int) -> list[CrawlTask]: ...
    async def open_count(self) -> int: ...
    async def release(self, ids: list[int]) -> None: ...
    async def renew(self, ids: list[int]) -> None: ...


class PageSink(Protocol):
    async def complete(self, record: PageRecord) -> int: ...
    async def retry_later(self, task: CrawlTask, fetch: FetchResult, delay: float) -> None: ...
    async def skip(self, task: CrawlTask, enqueue: tuple[str, ...], depth: int) -> int: ...
    async def postpone(self, task: CrawlTask, delay: float) -> None: ...
    async def stored_links(self, url: str) -> list[tuple[str, bool]]: ...
    async def enqueue_listed(
        self, entries: list[tuple[str, datetime | None]], depth: int
    ) -> int: ...


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
        sitemap_origins: tuple[str, ...] = (),
        gate: HostGate | None = None,
        parser: Parser | None = None,
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
        self.deadline = time.monotonic() + settings.max_duration if settings.max_duration else None
        self.db_down_since: float | None = None
        self.db_warned = False
        self.fatal: DatabaseUnavailable | None = None
        self.lags: deque[float] = deque(maxlen=200_000)
        self.known = KnownUrls(KNOWN_URLS)
        self.hosts = Hosts(settings, fetcher, gate, self._with_db)
        self.waiting_on_hosts = 0
        self.unstarted: list[int] = []
        self.parser = parser or InlineParser(None)
        self.sitemap_origins = sitemap_origins
        self.sitemaps_done = not sitemap_origins

    # -- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop claiming; in-flight tasks finish (run() gives them a grace period)."""
        self.stopping = True
        self.progress.set()

    async def run(self, *, grace: float = 5.0) -> str:
        """Crawl until the frontier is empty ('finished'), the page budget is spent ('limit'),
        the time budget is spent ('timeout': in-flight tasks finish) or stop() is called
        ('stopped': in-flight tasks get `grace` seconds). Raises DatabaseUnavailable when the
        database stayed away longer than settings.database_wait."""
        # What the process built to get here (modules, the CLI, SQLAlchemy's and aiohttp's
        # setup) lives as long as the crawl: frozen, it is not walked again by every full
        # collection, each of which held the loop for about 60 ms (2 ms once frozen). And the
        # young generation is collected every GC_YOUNG allocations instead of 700: most of a
        # page's objects die young anyway, and a 10k-page crawl's collections took 230 ms of
        # the loop in 621 passes, 98 ms in 26 (about 4 ms each).
        gc.collect()
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(GC_YOUNG, *thresholds[1:])
        self.stats.started_at = time.monotonic()
        n = WORKERS_PER_SLOT * self.settings.concurrency
        workers = [asyncio.create_task(self._worker()) for _ in range(n)]
        helpers = [
            asyncio.create_task(self._watch_lag()),
            asyncio.create_task(self._renew()),
            asyncio.create_task(self._read_sitemaps()),
        ]
        try:
            outcome = await self._feed()
            await self._drain(
                grace if outcome == "stopped" else None,
                keep_queued=outcome in ("finished", "limit"),
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
            self.stats.loop_lag_ms = self.lag_summary()
            gc.set_threshold(*thresholds)
            gc.unfreeze()
        if self.fatal is not None:
            raise self.fatal
        return outcome

    async def _feed(self) -> str:
        idle = IDLE_FIRST
        batch = max(1, min(self.settings.concurrency, 64))
        while not self.stopping:
            # Cleared before we look: progress made while we claim (a task done, stop())
            # then ends the wait below at once instead of being lost with the clear.
            self.progress.clear()
            if self.budget is not None and self.budget <= 0:
                return "limit"
            if self.deadline is not None and time.monotonic() >= self.deadline:
                return "timeout"
            # Claim ahead of the workers; further ahead while they find only busy hosts'
            # tasks, so other hosts' work comes into view.
            ahead = batch * (MAX_LOOKAHEAD if self.waiting_on_hosts else 1)
            if self.queue.qsize() >= ahead:
                await self._wait(1.0)
                continue
            n = batch if self.budget is None else min(batch, self.budget)
            try:
                tasks = await self._with_db(functools.partial(self.frontier.claim, n))
            except DatabaseUnavailable:
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
            if not self.in_flight and self.sitemaps_done:
                try:
                    open_rows = await self._with_db(self.frontier.open_count)
                except DatabaseUnavailable:
                    break
                if open_rows == 0:
                    return "finished"
            await self._wait(idle)
            idle = min(idle * 2, IDLE_MAX)
        return "stopped"

    async def _with_db(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run a database operation; while the server is away, wait and try again (saying so
        on stderr after a few seconds), up to settings.database_wait, then give up the run
        (it stays resumable: leases expire, nothing done is lost)."""
        while True:
            try:
                result = await operation()
            except DatabaseUnavailable as exc:
                now = time.monotonic()
                if self.db_down_since is None:
                    self.db_down_since = now
                down = now - self.db_down_since
                if self.fatal is not None or down > self.settings.database_wait:
                    if self.fatal is None:
                        log.error("database unavailable for %.0f s, giving up: %s", down, exc)
                        self.fatal = DatabaseUnavailable(
                            f"the database was unavailable for {down:.0f} s ({exc}); "
                            "the run is resumable"
                        )
                        self.stop()
                    raise self.fatal from None
                if down > DB_WARN_AFTER and not self.db_warned:
                    self.db_warned = True
                    log.warning(
                        "database unavailable (%s); waiting for it (up to %.0f s)",
                        exc,
                        self.settings.database_wait,
                    )
                await asyncio.sleep(0.5)
                continue
            if self.db_down_since is not None:
                if self.db_warned:
                    log.warning("database is back; crawling on")
                self.db_down_since = None
                self.db_warned = False
            return result

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

    async def _read_sitemaps(self) -> None:
        """Queue the URLs of the sites' sitemaps (robots.txt `Sitemap:` lines, else
        /sitemap.xml), with their lastmod, which makes a page due before --revisit-after."""
        try:
            todo: list[str] = []
            for origin_url in self.sitemap_origins:
                listed: tuple[str, ...] = ()
                if not self.settings.ignore_robots:
                    listed = (await self.hosts.robots(origin_url + "/")).sitemaps
                todo.extend(listed or (origin_url + "/sitemap.xml",))
            seen: set[str] = set()
            while todo and len(seen) < MAX_SITEMAPS and not self.stopping:
                url = todo.pop(0)
                if url in seen or not self.scope.hosts_allow(url):
                    continue
                seen.add(url)
                result = await self.hosts.fetch(url)
                if result.error_kind is not None or result.status != 200:
                    continue
                # A sitemap may list 50,000 URLs: read and decided on in slices, so that it
                # never holds the loop for long. (Read in a thread, it held the interpreter
                # lock for the whole document, and the loop waited for it by the 5 ms
                # switch interval: the worst event-loop lag of a crawl.)
                data = await asyncio.to_thread(inflate, result.body)  # zlib lets the lock go
                reader = SitemapReader()
                for _ in reader.feed_in_slices(data):
                    await asyncio.sleep(0)
                sitemap = reader.close()
                todo.extend(sitemap.sitemaps)
                entries = []
                for n, (loc, lastmod) in enumerate(sitemap.urls, 1):
                    if n % SITEMAP_SLICE == 0:
                        await asyncio.sleep(0)
                    canonical = canonicalize(loc)
                    if canonical is not None and self.scope.decide(canonical, 1).follow:
                        entries.append((canonical, lastmod))
                if entries:
                    queued = await self._with_db(
                        functools.partial(self.sink.enqueue_listed, entries, 1)
                    )
                    self.stats.queued += queued
                    # Every entry has its frontier row now (new or not): links to them
                    # need not go to the database again. In slices, as above.
                    for start in range(0, len(entries), SITEMAP_SLICE):
                        await asyncio.sleep(0)
                        self.known.update(
                            tuple(url for url, _ in entries[start : start + SITEMAP_SLICE])
                        )
                    self.progress.set()
        except DatabaseUnavailable:
            pass
        except Exception as exc:  # sitemaps are a hint: never fail the crawl over one
            log.warning("could not read sitemaps: %s", exc)
        finally:
            self.sitemaps_done = True
            self.progress.set()

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
                await self._handle(task)
            except DatabaseUnavailable:
                pass  # given up (the pool stops); the task's lease expires and it is redone
            except Exception as exc:  # a bug must not kill the worker
                await self._failed(task, exc)
            finally:
                self.in_flight.discard(task.frontier_id)
                self.progress.set()

    async def _handle(self, task: CrawlTask) -> None:
        if not self.settings.ignore_robots:
            robots = await self.hosts.robots(task.url)
            if not robots.allowed(task.url):
                await self._refused(task, robots)
                return
        if not self._due(task):
            follow = await self._stored_follow(task)
            await self._with_db(lambda: self.sink.skip(task, follow, task.depth + 1))
            self.known.update(follow)
            self.stats.skipped += 1
            return
        if task.attempts == 1 and not (budget := self.scope.charge(task.url)).follow:
            result = FetchResult(
                task.url, task.url, None, None, error_kind="host_budget", error=budget.reason
            )
            await self._complete(PageRecord(task, result, None, None))
            return
        wait = self.hosts.wait(task.url)
        if wait > POSTPONE_AFTER:
            # The host asked us to stay away (Retry-After, backoff): give the task back for
            # later rather than hold a worker that other hosts could use meanwhile.
            await self._with_db(lambda: self.sink.postpone(task, wait))
            return
        result = await self.hosts.fetch(task.url, _validators(task))
        if result.retryable and task.attempts <= self.settings.retries:
            self.stats.retries += 1
            delay = self._retry_delay(result, task.attempts)
            await self._with_db(lambda: self.sink.retry_later(task, result, delay))
            return
        if result.status == 304 and result.error_kind is None and (task.etag or task.last_modified):
            # Unchanged since the last run: the page stays as stored, and so do its links,
            # which still lead the crawl on.
            follow = await self._stored_follow(task)
            self.stats.not_modified += 1
            await self._complete(
                PageRecord(task, result, None, None, follow, task.depth + 1, not_modified=True)
            )
            return
        await self._complete(await self._record(task, result))

    def _due(self, task: CrawlTask) -> bool:
        """Fetch now? Not when --revisit-after says the last fetch is recent enough, unless a
        sitemap's lastmod says the page changed since."""
        revisit = self.settings.revisit_after
        if not revisit or task.age is None or task.sitemap_newer:
            return True
        return task.age >= revisit

    async def _stored_follow(self, task: CrawlTask) -> tuple[str, ...]:
        """The in-scope links stored for the page, not yet known to be queued."""
        links = await self._with_db(lambda: self.sink.stored_links(task.url))
        fresh = [url for url, nofollow in links if not nofollow and url not in self.known]
        return tuple(self.scope.filter(fresh, task.depth + 1))

    async def _refused(self, task: CrawlTask, robots: RobotsPolicy) -> None:
        """Disallowed by robots.txt: recorded once. While robots.txt itself is unavailable
        (5xx, unreachable: RFC 9309 says assume disallowed) the task is retried later."""
        if robots.temporary:
            message = robots.reason
            result = FetchResult(task.url, task.url, None, None, error_kind="robots", error=message)
            if task.attempts <= self.settings.retries:
                self.stats.retries += 1
                delay = ROBOTS_RETRY_DELAY
                await self._with_db(lambda: self.sink.retry_later(task, result, delay))
                return
        else:
            message = "disallowed by robots.txt"
            result = FetchResult(task.url, task.url, None, None, error_kind="robots", error=message)
        await self._complete(PageRecord(task, result, None, None))

    async def _failed(self, task: CrawlTask, exc: Exception) -> None:
        """Record an unexpected failure of one task; its lease expires if even that fails."""
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        log.warning("task %s failed: %s", task.url, message)
        result = FetchResult(task.url, task.url, None, None, error_kind="internal", error=message)
        try:
            await self._complete(PageRecord(task, result, None, None))
        except Exception as again:
            log.warning("could not record the failure of %s: %s", task.url, _reason(again))
            if isinstance(again, DatabaseUnavailable) or self.fatal is not None:
                return  # _with_db has given up the run already
            # Not even the record of a failure, written on its own (the sink retries a
            # refused batch record by record), could be stored: the database refuses our
            # writes (a table that is not as we made it, rights we lack). Crawling on would
            # redo the same tasks forever as their leases expire: the run stops.
            self.fatal = DatabaseUnavailable(
                f"the database refused to store {task.url} and the record of its failure "
                f"({_reason(again)}); the run is resumable"
            )
            self.stop()

    def _retry_delay(self, result: FetchResult, attempt: int) -> float:
        seconds = retry_after(result.header("retry-after"))
        if seconds is None and result.status in (429, 503):
            return max(backoff(attempt), self.hosts.wait(result.url))
        if seconds is not None:
            return min(seconds, self.settings.max_crawl_delay * 10)
        return backoff(attempt)

    async def _record(self, task: CrawlTask, result: FetchResult) -> PageRecord:
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
        if result.encoding is None or not _is_html(result.content_type):
            return PageRecord(task, result, None, None)
        page, digest = await self.parser.parse(result.body, result.encoding, result.final_url)
        follow: tuple[str, ...] = ()
        obey = self.settings.obey_meta_robots
        if not (obey and page.nofollow):
            known = self.known.urls  # the dict itself: no method call per link
            candidates = {url for url, _text, nofollow in page.links if not (obey and nofollow)}
            fresh = [url for url in candidates if url not in known]
            follow = tuple(self.scope.filter(fresh, task.depth + 1))
        page = stored_page(page, obey_meta_robots=obey)
        body = result.body if self.settings.store_body else None
        return PageRecord(task, result, page, digest, follow, task.depth + 1, body=body)

    async def _complete(self, record: PageRecord) -> None:
        queued = await self._with_db(lambda: self.sink.complete(record))
        self.known.update(record.enqueue)
        self.stats.count(record.fetch)
        if record.page is not None or record.not_modified:
            self.stats.pages += 1
        if queued > 0:
            self.stats.queued += queued


def _reason(exc: Exception) -> str:
    """The first line of a database error, without the driver's class names in front."""
    lines = str(exc).strip().splitlines()
    line = lines[0] if lines else type(exc).__name__
    return re.sub(r"^\([\w.]+\) (<class '[\w.]+'>: )?", "", line)[:300]


def _validators(task: CrawlTask) -> dict[str, str] | None:
    """Conditional request headers from what the last fetch of the page stored."""
    if not (task.etag or task.last_modified):
        return None
    headers = {}
    if task.etag:
        headers["If-None-Match"] = task.etag
    if task.last_modified:
        headers["If-Modified-Since"] = task.last_modified
    return headers


def _is_html(content_type: str | None) -> bool:
    return content_type is None or content_type.split(";")[0].strip().lower() in HTML_TYPES
