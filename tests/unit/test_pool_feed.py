"""The pool's feeder, driven through fakes of the frontier, fetcher and sink."""

from __future__ import annotations

import asyncio
import time

import pytest

from crawler import pool as pool_module
from crawler.config_sources import load_settings
from crawler.records import Booking, CrawlTask, FetchResult, PageRecord
from tests.unit.pool_fakes import ORIGIN, FakeFetcher, FakeFrontier, booked, make_pool


class RacingFrontier(FakeFrontier):
    """Gives two seeds; the second claim is in flight while the second seed's task is done
    (and its link queued), and finds nothing; the claim after that gets the link."""

    def __init__(self) -> None:
        self.second_claim = asyncio.Event()
        self.second_done = asyncio.Event()
        self.tasks = [
            [CrawlTask(1, ORIGIN + "/1", 0), CrawlTask(2, ORIGIN + "/2", 0)],
            [],
            [CrawlTask(3, ORIGIN + "/a", 1)],
        ]
        self.open = 3

    async def claim(self, n: int, *, tasks: int | None = None) -> list[Booking]:
        if len(self.tasks) == 2:
            self.second_claim.set()
            await self.second_done.wait()
        return [booked(t) for t in self.tasks.pop(0)] if self.tasks else []


class HeldFetcher(FakeFetcher):
    """/2 is answered only once the second claim is under way."""

    def __init__(self, frontier: RacingFrontier) -> None:
        self.frontier = frontier

    async def answer(self, url: str) -> FetchResult:
        if url.endswith("/2"):
            await self.frontier.second_claim.wait()
        return await super().answer(url)


class Sink:
    def __init__(self, frontier: RacingFrontier) -> None:
        self.frontier = frontier

    async def complete(self, record: PageRecord) -> int:
        self.frontier.open -= 1
        if record.task.url.endswith("/2"):
            self.frontier.second_done.set()
        return 0


async def test_a_task_done_while_the_feeder_claims_wakes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Progress made while a claim is in flight is not lost: the feeder claims again at
    once instead of sleeping out its idle wait (lost, it cost a crawl up to a second)."""
    monkeypatch.setattr(pool_module, "IDLE_CLAIM", 30.0)
    settings = load_settings({"seeds": (ORIGIN + "/",), "ignore_robots": True, "retries": 0})
    frontier = RacingFrontier()
    pool = make_pool(settings, frontier, HeldFetcher(frontier), Sink(frontier))
    started = time.monotonic()
    assert await asyncio.wait_for(pool.run(), 10) == "finished"
    assert time.monotonic() - started < 5
    assert pool.stats.fetched == 3
