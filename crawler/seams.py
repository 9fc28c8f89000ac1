"""The pool's seams: the Protocols its I/O plugs into, wired to concrete classes in run.py.

- `Fetcher`    one way to fetch a URL into a `FetchResult`: `fetch.HttpFetcher` (aiohttp);
               a browser that renders pages is one more Fetcher. `Hosts` calls it inside
               its politeness (slots, delays, Retry-After), whatever it is.
- `Frontier`   the run's queue of tasks, handed out by host readiness: claimed as
               `Booking`s (a task with its host's slot and start booked), renewed,
               released; it paces the hosts (`db.host_frontier.PgHostFrontier`). The pool
               claims; the runner never does.
- `Store`      what the runner records and reads for a task: complete, retry_later, skip,
               postpone, its stored links, sitemap entries (`db.store.PgStore`;
               tests/unit/memory_store.py keeps it in memory).

Each method raises only crawler errors: `DatabaseUnavailable` (wait and retry) or
`DatabaseRefused` (report it), never a driver's or HTTP library's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from crawler.records import Booking, CrawlTask, FetchResult, HostDone, HostTurn, PageRecord


class Fetcher(Protocol):
    async def fetch(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_redirects: int | None = None,
    ) -> FetchResult:
        """GET `url` (following redirects, `max_redirects` unless None: the settings' limit);
        every failure of the other side comes back as the result's error_kind."""
        ...


class Frontier(Protocol):
    async def claim(self, n: int, *, tasks: int | None = None) -> list[Booking]:
        """Lease tasks of hosts that may be fetched now (or within a moment: each booking
        says when its request may start), booking each host for them: up to `n` bookings, at
        most `tasks` tasks in all (None: as many as the lanes take). A lane's further tasks
        come in its first booking's `then`."""
        ...

    async def book(self, host: str) -> HostTurn | None:
        """A slot and start of `host` for a request with no task (None: none free now)."""
        ...

    async def finish(self, done: list[HostDone]) -> None:
        """Free the slots of finished requests and pace their hosts."""
        ...

    async def block(self, host_id: int, seconds: float) -> None:
        """No request to the host from any process for `seconds` (Retry-After)."""
        ...

    async def set_min_delay(self, host: str, seconds: float) -> None:
        """The host's least delay between request starts (robots.txt's Crawl-delay)."""
        ...

    async def open_count(self) -> int:
        """Rows of the run still to do: queued, or leased by any process."""
        ...

    async def release(self, ids: list[int]) -> None:
        """Give leased tasks whose request never started back, and their hosts' slots."""
        ...

    async def requeue(self, ids: list[int]) -> None:
        """Give leased tasks back without freeing a slot: their bookings are finished, or
        they had none of their own (behind another in a lane)."""
        ...

    async def reap(self) -> tuple[int, int]:
        """Requeue rows whose lease expired, free slots whose bookings expired (a killed
        process's): (rows, hosts)."""
        ...

    async def renew(self, ids: list[int]) -> None:
        """Extend the leases of tasks being worked on."""
        ...


class Store(Protocol):
    async def complete(self, record: PageRecord) -> int:
        """Store a task's record and queue its links; return how many new URLs were queued
        (-1: its lease was lost, nothing stored)."""
        ...

    async def retry_later(self, task: CrawlTask, fetch: FetchResult, delay: float) -> None:
        """Record the attempt; the task is claimable again after `delay` seconds."""
        ...

    async def skip(self, task: CrawlTask, enqueue: tuple[str, ...], depth: int) -> int:
        """Mark the task done without a fetch; queue `enqueue` at `depth`."""
        ...

    async def postpone(self, task: CrawlTask, delay: float) -> None:
        """Give the task back for `delay` seconds; the attempt does not count."""
        ...

    async def stored_links(self, url: str) -> list[tuple[str, bool]]:
        """The links stored for a page, as (target URL, nofollow)."""
        ...

    async def enqueue_listed(self, entries: list[tuple[str, datetime | None]], depth: int) -> int:
        """Queue a sitemap's URLs with their lastmod; return how many rows changed."""
        ...
