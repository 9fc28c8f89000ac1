"""Adaptive politeness, the default when no --delay is given (crawler.throttle): a host
whose answers slow down gets fewer requests, and no two of its requests start closer than
the delay it had then."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from aiohttp import web

from crawler.config_sources import load_settings
from crawler.run import crawl
from crawler.throttle import MIN_DELAY
from tests.site import serve_app

pytestmark = pytest.mark.db

FAST_PAGES = 5  # answered in 50 ms, the index among them
SLOW_PAGES = 4  # then each answer takes 1 s
NOISE = 0.01  # seconds of scheduling noise between the crawler's clock and the server's


def slowing_site(log: list[tuple[str, float, float]]) -> web.Application:
    """An index linking every page; the first FAST_PAGES page requests take 50 ms, later
    ones 1 s. `log` gets (path, start, latency) of each request."""
    served = itertools.count()

    async def handle(request: web.Request) -> web.Response:
        start = time.monotonic()
        if request.path in ("/robots.txt", "/sitemap.xml"):
            log.append((request.path, start, 0.0))
            return web.Response(status=404)
        latency = 0.05 if next(served) < FAST_PAGES else 1.0
        await asyncio.sleep(latency)
        log.append((request.path, start, latency))
        if request.path == "/":
            pages = FAST_PAGES + SLOW_PAGES - 1
            links = "".join(f'<a href="/p{i}">p{i}</a>' for i in range(1, pages + 1))
            return web.Response(text=f"<html><body>{links}</body></html>", content_type="text/html")
        return web.Response(text=f"<title>{request.path}</title>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


async def test_a_host_that_slows_down_gets_fewer_requests_never_two_within_the_delay(
    db_url: str,
) -> None:
    log: list[tuple[str, float, float]] = []
    async with serve_app(slowing_site(log)) as site:
        # One request at a time: each answer's pace applies to the next request (with more
        # slots, requests booked before a slow answer came back keep their starts).
        flags = {"seeds": (site + "/",), "database_url": db_url, "host_concurrency": 1}
        settings = load_settings(flags)
        assert settings.delay is None  # the default: adaptive
        summary = await crawl(settings)
    assert summary.exit_code == 0
    assert len([path for path, _, _ in log if not path.endswith((".txt", ".xml"))]) == (
        FAST_PAGES + SLOW_PAGES
    )
    gaps = [(b[1] - a[1], a[2]) for a, b in itertools.pairwise(sorted(log, key=lambda e: e[1]))]
    # Never two requests closer than the least adaptive delay, whatever the answers.
    assert min(gap for gap, _ in gaps) >= MIN_DELAY - NOISE, gaps
    # After a 1 s answer the next gap is at least its mean with twice the latency (2 s):
    # the rate falls as soon as the host slows, and stays lower.
    fast = [gap for gap, latency in gaps if latency < 0.5]
    slow = [gap for gap, latency in gaps if latency >= 0.5]
    assert min(slow) >= (MIN_DELAY + 2.0) / 2 - NOISE, gaps
    assert min(slow) > max(fast), gaps
    assert sorted(slow) == slow, gaps  # each slow answer widens the gap further
