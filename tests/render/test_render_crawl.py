"""Issue 20 end to end: whole crawls (run.crawl, real PostgreSQL, real Chromium) of local sites.

- A single-page app, whose text and links only its script writes (with a `history.pushState`
  router), is crawled fully in `auto` and in `always`: every page stored with its text and
  links, `pages.rendered` true, and the summary counts them.
- A static site is left unrendered in `auto`: no page rendered, no browser started.
- With no browser to be had, `auto` says so once on stderr and crawls on unrendered.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from crawler.render import chromium
from crawler.run import crawl
from tests.render.conftest import need_browser
from tests.render.crawl_site import app_links, app_paths, app_text, serve_app_site, static_paths
from tests.speed import fast_settings
from tests.sql import plain_url

pytestmark = [pytest.mark.db, pytest.mark.timeout(180)]


def _settings(db_url: str, seed: str, **more: Any) -> Any:
    values = {
        "seeds": (seed,),
        "database_url": db_url,
        "concurrency": 4,
        "parse_processes": 0,
        **more,
    }
    return fast_settings(values)


async def _pages(db_url: str, base: str) -> dict[str, asyncpg.Record]:
    conn = await asyncpg.connect(plain_url(db_url))
    try:
        rows = await conn.fetch(
            "SELECT p.url, p.title, p.text, p.rendered, p.status, l.target_urls "
            "FROM pages p LEFT JOIN page_links l ON l.page_id = p.id"
        )
    finally:
        await conn.close()
    return {r["url"].removeprefix(base): r for r in rows}


@pytest.mark.parametrize("mode", ["auto", "always"])
async def test_a_single_page_app_is_crawled_fully(db_url: str, mode: str) -> None:
    browser = need_browser()
    async with serve_app_site() as (site, base):
        settings = _settings(
            db_url, base + "/app", render=mode, browser_path=browser, store_body=True
        )
        async with asyncio.timeout(150):
            summary = await crawl(settings)
    assert summary.exit_code == 0, summary.to_json()
    pages = await _pages(db_url, base)
    conn = await asyncpg.connect(plain_url(db_url))
    try:  # --store-body: the rendered HTML is the body, the server's is kept beside it
        kept = await conn.fetch(
            "SELECT r.body IS NOT NULL AS dom, s.body IS NOT NULL AS served "
            "FROM pages p LEFT JOIN bodies r ON r.content_hash = p.content_hash "
            "LEFT JOIN bodies s ON s.content_hash = p.static_hash"
        )
    finally:
        await conn.close()
    assert len(kept) == len(app_paths())
    assert all(row["dom"] and row["served"] for row in kept)
    assert set(pages) == app_paths()
    for path, row in pages.items():
        assert row["rendered"], path
        assert row["status"] == 200
        shown = "/app/" if path == "/app" else path  # the router moved /app to /app/ at load
        assert app_text(shown) in row["text"], (path, row["text"])
        expected = {base + href for href, _label in app_links(path)}
        assert expected <= set(row["target_urls"] or ()), (path, row["target_urls"])
    assert pages["/app/p/3"]["title"] == "Part 3"  # document.title, set by the script
    assert summary.stats.rendered == len(app_paths())
    assert summary.to_json()["rendered"] == len(app_paths())
    assert site.hits["/app.js"] >= len(app_paths())  # the browser ran the app's script


async def test_a_static_site_is_not_rendered_in_auto(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its pages carry their text: the detector says so, and no browser is ever started
    (the browser's private folder is made first thing at its start: none is)."""
    browser = need_browser()
    started: list[object] = []
    original = chromium.Workdir.__init__

    def counted(self: chromium.Workdir) -> None:
        started.append(self)
        original(self)

    monkeypatch.setattr(chromium.Workdir, "__init__", counted)
    async with serve_app_site() as (_site, base):
        settings = _settings(db_url, base + "/static/1", render="auto", browser_path=browser)
        async with asyncio.timeout(120):
            summary = await crawl(settings)
    assert summary.exit_code == 0, summary.to_json()
    pages = await _pages(db_url, base)
    assert set(pages) == static_paths()
    assert not any(row["rendered"] for row in pages.values())
    assert all("whose server sends all of its words" in row["text"] for row in pages.values())
    assert summary.stats.rendered == 0
    assert started == []


async def test_without_a_browser_auto_says_how_once_and_crawls_on(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "no-chromium")
    async with serve_app_site() as (_site, base):
        settings = _settings(db_url, base + "/app", render="auto", browser_path=missing)
        async with asyncio.timeout(120):
            summary = await crawl(settings)
    assert summary.exit_code == 0, summary.to_json()
    hints = [line for line in capsys.readouterr().err.splitlines() if "client-rendered" in line]
    assert len(hints) == 1, hints
    assert "--browser-path" in hints[0] and "--render never" in hints[0]
    pages = await _pages(db_url, base)
    assert set(pages) == {"/app"}  # no link without the script
    assert not pages["/app"]["rendered"]
    assert summary.stats.rendered == 0
    conn = await asyncpg.connect(plain_url(db_url))
    try:
        raw = await conn.fetchval("SELECT config FROM crawls")
    finally:
        await conn.close()
    stored = json.loads(raw) if isinstance(raw, str) else raw
    # The mode is the crawl's (a resumed run keeps it); the browser is this machine's.
    assert (stored["render"], stored["render_concurrency"]) == ("auto", 2)
    assert "browser_path" not in stored and "browser_cdp_url" not in stored
