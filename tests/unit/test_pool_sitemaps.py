"""The pool's sitemap reading, driven through fakes of its fetcher and sink."""

from __future__ import annotations

from datetime import datetime

import pytest

from crawler import sitemap_feed
from crawler.config_sources import load_settings
from crawler.records import FetchResult
from tests.unit.pool_fakes import ORIGIN, FakeFetcher, FakeFrontier, make_pool

SITEMAP = (
    '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
    f"<url><loc>{ORIGIN}/a</loc></url><url><loc>{ORIGIN}/b?x=1</loc></url>"
    "<url><loc>http://elsewhere.example/c</loc></url></urlset>"
)


class SitemapFetcher(FakeFetcher):
    async def answer(self, url: str) -> FetchResult:
        bodies = {
            f"{ORIGIN}/robots.txt": f"User-agent: *\nSitemap: {ORIGIN}/map.xml\n",
            f"{ORIGIN}/map.xml": SITEMAP,
        }
        body = bodies.get(url)
        if body is None:
            return await super().answer(url)
        return FetchResult(url, url, 200, "text/plain", (), body.encode())


class FakeSink:
    def __init__(self) -> None:
        self.listed: list[tuple[str, datetime | None]] = []

    async def enqueue_listed(self, entries: list[tuple[str, datetime | None]], depth: int) -> int:
        self.listed.extend(entries)
        return len(entries)


async def test_sitemap_urls_are_queued_and_known(monkeypatch: pytest.MonkeyPatch) -> None:
    """Queued from the sitemap, its in-scope URLs have frontier rows: the pool knows them, so
    the links that point at them are not sent to the database again."""
    # No task reads robots.txt here: the reader reads it at once.
    monkeypatch.setattr(sitemap_feed, "ROBOTS_WAIT", 0.0)
    settings = load_settings({"seeds": (ORIGIN + "/",)})
    sink = FakeSink()
    # The frontier only books the host's turns (robots.txt, the sitemap).
    pool = make_pool(settings, FakeFrontier(), SitemapFetcher(), sink, sitemap_origins=(ORIGIN,))
    await pool.sitemaps.run()
    expected = [ORIGIN + "/a", ORIGIN + "/b?x=1"]
    assert [url for url, _ in sink.listed] == expected
    assert all(url in pool.known for url in expected)
    assert "http://elsewhere.example/c" not in pool.known
    assert pool.stats.queued == 2
    assert pool.sitemaps.done
