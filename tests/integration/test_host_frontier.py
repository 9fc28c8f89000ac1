"""The host-aware frontier (crawler.db.host_frontier) on real PostgreSQL: claims spread over
ready hosts, longest-waiting first; no host is double-booked by concurrent claimers and no
request is booked before its host's delay has passed."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from crawler.db.database import Database
from crawler.db.host_frontier import CLAIM_SQL, PgHostFrontier
from crawler.records import Booking, HostDone
from crawler.urls import host_key

pytestmark = pytest.mark.db


@dataclass
class Run:
    db: Database
    crawl_id: int
    run_id: int

    def frontier(
        self, owner: str = "p1", lease: float = 60.0, lane: int = 1, **kw: float
    ) -> PgHostFrontier:
        """One task a slot unless `lane` says otherwise (these hosts have no delay)."""
        return PgHostFrontier(self.db, self.crawl_id, self.run_id, owner, lease, lane=lane, **kw)

    async def sql(self, statement: str, **params: object) -> list[tuple[object, ...]]:
        rows = await self.db.execute(text(statement), {"run_id": self.run_id, **params})
        return [tuple(r) for r in rows]

    async def queue(self, urls: list[str]) -> None:
        await self.sql(
            "INSERT INTO frontier (run_id, url) SELECT :run_id, u FROM unnest("
            "CAST(:urls AS text[])) AS u ORDER BY u ON CONFLICT DO NOTHING",
            urls=urls,
        )


@pytest.fixture
async def run(db_url: str) -> AsyncIterator[Run]:
    db = Database(db_url, pool_size=8)
    try:
        async with db.transaction() as s:
            crawl = await s.execute(text("INSERT INTO crawls (name) VALUES ('c') RETURNING id"))
            crawl_id = int(crawl.scalar_one())
            made = await s.execute(
                text("INSERT INTO crawl_runs (crawl_id) VALUES (:c) RETURNING id"), {"c": crawl_id}
            )
            run_id = int(made.scalar_one())
        yield Run(db, crawl_id, run_id)
    finally:
        await db.dispose()


def urls(hosts: int, pages: int, port: str = "") -> list[str]:
    return [f"http://h{h}.test{port}/p{p}" for h in range(hosts) for p in range(pages)]


async def test_the_host_column_is_the_politeness_key(run: Run) -> None:
    cases = [
        "http://example.com/a?b#c",
        "https://example.com:8443/",
        "http://127.0.0.2:8080/x",
        "http://[::1]:9000/p",
        "https://xn--bcher-kva.example/",
    ]
    await run.queue(cases)
    rows = await run.sql("SELECT url, host FROM frontier WHERE run_id = :run_id")
    assert {url: host for url, host in rows} == {url: host_key(url) for url in cases}


async def test_a_claim_spreads_over_hosts_and_one_backlog_holds_up_nobody(run: Run) -> None:
    frontier = run.frontier()
    await frontier.prepare(host_slots=1, first_delay=1.0)
    await run.queue([f"http://big.test/p{i:03}" for i in range(200)])  # the oldest ids
    await run.queue(urls(10, 1))
    got = await frontier.claim(8)
    hosts = [host_key(b.task.url) for b in got]
    assert len(got) == 8
    assert len(set(hosts)) == 8  # one URL a host: each has one slot
    assert all(b.wait == 0 and b.delay == b.gap == 1.0 for b in got)
    rest = await frontier.claim(8)
    assert {host_key(b.task.url) for b in rest} | set(hosts) == {
        "big.test",
        *(f"h{h}.test" for h in range(10)),
    }
    assert await frontier.claim(8) == []  # every host booked: nothing is handed out early


async def test_longest_waiting_hosts_first(run: Run) -> None:
    frontier = run.frontier()
    await frontier.prepare(host_slots=1, first_delay=0.0)
    await run.queue(urls(6, 2))
    # hN has been ready for N * 10 s: h5 longest, h0 just now.
    await run.sql(
        "UPDATE frontier_hosts SET next_at = now() - make_interval(secs => "
        "CAST(substring(host from 2 for 1) AS integer) * 10) WHERE run_id = :run_id"
    )
    got = await frontier.claim(3)
    assert {host_key(b.task.url) for b in got} == {"h5.test", "h4.test", "h3.test"}


async def test_a_host_is_claimed_only_when_its_next_start_is_near(run: Run) -> None:
    frontier = run.frontier(lookahead=0.5)
    await frontier.prepare(host_slots=1, first_delay=0.0)
    await run.queue(["http://soon.test/", "http://later.test/"])
    await run.sql(
        "UPDATE frontier_hosts SET next_at = now() + make_interval(secs => "
        "CASE host WHEN 'soon.test' THEN 0.3 ELSE 30 END) WHERE run_id = :run_id"
    )
    got = await frontier.claim(10)
    assert [b.task.url for b in got] == ["http://soon.test/"]
    assert 0.0 < got[0].wait <= 0.3


async def test_free_slots_bound_a_host_and_its_starts_are_spaced_by_its_delay(run: Run) -> None:
    frontier = run.frontier(lookahead=0.0)
    await frontier.prepare(host_slots=3, first_delay=2.0)
    await run.queue(urls(1, 10))
    got = await frontier.claim(10)
    assert len(got) == 3
    waits = [b.wait for b in got]
    assert waits[0] == 0.0
    assert waits[1] == pytest.approx(2.0, abs=0.05)
    assert waits[2] == pytest.approx(4.0, abs=0.05)
    assert await frontier.claim(10) == []
    (row,) = await run.sql(
        "SELECT in_flight, queued, extract(epoch FROM next_at - now()) FROM frontier_hosts "
        "WHERE run_id = :run_id"
    )
    assert row[0] == 3 and row[1] == 7
    assert float(str(row[2])) == pytest.approx(6.0, abs=0.1)


async def test_concurrent_claimers_never_double_book_a_host_nor_start_early(run: Run) -> None:
    """Three claimers (their own connections) work one run: per host, one request in
    flight at a time and starts at least the delay apart, on the claimers' own clock."""
    delay = 0.15
    await run.frontier().prepare(host_slots=1, first_delay=delay)
    await run.queue(urls(30, 4))
    starts: dict[str, list[tuple[float, float]]] = {}
    rng = random.Random(7)

    async def request(frontier: PgHostFrontier, booking: Booking) -> None:
        await asyncio.sleep(booking.wait)
        started = time.monotonic()
        await asyncio.sleep(rng.uniform(0.0, 0.05))  # the host answers
        starts.setdefault(host_key(booking.task.url), []).append((started, time.monotonic()))
        await frontier.finish([HostDone(booking.host_id, started, delay)])
        await run.sql(
            "UPDATE frontier SET state = 'done' WHERE id = :id", id=booking.task.frontier_id
        )

    async def claimer(owner: str) -> None:
        frontier = run.frontier(owner)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and await frontier.open_count() > 0:
            got = await frontier.claim(8)
            await asyncio.gather(*(request(frontier, b) for b in got))
            if not got:
                await asyncio.sleep(0.02)

    await asyncio.gather(*(claimer(f"p{i}") for i in range(3)))
    assert sum(len(v) for v in starts.values()) == 120
    for host, spans in starts.items():
        spans.sort()
        for (start, end), (next_start, _) in itertools.pairwise(spans):
            assert next_start >= end, f"{host}: two requests in flight"
            assert next_start - start >= delay, f"{host}: started {next_start - start:.3f}s apart"


async def test_finish_paces_the_host_from_its_start_with_the_new_delay(run: Run) -> None:
    frontier = run.frontier(lookahead=0.0)
    await frontier.prepare(host_slots=1, first_delay=0.0)
    await run.queue(urls(1, 3))
    (first,) = await frontier.claim(5)
    await frontier.finish([HostDone(first.host_id, time.monotonic(), 30.0)])
    assert await frontier.claim(5) == []  # 30 s from the start
    (row,) = await run.sql(
        "SELECT in_flight, delay, extract(epoch FROM next_at - now()) FROM frontier_hosts"
    )
    assert row[0] == 0 and row[1] == 30.0
    assert 29.0 < float(str(row[2])) <= 30.0
    await frontier.set_min_delay("h0.test", 60.0)
    await run.sql("UPDATE frontier_hosts SET next_at = now()")
    (second,) = await frontier.claim(5)
    assert second.delay == 30.0
    assert second.gap == 60.0  # Crawl-delay is a floor under the throttle's delay
    await frontier.block(second.host_id, 120.0)
    (row,) = await run.sql("SELECT extract(epoch FROM next_at - now()) FROM frontier_hosts")
    assert float(str(row[0])) > 100


async def test_release_reap_and_counts_stay_right(run: Run) -> None:
    frontier = run.frontier()
    await frontier.prepare(host_slots=1, first_delay=0.0)
    await run.queue(urls(4, 3))
    got = await frontier.claim(4)
    assert len(got) == 4
    await frontier.release([got[0].task.frontier_id, got[1].task.frontier_id])
    # The others' process died: their leases and bookings ran out.
    await run.sql(
        "UPDATE frontier SET lease_until = now() - interval '1 s' "
        "WHERE run_id = :run_id AND state = 'leased'"
    )
    await run.sql("UPDATE frontier_hosts SET busy_until = now() - interval '1 s'")
    assert await frontier.reap() == (2, 2)
    rows = await run.sql(
        "SELECT h.queued, h.in_flight, (SELECT count(*) FROM frontier f WHERE f.run_id = "
        "h.run_id AND f.host = h.host AND f.state = 'queued') FROM frontier_hosts h"
    )
    assert rows and all(q == actual == 3 and busy == 0 for q, busy, actual in rows)
    await run.sql("UPDATE frontier_hosts SET next_at = '-infinity'")
    assert len(await frontier.claim(10)) == 4


async def test_requeue_after_finish_and_a_host_with_nothing_due_is_passed_over(run: Run) -> None:
    frontier = run.frontier(idle=5.0)
    await frontier.prepare(host_slots=1, first_delay=0.0)
    await run.queue(["http://robots.test/a", "http://later.test/a"])
    await run.sql(
        "UPDATE frontier SET not_before = now() + interval '1 hour' WHERE host = 'later.test'"
    )
    (booking,) = await frontier.claim(10)  # later.test has nothing due: passed over
    assert booking.task.url == "http://robots.test/a"
    # The booking went to robots.txt: the request finished, the page goes back to the queue.
    await frontier.finish([HostDone(booking.host_id, time.monotonic(), 0.0)])
    await frontier.requeue([booking.task.frontier_id])
    rows = await run.sql(
        "SELECT host, queued, in_flight, next_at > now() + interval '4 s' FROM frontier_hosts "
        "ORDER BY host"
    )
    assert rows == [("later.test", 1, 0, True), ("robots.test", 1, 0, False)]
    (again,) = await frontier.claim(10)
    assert again.task.frontier_id == booking.task.frontier_id


async def test_a_turn_without_a_task_is_booked_like_a_claim(run: Run) -> None:
    """`book` (robots.txt for the sitemaps, a sitemap): the host's row is made if missing,
    its one slot taken and its next start pushed by its delay; a claim then waits for it."""
    frontier = run.frontier(lookahead=0.0)
    await frontier.prepare(host_slots=1, first_delay=2.0)
    turn = await frontier.book("h0.test")
    assert turn is not None and turn.wait == 0.0 and turn.gap == 2.0
    assert await frontier.book("h0.test") is None  # its one slot is taken
    await run.queue(urls(1, 2))
    assert await frontier.claim(5) == []  # nor can a claim take the host
    await frontier.finish([HostDone(turn.host_id, time.monotonic(), 2.0)])
    assert await frontier.claim(5) == []  # free, but 2 s after the turn's start
    again = await frontier.book("h0.test")
    assert again is not None and 1.5 < again.wait <= 2.0


async def test_a_claim_reaches_the_frontier_by_key_however_small_the_table(run: Run) -> None:
    """A single-host crawl in a new database: a frontier of a few thousand rows, most done.
    The claim's UPDATE once joined its picks to a sequential scan of the whole frontier
    there (the planner's pick for a small table), and its picks walked the primary key
    through the done rows (most claims of a 10,000-page crawl, 1.7 ms each against 0.6):
    each claim then cost O(frontier). The picks read the host's queued rows only."""
    await run.queue(urls(1, 5000))
    await run.sql("ANALYZE frontier")  # statistics from when most rows were still queued
    await run.sql(
        "UPDATE frontier SET state = 'done' WHERE run_id = :run_id AND id IN ("
        "  SELECT id FROM frontier WHERE run_id = :run_id ORDER BY id LIMIT 4900)"
    )
    await run.sql("UPDATE frontier_hosts SET queued = 100, slots = 32 WHERE run_id = :run_id")
    frontier = run.frontier()
    params = {
        "crawl_id": run.crawl_id,
        "run_id": run.run_id,
        "owner": "p1",
        "lease": 60.0,
        "ahead": 0.25,
        "idle": 1.0,
        "n": 32,
        "tasks": 32,
        "lane": 1,
        "rest_ids": [],
        "rest_n": [],
    }
    plan = await run.db.execute(text("EXPLAIN " + CLAIM_SQL), params)
    lines = [str(row[0]) for row in plan]
    assert not [line for line in lines if "Seq Scan on frontier" in line], "\n".join(lines)
    picks = [line for line in lines if "on frontier f " in line]
    assert picks and all("ix_frontier_host_queued" in line for line in picks), "\n".join(lines)
    assert len(await frontier.claim(32)) == 32


async def test_a_host_with_no_delay_gets_lanes_of_tasks_a_slot(run: Run) -> None:
    """--delay 0: each free slot is booked for up to `lane` tasks, to run one after the other
    in it; the host's in_flight counts slots, not tasks. A host with a delay gets one a slot."""
    frontier = run.frontier(lane=3, lookahead=0.0)
    await frontier.prepare(host_slots=2, first_delay=0.0)
    await run.queue(urls(1, 10))
    got = await frontier.claim(10)
    lanes = [(b, *b.then) for b in got]
    assert sorted(len(lane) for lane in lanes) == [3, 3]
    for lane in lanes:
        ids = [b.task.frontier_id for b in lane]
        assert ids == sorted(ids)
    (row,) = await run.sql("SELECT in_flight, queued FROM frontier_hosts")
    assert row == (2, 4)
    assert await frontier.claim(10) == []  # both slots taken
    await frontier.finish([HostDone(got[0].host_id, time.monotonic(), 0.0)])
    # One slot freed: one lane, its length the host's queued tasks over its slots (4 / 2).
    (more,) = await frontier.claim(10)
    assert len((more, *more.then)) == 2
    await frontier.prepare(host_slots=2, first_delay=1.0)  # now with a delay: no lanes
    await run.sql("UPDATE frontier_hosts SET in_flight = 0, next_at = now()")
    spaced = await frontier.claim(10)
    assert len(spaced) == 2 and not any(b.then for b in spaced)  # the last queued tasks


async def test_lanes_shorten_as_the_hosts_queue_drains(run: Run) -> None:
    """--delay 0: a lane takes the host's queued tasks over its slots, at most `lane`: long
    lanes while the queue is long (few claims and finishes), short ones near its end, so the
    slots run out of work together instead of one working through a long lane alone."""
    frontier = run.frontier(lane=8, lookahead=0.0)
    await frontier.prepare(host_slots=2, first_delay=0.0)
    await run.queue(urls(1, 22))
    got = await frontier.claim(10)  # 22 over 2 slots: 11 each, at most 8
    assert sorted(len((b, *b.then)) for b in got) == [8, 8]
    await frontier.finish([HostDone(got[0].host_id, time.monotonic(), 0.0)])
    (more,) = await frontier.claim(10)  # 6 left over 2 slots
    assert len((more, *more.then)) == 3
    (row,) = await run.sql("SELECT in_flight, queued FROM frontier_hosts")
    assert row == (2, 3)


async def test_a_claim_counts_a_lane_as_one_booking_and_keeps_to_its_task_budget(run: Run) -> None:
    """`n` bounds the slots booked (a lane is one), `tasks` the tasks handed out: lanes
    fill their slots however small `n` is, and a page budget is never overrun by them."""
    frontier = run.frontier(lane=4, lookahead=0.0)
    await frontier.prepare(host_slots=3, first_delay=0.0)
    await run.queue(urls(1, 20))
    got = await frontier.claim(2)
    assert sorted(len((b, *b.then)) for b in got) == [4, 4]
    (row,) = await run.sql("SELECT in_flight, queued FROM frontier_hosts")
    assert row == (2, 12)
    (budget,) = await frontier.claim(5, tasks=3)  # one slot left: one lane, of three
    assert len((budget, *budget.then)) == 3
    (row,) = await run.sql("SELECT in_flight, queued FROM frontier_hosts")
    assert row == (3, 9)


async def test_slots_a_process_just_freed_go_to_another_process_first(run: Run) -> None:
    """A process writes its finishes just before its claim: that claim leaves the slots they
    freed (of hosts with a delay) to the other processes of the run, and the one after books
    them again, so a --join process is not starved of a host the first one fills."""
    first, joiner = run.frontier("p1", lookahead=1.0), run.frontier("p2", lookahead=1.0)
    await first.prepare(host_slots=2, first_delay=0.05)
    await run.queue(urls(1, 10))
    held = await first.claim(10)
    assert len(held) == 2
    await first.finish([HostDone(held[0].host_id, time.monotonic(), 0.05)])
    assert await first.claim(10) == []  # its own freed slot: left for one claim
    (theirs,) = await joiner.claim(10)
    assert theirs.task.frontier_id not in {b.task.frontier_id for b in held}
    await first.finish([HostDone(held[1].host_id, time.monotonic(), 0.05)])
    assert await first.claim(10) == []
    assert len(await first.claim(10)) == 1  # nobody took it: the claim after books it
    (row,) = await run.sql("SELECT in_flight FROM frontier_hosts")
    assert row == (2,)


async def test_a_host_with_no_delay_keeps_its_freed_slot(run: Run) -> None:
    """--delay 0: a freed slot is booked again by the very next claim (its lanes' speed)."""
    frontier = run.frontier(lookahead=0.0)
    await frontier.prepare(host_slots=1, first_delay=0.0)
    await run.queue(urls(1, 3))
    (held,) = await frontier.claim(10)
    await frontier.finish([HostDone(held.host_id, time.monotonic(), 0.0)])
    assert len(await frontier.claim(10)) == 1
