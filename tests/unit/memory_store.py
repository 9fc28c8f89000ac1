"""In-memory fakes of the pool's seams (crawler.seams): a real frontier and store in a dict.

`MemoryRun` is one run's frontier and store together, as PostgreSQL holds them: claims lease
queued rows, `complete` marks a row done and queues its links (a URL the run knows is not
queued twice), `retry_later` and `postpone` give a row back, `skip` marks it done. Writes are
fenced by the lease like the real ones (a row not leased writes nothing: -1). Tests drive
the pool and the runner through it without PostgreSQL, and read what happened from its
lists. `refuse` makes every write raise a given error (a database that went away, a full
disk).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crawler.records import Booking, CrawlTask, FetchResult, HostDone, HostTurn, PageRecord


@dataclass
class Row:
    id: int
    url: str
    depth: int
    state: str = "queued"  # queued, leased, done
    attempts: int = 0


class Unpaced:
    """The frontier's pacing calls, for fakes in which no host is ever busy."""

    async def book(self, host: str) -> HostTurn | None:
        return HostTurn(host_id=1, wait=0.0, delay=0.0, gap=0.0)

    async def block(self, host_id: int, seconds: float) -> None:
        pass

    async def set_min_delay(self, host: str, seconds: float) -> None:
        pass

    async def reap(self) -> tuple[int, int]:
        return (0, 0)


@dataclass
class MemoryRun(Unpaced):
    rows: dict[str, Row] = field(default_factory=dict)
    completed: list[PageRecord] = field(default_factory=list)
    retried: list[tuple[CrawlTask, FetchResult, float]] = field(default_factory=list)
    postponed: list[tuple[CrawlTask, float]] = field(default_factory=list)
    skipped: list[CrawlTask] = field(default_factory=list)
    listed: list[tuple[str, datetime | None]] = field(default_factory=list)
    links: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)
    finished: list[HostDone] = field(default_factory=list)
    refuse: Exception | None = None
    writes: int = 0

    def add(self, url: str, depth: int = 0) -> bool:
        if url in self.rows:
            return False
        self.rows[url] = Row(len(self.rows) + 1, url, depth)
        return True

    def state(self, url: str) -> str:
        return self.rows[url].state

    def _write(self) -> None:
        self.writes += 1
        if self.refuse is not None:
            raise self.refuse

    def _leased(self, task: CrawlTask) -> Row | None:
        row = self.rows.get(task.url)
        return row if row is not None and row.state == "leased" else None

    def _queue(self, urls: tuple[str, ...], depth: int) -> int:
        return sum(self.add(url, depth) for url in sorted(set(urls)))

    # -- Frontier --------------------------------------------------------------------------

    async def claim(self, n: int, *, tasks: int | None = None) -> list[Booking]:
        """Queued rows in order, each due now (no host is ever busy here), a booking each."""
        claimed: list[Booking] = []
        most = n if tasks is None else min(n, tasks)
        for row in self.rows.values():
            if len(claimed) == most:
                break
            if row.state == "queued":
                row.state = "leased"
                row.attempts += 1
                task = CrawlTask(row.id, row.url, row.depth, row.attempts)
                claimed.append(Booking(task, host_id=1, wait=0.0, delay=0.0, gap=0.0))
        return claimed

    async def finish(self, done: list[HostDone]) -> None:
        self.finished.extend(done)

    async def requeue(self, ids: list[int]) -> None:
        await self.release(ids)

    async def open_count(self) -> int:
        return sum(row.state != "done" for row in self.rows.values())

    async def release(self, ids: list[int]) -> None:
        for row in self.rows.values():
            if row.id in ids and row.state == "leased":
                row.state = "queued"
                row.attempts -= 1

    async def renew(self, ids: list[int]) -> None:
        pass

    # -- Store -----------------------------------------------------------------------------

    async def complete(self, record: PageRecord) -> int:
        self._write()
        row = self._leased(record.task)
        if row is None:
            return -1
        row.state = "done"
        self.completed.append(record)
        return self._queue(record.enqueue, record.enqueue_depth)

    async def retry_later(self, task: CrawlTask, fetch: FetchResult, delay: float) -> None:
        self._write()
        row = self._leased(task)
        if row is not None:
            row.state = "queued"
            self.retried.append((task, fetch, delay))

    async def skip(self, task: CrawlTask, enqueue: tuple[str, ...], depth: int) -> int:
        self._write()
        row = self._leased(task)
        if row is None:
            return -1
        row.state = "done"
        self.skipped.append(task)
        return self._queue(enqueue, depth)

    async def postpone(self, task: CrawlTask, delay: float) -> None:
        self._write()
        row = self._leased(task)
        if row is not None:
            row.state = "queued"
            row.attempts -= 1
            self.postponed.append((task, delay))

    async def stored_links(self, url: str) -> list[tuple[str, bool]]:
        return list(self.links.get(url, []))

    async def enqueue_listed(self, entries: list[tuple[str, datetime | None]], depth: int) -> int:
        self._write()
        self.listed.extend(entries)
        return sum(self.add(url, depth) for url, _ in entries)


class MapFetcher:
    """A `Fetcher` that answers from a dict of URL -> result (404 for the rest), and counts
    the requests it was asked for."""

    def __init__(self, answers: Mapping[str, FetchResult] | None = None) -> None:
        self.answers = dict(answers or {})
        self.asked: list[tuple[str, Mapping[str, str] | None]] = []

    async def fetch(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_redirects: int | None = None,
    ) -> FetchResult:
        self.asked.append((url, headers))
        return self.answers.get(url) or FetchResult(url, url, 404, "text/plain")


def html(url: str, body: str, *, final_url: str | None = None, **kw: Any) -> FetchResult:
    """A 200 text/html answer for `url` (from `final_url`, if it was redirected)."""
    final = url if final_url is None else final_url
    return FetchResult(url, final, 200, "text/html", (), body.encode(), "utf-8", **kw)
