"""Politeness with real local servers: Retry-After blocks a host, other hosts go on."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from aiohttp import web

from crawler.run import crawl
from tests.site import serve_app
from tests.speed import fast_settings
from tests.sql import plain_url

pytestmark = pytest.mark.db

RETRY_AFTER = 3


def logging_site(
    name: str, pages: int, log: list[tuple[str, str, float]], blocked: asyncio.Event
) -> web.Application:
    """A site whose index links `pages` pages; /p1 answers 429 + Retry-After the first time
    (and sets `blocked`). The "slow" site answers its index once `blocked` is set, so the
    throttling host's pages come first."""
    throttled: set[str] = set()

    async def handle(request: web.Request) -> web.Response:
        log.append((name, request.path, time.monotonic()))
        if request.path == "/robots.txt":
            return web.Response(status=404)
        if request.path == "/":
            if name == "slow":
                await asyncio.wait_for(blocked.wait(), 60)
            links = "".join(f'<a href="/p{i}">p{i}</a>' for i in range(1, pages + 1))
            return web.Response(text=f"<html><body>{links}</body></html>", content_type="text/html")
        if name == "throttling" and request.path == "/p1" and "/p1" not in throttled:
            throttled.add("/p1")
            blocked.set()
            return web.Response(status=429, headers={"Retry-After": str(RETRY_AFTER)})
        return web.Response(text=f"<title>{request.path}</title>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


async def test_retry_after_blocks_the_host_while_other_hosts_are_crawled(db_url: str) -> None:
    log: list[tuple[str, str, float]] = []
    blocked = asyncio.Event()
    async with (
        serve_app(logging_site("throttling", 5, log, blocked)) as a,
        serve_app(logging_site("slow", 40, log, blocked)) as b,
    ):
        settings = fast_settings(
            {
                "seeds": (a + "/", b + "/"),
                "database_url": db_url,
                "concurrency": 4,
                "host_concurrency": 1,
                "delay": 0.1,  # host b's 40 pages take about 4 s
            }
        )
        summary = await crawl(settings)
    assert summary.exit_code == 0
    blocked_at = next(t for name, path, t in log if name == "throttling" and path == "/p1")
    after = [(path, t - blocked_at) for name, path, t in log if name == "throttling"]
    during = [entry for entry in after if 0 < entry[1] < RETRY_AFTER - 0.05]
    assert during == [], f"requests to the throttling host within Retry-After: {during}"
    others = [t for name, _path, t in log if name == "slow" and 0 < t - blocked_at < RETRY_AFTER]
    assert len(others) >= 10, "the other host was not crawled meanwhile"

    conn = await asyncpg.connect(plain_url(db_url))
    try:
        rows = await conn.fetch("SELECT url, status FROM fetches WHERE url LIKE $1", a + "/p%")
    finally:
        await conn.close()
    final = {r["url"].removeprefix(a): r["status"] for r in rows if r["status"] == 200}
    assert set(final) == {f"/p{i}" for i in range(1, 6)}  # /p1 retried after the wait
    assert any(r["status"] == 429 for r in rows)  # and the 429 is in the history
