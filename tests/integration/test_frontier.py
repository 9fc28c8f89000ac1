"""The frontier's leases on real PostgreSQL (crawler.db.host_frontier): each row leased to
one process, renewal, release, and expired leases reaped for another process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from crawler.db.database import Database
from crawler.db.host_frontier import PgHostFrontier
from tests.sql import plain_url

pytestmark = pytest.mark.db


class Run:
    """A crawl and a run with `urls` queued, and a frontier for each of two processes."""

    def __init__(self, conn: asyncpg.Connection, db: Database, crawl: int, run: int) -> None:
        self.conn = conn
        self.db = db
        self.crawl = crawl
        self.run = run

    def frontier(self, owner: str, lease: float = 60.0) -> PgHostFrontier:
        return PgHostFrontier(self.db, self.crawl, self.run, owner, lease)

    async def rows(self) -> dict[str, tuple[str, str | None, int]]:
        rows = await self.conn.fetch("SELECT url, state, lease_owner, attempts FROM frontier")
        return {r["url"]: (r["state"], r["lease_owner"], r["attempts"]) for r in rows}


@contextlib.asynccontextmanager
async def a_run(db_url: str, urls: list[str]) -> AsyncIterator[Run]:
    conn = await asyncpg.connect(plain_url(db_url))
    db = Database(db_url)
    try:
        crawl = await conn.fetchval("INSERT INTO crawls (name) VALUES ('c') RETURNING id")
        run = await conn.fetchval(
            "INSERT INTO crawl_runs (crawl_id) VALUES ($1) RETURNING id", crawl
        )
        for url in urls:
            await conn.execute("INSERT INTO frontier (run_id, url) VALUES ($1, $2)", run, url)
        yield Run(conn, db, crawl, run)
    finally:
        await db.dispose()
        await conn.close()


URLS = [f"https://site{n}.example/" for n in range(4)]  # a host each: one slot each


async def test_claims_lease_each_row_to_one_process(db_url: str) -> None:
    async with a_run(db_url, URLS) as run:
        mine, theirs = run.frontier("a"), run.frontier("b")
        first = await mine.claim(3)
        second = await theirs.claim(3)
        assert sorted(b.task.url for b in first + second) == URLS
        assert len(first) == 3
        assert all(b.task.attempts == 1 for b in first + second)
        assert await mine.claim(3) == []
        assert await mine.open_count() == 4
        rows = await run.rows()
    owners = {url: owner for url, (_, owner, _) in rows.items()}
    assert owners == {b.task.url: "a" for b in first} | {second[0].task.url: "b"}


async def test_release_hands_rows_back_and_the_attempt_does_not_count(db_url: str) -> None:
    async with a_run(db_url, URLS[:2]) as run:
        mine, theirs = run.frontier("a"), run.frontier("b")
        tasks = await mine.claim(2)
        ids = [b.task.frontier_id for b in tasks]
        await theirs.release(ids)  # not theirs: nothing happens
        assert all(state == "leased" for state, _, _ in (await run.rows()).values())
        await mine.release(ids)
        assert await run.rows() == {url: ("queued", None, 0) for url in URLS[:2]}
        again = await theirs.claim(2)
    assert [b.task.attempts for b in again] == [1, 1]


async def test_an_expired_lease_goes_to_another_process_unless_renewed(db_url: str) -> None:
    async with a_run(db_url, URLS[:2]) as run:
        mine = run.frontier("a", lease=0.5)
        first, second = (b.task for b in await mine.claim(2))
        await run.conn.execute(  # time passes: both leases and bookings expire
            "UPDATE frontier SET lease_until = now() - interval '1 second'"
        )
        await run.conn.execute("UPDATE frontier_hosts SET busy_until = now() - interval '1 second'")
        await mine.renew([first.frontier_id])  # renewed after expiry, still ours: kept
        theirs = run.frontier("b")
        assert await theirs.claim(2) == []  # nothing queued until reaped
        assert await theirs.reap() == (1, 1)
        taken = [b.task for b in await theirs.claim(2)]
        rows = await run.rows()
    assert [t.url for t in taken] == [second.url]
    assert taken[0].attempts == 2
    assert rows[first.url] == ("leased", "a", 1)
    assert rows[second.url] == ("leased", "b", 2)
