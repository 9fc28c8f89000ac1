"""Lanes: several tasks of a host with no delay booked in one slot (crawler.records.Booking
`then`). The next of a lane starts when the request before it ends, not its page's write;
one request of a lane is in flight at a time; the slot goes back to the frontier once, after
the last; a stop hands the lane's unstarted tasks back with the slot."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from crawler import pool as pool_module
from crawler.config import Settings
from crawler.config_sources import load_settings
from crawler.records import Booking, CrawlTask, FetchResult, HostDone, PageRecord
from tests.unit.pool_fakes import ORIGIN, FakeFetcher, FakeFrontier, booked, make_pool


def settings() -> Settings:
    return load_settings(
        {
            "seeds": (ORIGIN + "/",),
            "ignore_robots": True,
            "retries": 0,
            "concurrency": 4,
            "host_concurrency": 4,
            "delay": 0,
        }
    )


class LaneFrontier(FakeFrontier):
    """One claim: a lane of `size` tasks in one slot; records what the pool gives back."""

    def __init__(self, size: int) -> None:
        first, *then = [booked(CrawlTask(n, f"{ORIGIN}/{n}", 0)) for n in range(1, size + 1)]
        self.lanes: list[Booking] = [replace(first, then=tuple(then))]
        self.open = size
        self.done: list[HostDone] = []
        self.released: list[int] = []
        self.requeued: list[int] = []

    async def claim(self, n: int, *, tasks: int | None = None) -> list[Booking]:
        lanes, self.lanes = self.lanes, []
        return lanes

    async def finish(self, done: list[HostDone]) -> None:
        self.done.extend(done)

    async def release(self, ids: list[int]) -> None:
        self.released.extend(ids)

    async def requeue(self, ids: list[int]) -> None:
        self.requeued.extend(ids)


class CountingFetcher(FakeFetcher):
    def __init__(self, hold_first: bool = False) -> None:
        self.in_flight = 0
        self.most = 0
        self.fetched: list[str] = []
        self.first_started = asyncio.Event()
        self.first_may_end = asyncio.Event()
        if not hold_first:
            self.first_may_end.set()

    async def answer(self, url: str) -> FetchResult:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        if not self.fetched:
            self.first_started.set()
            await self.first_may_end.wait()
        await asyncio.sleep(0.005)
        self.in_flight -= 1
        self.fetched.append(url)
        return await super().answer(url)


class HeldSink:
    """Writes nothing until `writes` is set."""

    def __init__(self, frontier: LaneFrontier, writes: asyncio.Event) -> None:
        self.frontier = frontier
        self.writes = writes

    async def complete(self, record: PageRecord) -> int:
        await self.writes.wait()
        self.frontier.open -= 1
        return 0


async def test_a_lane_runs_its_tasks_one_request_at_a_time_and_frees_its_slot_once() -> None:
    frontier, fetcher, writes = LaneFrontier(4), CountingFetcher(), asyncio.Event()
    run = asyncio.create_task(
        make_pool(settings(), frontier, fetcher, HeldSink(frontier, writes)).run()
    )
    try:
        # No page is written yet, and every task of the lane has been fetched.
        for _ in range(200):
            if len(fetcher.fetched) == 4:
                break
            await asyncio.sleep(0.01)
        assert fetcher.fetched == [f"{ORIGIN}/{n}" for n in range(1, 5)]
        writes.set()
        assert await asyncio.wait_for(run, 10) == "finished"
    finally:
        run.cancel()
    assert fetcher.most == 1
    assert [d.host_id for d in frontier.done] == [1]  # the slot, once, after the last
    assert frontier.released == [] and frontier.requeued == []


async def test_a_stop_hands_a_lanes_unstarted_tasks_back_with_its_slot() -> None:
    frontier, fetcher, writes = LaneFrontier(3), CountingFetcher(hold_first=True), asyncio.Event()
    writes.set()
    pool = make_pool(settings(), frontier, fetcher, HeldSink(frontier, writes))
    run = asyncio.create_task(pool.run())
    try:
        await asyncio.wait_for(fetcher.first_started.wait(), 5)
        pool.stop()
        fetcher.first_may_end.set()
        assert await asyncio.wait_for(run, 10) == "stopped"
    finally:
        run.cancel()
    assert fetcher.fetched == [f"{ORIGIN}/1"]
    assert frontier.done == []  # the slot goes back with the next task, not twice
    assert frontier.released == [2]  # never started: released with the lane's slot
    assert frontier.requeued == [3]  # behind it in the lane: no slot of its own


class AskingFrontier(LaneFrontier):
    """Records what each claim asks for: (bookings, tasks)."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.asked: list[tuple[int, int | None]] = []

    async def claim(self, n: int, *, tasks: int | None = None) -> list[Booking]:
        self.asked.append((n, tasks))
        return await super().claim(n, tasks=tasks)


async def test_a_lane_holds_one_booking_of_the_pools_room_and_claims_keep_to_the_budget() -> None:
    """The tasks behind another in a lane hold no slot and no worker: with a lane of 40 in
    flight (room: 2 x 4 workers + a batch of 4), the next claim still asks for a full batch,
    and for no more tasks than --max-pages leaves."""
    frontier, fetcher = AskingFrontier(40), CountingFetcher(hold_first=True)
    writes = asyncio.Event()
    writes.set()
    pool = make_pool(
        replace(settings(), max_pages=45), frontier, fetcher, HeldSink(frontier, writes)
    )
    run = asyncio.create_task(pool.run())
    try:
        await asyncio.wait_for(fetcher.first_started.wait(), 5)
        for _ in range(200):
            if len(frontier.asked) >= 2:
                break
            await asyncio.sleep(0.01)
        pool.stop()
        fetcher.first_may_end.set()
        await asyncio.wait_for(run, 10)
    finally:
        run.cancel()
    assert frontier.asked[:2] == [(4, 45), (4, 5)]


class CountingClaims(LaneFrontier):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.claims = 0

    async def claim(self, n: int, *, tasks: int | None = None) -> list[Booking]:
        self.claims += 1
        return await super().claim(n, tasks=tasks)


async def test_a_task_whose_lane_goes_on_does_not_wake_the_feeder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its slot went on to the next task of its lane: a claim then would find nothing. The
    feeder claims for the lane, when its slot comes back, and when the last page is
    written (then the run ends); no timed claim comes between."""
    monkeypatch.setattr(pool_module, "IDLE_CLAIM", 30.0)
    frontier, fetcher, writes = CountingClaims(8), CountingFetcher(), asyncio.Event()
    writes.set()
    run = make_pool(settings(), frontier, fetcher, HeldSink(frontier, writes)).run()
    assert await asyncio.wait_for(run, 10) == "finished"
    assert len(fetcher.fetched) == 8
    assert frontier.claims <= 3
