"""The frontier's claim query (crawler.db.frontier): its plan walks the open rows' index."""

from __future__ import annotations

import asyncpg
import pytest

from crawler.db import frontier
from tests.sql import positional

pytestmark = pytest.mark.db


async def test_a_claim_walks_the_open_rows_not_the_run_from_its_start(db_url: str) -> None:
    """A plan made while most of a run's rows were open, used when most are done (a cached
    generic plan, statistics from early in the run), must still start at the open rows."""
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
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
