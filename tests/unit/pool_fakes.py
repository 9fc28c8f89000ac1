"""Fakes of the pool's frontier and fetcher, for unit tests that drive `crawler.pool.Pool`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crawler.config import Settings
from crawler.pool import Pool
from crawler.records import Booking, CrawlTask, FetchResult, HostDone
from crawler.scope import Scope
from tests.unit.memory_store import Unpaced

ORIGIN = "http://a.example"


class FakeFetcher:
    """Answers every URL with `answer(url)`: 404 unless a subclass says otherwise."""

    async def fetch(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_redirects: int | None = None,
    ) -> FetchResult:
        return await self.answer(url)

    async def answer(self, url: str) -> FetchResult:
        return FetchResult(url, url, 404, "text/plain")


def booked(task: CrawlTask) -> Booking:
    """A task with its host booked now."""
    return Booking(task, host_id=1, wait=0.0, delay=0.0, gap=0.0)


class FakeFrontier(Unpaced):
    """A frontier with `open` open rows and nothing to claim, unless a subclass claims."""

    open = 0

    async def claim(self, n: int, *, tasks: int | None = None) -> list[Booking]:
        return []

    async def finish(self, done: list[HostDone]) -> None:
        pass

    async def requeue(self, ids: list[int]) -> None:
        pass

    async def open_count(self) -> int:
        return self.open

    async def release(self, ids: list[int]) -> None:
        pass

    async def renew(self, ids: list[int]) -> None:
        pass


def make_pool(settings: Settings, frontier: Any, fetcher: Any, store: Any, **kw: Any) -> Pool:
    """A pool over the fakes; `frontier` and `store` need only the methods the test asks."""
    scope = Scope.from_settings(settings, settings.seeds)
    return Pool(settings, scope, frontier, fetcher, store, **kw)
