"""Request slots: a worker waiting for its page's write holds none, and no more than
--concurrency requests are ever in flight (the pool runs more workers than that)."""

from __future__ import annotations

import asyncio

from crawler.config_sources import load_settings
from crawler.records import Booking, CrawlTask, FetchResult, PageRecord
from tests.unit.pool_fakes import ORIGIN, FakeFetcher, FakeFrontier, booked, make_pool

TASKS = 8


class CountingFetcher(FakeFetcher):
    def __init__(self) -> None:
        self.in_flight = 0
        self.most = 0
        self.done = 0
        self.four_done = asyncio.Event()

    async def answer(self, url: str) -> FetchResult:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        self.done += 1
        if self.done == 4:
            self.four_done.set()
        return await super().answer(url)


class ListFrontier(FakeFrontier):
    def __init__(self) -> None:
        self.tasks = [CrawlTask(n, f"{ORIGIN}/{n}", 0) for n in range(1, TASKS + 1)]
        self.open = TASKS

    async def claim(self, n: int, *, tasks: int | None = None) -> list[Booking]:
        n = n if tasks is None else min(n, tasks)
        claimed, self.tasks = self.tasks[:n], self.tasks[n:]
        return [booked(t) for t in claimed]


class SlowSink:
    """Writes nothing until `writes` is set, as a database busy with an earlier batch."""

    def __init__(self, frontier: ListFrontier) -> None:
        self.frontier = frontier
        self.writes = asyncio.Event()

    async def complete(self, record: PageRecord) -> int:
        await self.writes.wait()
        self.frontier.open -= 1
        return 0


async def test_requests_go_on_while_pages_wait_for_their_write() -> None:
    settings = load_settings(
        {
            "seeds": (ORIGIN + "/",),
            "ignore_robots": True,
            "retries": 0,
            "concurrency": 2,
            "host_concurrency": 2,
            "delay": 0,
        }
    )
    frontier, fetcher = ListFrontier(), CountingFetcher()
    sink = SlowSink(frontier)
    run = asyncio.create_task(make_pool(settings, frontier, fetcher, sink).run())
    try:
        # With a worker a slot, both slots' workers waited for their writes after 2 fetches.
        await asyncio.wait_for(fetcher.four_done.wait(), 5)
        sink.writes.set()
        assert await asyncio.wait_for(run, 10) == "finished"
    finally:
        run.cancel()
    assert fetcher.done == TASKS
    assert fetcher.most == 2
