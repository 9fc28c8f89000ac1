"""The frontier (crawler.db.frontier) on real PostgreSQL: leases, renewal, release, and the
claim query's plan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from crawler.db import frontier
from crawler.db.database import Database
from crawler.db.frontier import PgFrontier
from tests.sql import plain_url, positional

pytestmark = pytest.mark.db


async def test_a_claim_walks_the_open_rows_not_the_run_from_its_start(db_url: str) -> None:
    """A plan made while most of a run's rows were open, used when most are done (a cached
    generic plan, statistics from early in the run), must still start at the open rows."""
    conn = await asyncpg.connect(plain_url(db_url))
    try:
        crawl = await conn.fetchval("INSERT INTO crawls (name) VALUES ('c') RETURNING id")
        run = await conn.fetchval(
            "INSERT INTO crawl_runs (crawl_id) VALUES ($1) RETURNING id", crawl
        )
        await conn.execute(
            "INSERT INTO frontier (run_id, url) "
            "SELECT $1, 'https://site.example/' || i FROM generate_series(1, 5000) i",
            run,
        )
        await conn.execute("ANALYZE frontier")  # every row open
        await conn.execute("UPDATE frontier SET state = 'done' WHERE id <= 4990")
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        sql, names = positional(frontier._CLAIM.text)
        values = {"run_id": run, "crawl_id": crawl, "owner": "o", "lease": 60, "n": 32}
        explain = await conn.prepare("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in await explain.fetch(*[values[n] for n in names]))
    finally:
        await conn.close()
    assert "ix_frontier_open" in plan, plan


class Run:
    """A crawl and a run with `urls` queued, and a PgFrontier for each of two processes."""

    def __init__(self, conn: asyncpg.Connection, db: Database, crawl: int, run: int) -> None:
        self.conn = conn
        self.db = db
        self.crawl = crawl
        self.run = run

    def frontier(self, owner: str, lease: float = 60.0) -> PgFrontier:
        return PgFrontier(self.db, self.crawl, self.run, owner, lease)

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


URLS = [f"https://site.example/{n}" for n in range(4)]


async def test_claims_lease_each_row_to_one_process(db_url: str) -> None:
    async with a_run(db_url, URLS) as run:
        mine, theirs = run.frontier("a"), run.frontier("b")
        first = await mine.claim(3)
        second = await theirs.claim(3)
        assert [t.url for t in first] == URLS[:3]
        assert [t.url for t in second] == URLS[3:]
        assert all(t.attempts == 1 for t in first + second)
        assert await mine.claim(3) == []
        assert await mine.open_count() == 4
        rows = await run.rows()
    assert {url: owner for url, (_, owner, _) in rows.items()} == {
        URLS[0]: "a",
        URLS[1]: "a",
        URLS[2]: "a",
        URLS[3]: "b",
    }


async def test_release_hands_rows_back_and_the_attempt_does_not_count(db_url: str) -> None:
    async with a_run(db_url, URLS[:2]) as run:
        mine, theirs = run.frontier("a"), run.frontier("b")
        tasks = await mine.claim(2)
        await theirs.release([t.frontier_id for t in tasks])  # not theirs: nothing happens
        assert all(state == "leased" for state, _, _ in (await run.rows()).values())
        await mine.release([t.frontier_id for t in tasks])
        assert await run.rows() == {url: ("queued", None, 0) for url in URLS[:2]}
        again = await theirs.claim(2)
    assert [t.attempts for t in again] == [1, 1]


async def test_an_expired_lease_goes_to_another_process_unless_renewed(db_url: str) -> None:
    async with a_run(db_url, URLS[:2]) as run:
        mine = run.frontier("a", lease=0.5)
        first, second = await mine.claim(2)
        await run.conn.execute(  # time passes: both leases expire
            "UPDATE frontier SET lease_until = now() - interval '1 second'"
        )
        await mine.renew([first.frontier_id])  # renewed after expiry, still ours: kept
        taken = await run.frontier("b").claim(2)
        rows = await run.rows()
    assert [t.url for t in taken] == [second.url]
    assert taken[0].attempts == 2
    assert rows[first.url] == ("leased", "a", 1)
    assert rows[second.url] == ("leased", "b", 2)
