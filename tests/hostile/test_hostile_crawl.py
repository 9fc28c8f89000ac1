"""A whole crawl of the hostile server: it ends on its own, and every URL ends as a fetch.

The crawl starts at the index page, which links every endpoint of every hostile server
(127.0.0.1 on several ports: one crawl host, several robots.txt origins). Retries are off,
so each failure is recorded once; timeouts and caps are small, so it takes seconds.
"""

from __future__ import annotations

import asyncio

import asyncpg
import psutil
import pytest

from crawler.run import crawl
from crawler.urls import canonicalize
from tests.hostile.server import ENDPOINTS, LATER_SITE, serve_in_subprocess
from tests.speed import fast_settings
from tests.sql import plain_url

pytestmark = [pytest.mark.db, pytest.mark.timeout(120)]

KIB = 1024
MIB = 1024 * KIB


async def test_crawl_of_every_hostile_endpoint(db_url: str) -> None:
    async with serve_in_subprocess() as hostile:
        settings = fast_settings(
            {
                "seeds": (hostile.index,),
                "database_url": db_url,
                "concurrency": 32,
                "host_concurrency": 16,
                # Parsing the 20000 nested divs blocks this loop for up to a second (the
                # servers run in another process): the timeouts leave room for that.
                "connect_timeout": 5.0,
                "read_timeout": 1.0,
                "total_timeout": 3.0,
                "max_body_bytes": 8 * MIB,
                "max_header_bytes": 8 * KIB,
                "max_redirects": 5,
                "retries": 0,
            }
        )
        before_mb = psutil.Process().memory_info().rss / 2**20
        summary = await asyncio.wait_for(crawl(settings), 100)
        endpoint_urls = {e: canonicalize(hostile.url(e)) for e in ENDPOINTS}
        web = hostile.bases["web"]
    assert summary.status == "finished"
    assert summary.exit_code == 0

    conn = await asyncpg.connect(plain_url(db_url))
    try:
        open_rows = await conn.fetchval("SELECT count(*) FROM frontier WHERE state <> 'done'")
        assert open_rows == 0
        missing = await conn.fetch(
            "SELECT url FROM frontier f WHERE NOT EXISTS "
            "(SELECT 1 FROM fetches x WHERE x.url = f.url) ORDER BY url"
        )
        assert [r["url"] for r in missing] == []
        rows = await conn.fetch("SELECT url, status, error_kind, error FROM fetches")
    finally:
        await conn.close()

    by_url = {r["url"]: r for r in rows}
    # Every endpoint was fetched (or refused by robots.txt) and recorded.
    for endpoint, url in endpoint_urls.items():
        assert url in by_url, f"{endpoint.server}{endpoint.path} was never recorded"
    assert by_url[web + "/private/secret"]["error_kind"] == "robots"

    def kind(server: str, path: str) -> str | None:
        (url,) = [u for e, u in endpoint_urls.items() if (e.server, e.path) == (server, path)]
        value: str | None = by_url[url]["error_kind"]
        return value

    assert kind("web", "/gzip-bomb") == "too_large"
    assert kind("web", "/redirect-private") == "blocked_address"
    assert kind("web", "/redirect-localhost") == "blocked_address"
    assert kind("web", "/redirect-loop") == "too_many_redirects"
    assert kind("raw", "/drop-mid-body") == "bad_response"
    assert kind("web", "/trickle") == "timeout"
    assert kind("web", "/status/500") == "http_status"
    # robots.txt that fails (5xx, 429, redirect loop): the site is off limits for now; one
    # that gets no answer: the site is down, its pages fail with that kind; one that is huge
    # or garbage still lets the page through.
    for name in ("robots-500", "robots-429", "robots-loop"):
        assert kind(name, "/") == "robots", name
    assert kind("robots-timeout", "/") == "timeout"
    assert (
        "robots.txt unreachable (timeout" in by_url[hostile.bases["robots-timeout"] + "/"]["error"]
    )
    # A Retry-After of two hours: that host is left for the next run, the crawl goes on.
    assert kind(LATER_SITE, "/") == "http_status"
    for name in ("robots-big", "robots-garbage"):
        assert kind(name, "/") is None, name

    # Traps end: the repeated-segment guard, the query-variant guard or max depth.
    trap = [u for u in by_url if u.startswith(web + "/trap/")]
    assert 1 < len(trap) <= 20
    assert all(u.count("/a") <= 3 for u in trap)
    calendar = [u for u in by_url if u.startswith(web + "/calendar")]
    assert 1 < len(calendar) <= settings.max_depth + 1
    grow = [u for u in by_url if u.startswith(web + "/grow")]
    assert 1 < len(grow) <= 12  # doubling: over max_url_length after 11
    assert all(len(u) <= settings.max_url_length for u in by_url)

    # The test process holds the whole suite's imports: what the crawl added is what counts.
    assert summary.peak_rss_mb - before_mb < 200
    # Loose for now: the pool parses in the event loop, and lexbor takes about a second over
    # 20000 nested divs (selectolax releases the GIL, so a thread would keep this near 0).
    assert summary.stats.loop_lag_ms["max"] < 3000
