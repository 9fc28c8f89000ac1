"""`crawler.reparse` on real PostgreSQL: stored bodies parsed again, with no HTTP at all.

The fixture site is crawled with --store-body, its server is stopped, and aiohttp is made
to fail if anyone tries a request; then reparse runs with new extraction rules.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import asyncpg
import pytest

from crawler import reparse as reparse_module
from crawler.config import ExtractRule
from crawler.db import bodies
from crawler.db.database import Database
from crawler.errors import ConfigError
from crawler.extract import CompiledRules, compile_rules
from crawler.records import Page
from crawler.reparse import ReparseResult, decode_body, reparse
from crawler.run import crawl, open_database
from tests.site import EXPECTED_HTML, PAGES, serve_site
from tests.speed import fast_settings
from tests.sql import plain_url

pytestmark = pytest.mark.db

NAME = "site"
# Pages a crawl (and reparse) keeps without text: meta robots say noindex.
NOINDEX = {path for path in EXPECTED_HTML if "noindex" in PAGES[path]}
H1_AND_LINKS = compile_rules(
    (
        ExtractRule(name="heading", css="h1"),
        ExtractRule(name="hrefs", css="a", take="attr:href", all=True),
    )
)


async def _crawl_site(db_url: str, *, store_body: bool = True) -> str:
    """Crawl the fixture site; return its base URL (its server is stopped on return)."""
    async with serve_site() as base:
        settings = fast_settings(
            {
                "seeds": (base + "/",),
                "name": NAME,
                "database_url": db_url,
                "concurrency": 4,
                "store_body": store_body,
            }
        )
        summary = await crawl(settings)
    assert summary.status == "finished"
    return base


@pytest.fixture
def forbid_http(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call it after the crawl: any aiohttp request from then on fails the test."""

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("reparse made an HTTP request")

    def forbid() -> None:
        monkeypatch.setattr(aiohttp.ClientSession, "_request", refuse)

    return forbid


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    async with open_database(fast_settings({"database_url": db_url})) as database:
        yield database


async def _pages(db_url: str, base: str) -> dict[str, asyncpg.Record]:
    conn = await asyncpg.connect(plain_url(db_url))
    try:
        rows = await conn.fetch("SELECT url, title, h1, text, data FROM pages")
    finally:
        await conn.close()
    return {r["url"].removeprefix(base): r for r in rows}


async def _sql(db_url: str, query: str, *args: Any) -> None:
    conn = await asyncpg.connect(plain_url(db_url))
    try:
        await conn.execute(query, *args)
    finally:
        await conn.close()


async def test_reparse_fills_a_new_rule_for_every_page_without_http(
    db_url: str, db: Database, forbid_http: Callable[[], None]
) -> None:
    base = await _crawl_site(db_url)
    forbid_http()  # the site server is stopped too
    before = await _pages(db_url, base)
    assert set(before) == EXPECTED_HTML
    assert all(json.loads(r["data"]) == {} for r in before.values())  # no rules at crawl time

    result = await reparse(db, NAME, H1_AND_LINKS)

    n = len(EXPECTED_HTML)
    assert result == ReparseResult(crawl=NAME, pages=n, reparsed=n, changed=n, missing=0)
    after = await _pages(db_url, base)
    assert {"/sub/c.html"} == NOINDEX  # the fixture has one
    for path, row in after.items():
        data = json.loads(row["data"])
        if path in NOINDEX:
            assert row["text"] == "", path  # no text, but the rules' data all the same
        assert set(data) == {"heading", "hrefs"}, path
        assert isinstance(data["hrefs"], list), path
        assert data["heading"] == row["h1"], path  # the same text as the parser's h1
    home = json.loads(after["/"]["data"])
    assert home["heading"] == "Welcome"
    assert base + "/a.html" in home["hrefs"]
    assert base + "/b.html" in home["hrefs"]  # fragment dropped, made absolute
    assert "mailto:x@example.com" in home["hrefs"]  # not http(s): kept as written
    assert json.loads(after["/b.html"]["data"])["hrefs"] == [
        base + "/sub/c.html",  # <base href="/sub/">
        base + "/missing.html",
    ]
    # The parsed columns are the crawl's own.
    for path in EXPECTED_HTML:
        assert after[path]["title"] == before[path]["title"]
        assert after[path]["text"] == before[path]["text"]


async def test_without_obeying_meta_robots_noindex_pages_are_filled_too(
    db_url: str, db: Database, forbid_http: Callable[[], None]
) -> None:
    base = await _crawl_site(db_url)
    forbid_http()
    result = await reparse(db, NAME, H1_AND_LINKS, obey_meta_robots=False)
    assert result.changed == len(EXPECTED_HTML)
    pages = await _pages(db_url, base)
    for path in NOINDEX:
        assert set(json.loads(pages[path]["data"])) == {"heading", "hrefs"}
        assert pages[path]["text"] == "A"  # stored without its text by the crawl


async def test_reparse_again_changes_nothing_and_rules_replace_data(
    db_url: str, db: Database, forbid_http: Callable[[], None]
) -> None:
    base = await _crawl_site(db_url)
    forbid_http()
    await reparse(db, NAME, H1_AND_LINKS)
    again = await reparse(db, NAME, H1_AND_LINKS)
    assert again.reparsed == len(EXPECTED_HTML)
    assert again.changed == 0  # same fields: rows are not rewritten

    # pages.data becomes exactly the fields of the rules given...
    title_only = compile_rules((ExtractRule(name="t", css="title"),))
    await reparse(db, NAME, title_only)
    pages = await _pages(db_url, base)
    assert json.loads(pages["/"]["data"]) == {"t": "Home"}
    # ...and without rules it is left alone (the parsed columns are still refreshed).
    await _sql(db_url, "UPDATE pages SET title = 'stale'")
    result = await reparse(db, NAME, CompiledRules())
    assert result.changed == len(EXPECTED_HTML)  # the title was refreshed everywhere
    pages = await _pages(db_url, base)
    assert json.loads(pages["/"]["data"]) == {"t": "Home"}
    assert pages["/"]["title"] == "Home"


async def test_pages_without_a_stored_body_are_counted_and_left_alone(
    db_url: str, db: Database, forbid_http: Callable[[], None]
) -> None:
    base = await _crawl_site(db_url, store_body=False)
    forbid_http()
    result = await reparse(db, NAME, H1_AND_LINKS)
    n = len(EXPECTED_HTML)
    assert result == ReparseResult(crawl=NAME, pages=n, reparsed=0, changed=0, missing=n)
    assert all(json.loads(r["data"]) == {} for r in (await _pages(db_url, base)).values())


async def test_small_batches_visit_every_page_once(
    db_url: str, db: Database, forbid_http: Callable[[], None]
) -> None:
    await _crawl_site(db_url)
    forbid_http()
    seen: list[ReparseResult] = []
    # One page a batch by size (every body is over one byte), at most two by count.
    result = await reparse(
        db, NAME, H1_AND_LINKS, batch_pages=2, batch_bytes=1, progress=seen.append
    )
    n = len(EXPECTED_HTML)
    assert result.reparsed == n and result.pages == n
    assert len(seen) == n
    assert [r.pages for r in seen] == list(range(1, n + 1))


async def test_batches_follow_the_page_id_and_byte_budget(db_url: str, db: Database) -> None:
    await _crawl_site(db_url)
    conn = await asyncpg.connect(plain_url(db_url))
    try:
        crawl_id = await conn.fetchval("SELECT id FROM crawls WHERE name = $1", NAME)
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM pages ORDER BY id")]
    finally:
        await conn.close()
    whole = await bodies.page_batch(db, crawl_id, 0, limit=100)
    assert [p.id for p in whole] == ids
    assert all(p.body() is not None for p in whole)
    two = await bodies.page_batch(db, crawl_id, 0, limit=2)
    assert [p.id for p in two] == ids[:2]
    rest = await bodies.page_batch(db, crawl_id, ids[1], limit=100)
    assert [p.id for p in rest] == ids[2:]
    assert await bodies.page_batch(db, crawl_id, ids[-1]) == []
    tiny = await bodies.page_batch(db, crawl_id, 0, limit=100, max_bytes=1)
    assert [p.id for p in tiny] == ids[:1]  # the first page always comes


async def test_a_page_refetched_meanwhile_keeps_what_the_crawl_wrote(
    db_url: str, db: Database
) -> None:
    base = await _crawl_site(db_url)
    conn = await asyncpg.connect(plain_url(db_url))
    try:
        page_id = await conn.fetchval("SELECT id FROM pages WHERE url = $1", base + "/")
    finally:
        await conn.close()
    stale = bodies.Reparsed(page_id, "not-the-current-hash", Page(title="old"))
    assert await bodies.write_reparsed(db, [stale]) == 0
    assert (await _pages(db_url, base))["/"]["title"] == "Home"


async def test_unknown_crawl_is_a_config_error(db: Database) -> None:
    with pytest.raises(ConfigError, match="there is no crawl named 'nope'"):
        await reparse(db, "nope", H1_AND_LINKS)


def test_bodies_decode_as_the_fetcher_decodes_them() -> None:
    latin = "<meta charset='iso-8859-1'><p>café €</p>".encode("cp1252")
    assert "café €" in decode_body(latin)
    assert decode_body(codecs.BOM_UTF8 + "<p>ü</p>".encode()) == "<p>ü</p>"
    assert decode_body(b"<p>\xff</p>") == "<p>\xff</p>"  # undeclared, not UTF-8: windows-1252


async def test_a_failure_half_way_leaves_no_write_running(
    db_url: str, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _crawl_site(db_url)
    calls = 0
    real = reparse_module._parse_batch

    def flaky(batch: list[bodies.StoredPage], rules: CompiledRules, obey: bool) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:  # while the first batch is being written
            raise RuntimeError("boom")
        return real(batch, rules, obey)

    monkeypatch.setattr(reparse_module, "_parse_batch", flaky)
    with pytest.raises(RuntimeError, match="boom"):
        await reparse(db, NAME, H1_AND_LINKS, batch_pages=1)
    # Nothing is left pending (filterwarnings=error would catch a destroyed task), and the
    # database is usable.
    assert (await reparse(db, NAME, H1_AND_LINKS)).missing == 0
