"""The pool's feeder, driven through fakes of the frontier, fetcher and sink."""

from __future__ import annotations

import asyncio
import time

import pytest

from crawler import pool as pool_module
from crawler.config_sources import load_settings
from crawler.records import CrawlTask, PageRecord
from tests.unit.pool_fakes import ORIGIN, FakeFetcher, FakeFrontier, make_pool


class RacingFrontier(FakeFrontier):
    """Gives the seed; the next claim is in flight while the seed's task is done (and its
    link queued), and finds nothing; the claim after that gets the link."""

    def __init__(self, seed_done: asyncio.Event) -> None:
        self.seed_done = seed_done
        self.tasks = [[CrawlTask(1, ORIGIN + "/", 0)], [], [CrawlTask(2, ORIGIN + "/a", 1)]]
        self.open = 2

    async def claim(self, n: int) -> list[CrawlTask]:
        if len(self.tasks) == 2:
            await self.seed_done.wait()
        return self.tasks.pop(0) if self.tasks else []


class Sink:
    def __init__(self, frontier: RacingFrontier) -> None:
        self.frontier = frontier

    async def complete(self, record: PageRecord) -> int:
        self.frontier.open -= 1
        self.frontier.seed_done.set()
        return 0


async def test_a_task_done_while_the_feeder_claims_wakes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Progress made while a claim is in flight is not lost: the feeder claims again at
    once instead of sleeping out its idle wait (lost, it cost a crawl up to a second)."""
    monkeypatch.setattr(pool_module, "IDLE_FIRST", 30.0)
    settings = load_settings({"seeds": (ORIGIN + "/",), "ignore_robots": True, "retries": 0})
    frontier = RacingFrontier(asyncio.Event())
    pool = make_pool(settings, frontier, FakeFetcher(), Sink(frontier))
    started = time.monotonic()
    assert await asyncio.wait_for(pool.run(), 10) == "finished"
    assert time.monotonic() - started < 5
    assert pool.stats.fetched == 2
