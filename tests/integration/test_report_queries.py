"""The report's queries (crawler.db.report_queries) on the fixture site crawled twice: every
chart's counts, the tables' rows, anchors and totals, the cap on rows, and broken links
that are the view's rows, with or without an anchor column in the view."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from crawler.db import report_queries, report_tables
from crawler.db.database import Database
from crawler.errors import ConfigError
from crawler.report.data import Count, ReportData, Table
from crawler.run import crawl
from tests.site import EXPECTED_HTML, serve_site
from tests.speed import fast_settings

pytestmark = pytest.mark.db


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture
async def crawled(db_url: str) -> AsyncIterator[tuple[Database, str, list[int]]]:
    """(database, site base URL, run ids) after two crawls of the fixture site."""
    async with serve_site() as base:
        settings = fast_settings({"seeds": (base + "/",), "database_url": db_url, "name": "site"})
        runs = [(await crawl(settings)).run_id, (await crawl(settings)).run_id]
    db = Database(db_url)
    try:
        yield db, base, runs
    finally:
        await db.dispose()


def _table(data: ReportData, key: str) -> Table:
    return next(t for t in data.tables if t.key == key)


def _broken(data: ReportData, base: str) -> set[tuple[object, ...]]:
    rows = _table(data, "broken_links").rows
    return {(r[0].removeprefix(base), r[1].removeprefix(base), *r[2:]) for r in rows}  # type: ignore[union-attr]


KNOWN_BROKEN = {
    ("/", "/missing.html", "404", "Missing", 1),
    ("/b.html", "/missing.html", "404", "Missing again", 1),
}


async def test_the_latest_run(crawled) -> None:
    db, base, runs = crawled
    data = await report_queries.gather(db, None, None)
    s = data.summary
    assert (s.crawl, s.run_id, s.status, s.runs) == ("site", runs[1], "finished", 2)
    assert s.pages == len(EXPECTED_HTML) == s.current_pages
    assert s.errors == 2  # /missing.html (404) and /private/secret.html (robots)
    assert s.fetches == sum(c.count for c in data.statuses)
    assert s.duration_s > 0 and s.rate > 0
    assert s.seeds == (base + "/",)
    assert "database_url" not in s.settings and s.settings["concurrency"] > 0
    assert Count("404", 1) in data.statuses and Count("none", 1) in data.statuses
    responses = sum(c.count for c in data.statuses if c.label != "none")
    assert sum(data.response_times.counts) + data.response_times.over == responses
    assert sum(c.count for c in data.depths) == len(EXPECTED_HTML)
    assert {c.label for c in data.content_types} == {"text/html", "application/pdf"}
    assert {c.label: c.count for c in data.error_kinds} == {"http_status": 1, "robots": 1}
    assert [(r.run_id, r.new, r.unchanged) for r in data.runs] == [
        (runs[0], len(EXPECTED_HTML), 0),
        (runs[1], 0, len(EXPECTED_HTML)),
    ]
    assert _broken(data, base) == KNOWN_BROKEN
    broken = _table(data, "broken_links")
    assert broken.total == 2
    assert broken.query == f"SELECT * FROM broken_links WHERE crawl_id = {s.crawl_id}"
    redirects = _table(data, "redirects")
    assert redirects.rows == ((f"{base}/moved → {base}/target.html", 1, 200),)
    assert _table(data, "slowest_pages").total == len(EXPECTED_HTML)
    assert _table(data, "largest_pages").rows[0][0] == base + "/"  # the home page is largest
    missing = _table(data, "missing_metadata")
    assert missing.total == len(EXPECTED_HTML) - 1  # all but the home page lack a description
    assert "without a description: 5" in missing.note
    assert _table(data, "orphan_pages").total == 0


async def test_an_earlier_run_and_its_errors(crawled) -> None:
    db, _, runs = crawled
    data = await report_queries.gather(db, "site", runs[0])
    assert data.summary.run_id == runs[0]
    assert [r.run_id for r in data.runs] == [runs[0]]  # runs after it are not shown
    with pytest.raises(ConfigError, match="no run 999"):
        await report_queries.gather(db, "site", 999)
    with pytest.raises(ConfigError, match="no crawl named"):
        await report_queries.gather(db, "nope", None)


async def test_tables_are_capped_with_their_total(crawled, monkeypatch) -> None:
    db, _, _ = crawled
    monkeypatch.setattr(report_tables, "TABLE_ROWS", 1)
    data = await report_queries.gather(db, None, None)
    for key in ("broken_links", "slowest_pages", "largest_pages", "missing_metadata"):
        table = _table(data, key)
        assert len(table.rows) == 1 < table.total, key


async def test_broken_links_are_the_views_rows(crawled, db_url: str) -> None:
    """The report finds the rows of the broken_links view (its own query is faster), and
    stays the same when a later migration adds position and anchor_text to the view."""
    db, base, _ = crawled
    conn = await asyncpg.connect(_plain(db_url))
    try:
        view = await conn.fetch("SELECT DISTINCT source_url, target_url FROM broken_links")
        data = await report_queries.gather(db, None, None)
        rows = _table(data, "broken_links").rows
        assert {(r["source_url"], r["target_url"]) for r in view} == {r[:2] for r in rows}
        columns = await conn.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'broken_links'::regclass "
            "AND attnum > 0"
        )
        if "anchor_text" not in {c["attname"] for c in columns}:  # before migration 0006
            definition = await conn.fetchval("SELECT pg_get_viewdef('broken_links'::regclass)")
            widened = (
                definition.rstrip()
                .rstrip(";")
                .replace("lf.run_id", 'lf.run_id, l."position", l.anchor_text', 1)
            )
            await conn.execute(f"CREATE OR REPLACE VIEW broken_links AS {widened}")
        anchors = await conn.fetch("SELECT anchor_text FROM broken_links")
        assert {r["anchor_text"] for r in anchors} == {"Missing", "Missing again"}
    finally:
        await conn.close()
    data = await report_queries.gather(db, None, None)
    assert _broken(data, base) == KNOWN_BROKEN


async def _drop_links(conn: asyncpg.Connection, source: str, target: str) -> None:
    """Take the links from `source` to `target` out of page_links (parallel arrays)."""
    row = await conn.fetchrow(
        "SELECT pl.* FROM page_links pl JOIN pages p ON p.id = pl.page_id WHERE p.url = $1", source
    )
    kept = [i for i, url in enumerate(row["target_urls"]) if url != target]
    await conn.execute(
        "UPDATE page_links SET target_urls = $2, anchor_texts = $3, nofollow = $4 "
        "WHERE page_id = $1",
        row["page_id"],
        [row["target_urls"][i] for i in kept],
        [row["anchor_texts"][i] for i in kept],
        [row["nofollow"][i] for i in kept],
    )


async def _orphans_agree(db: Database, conn: asyncpg.Connection) -> set[str]:
    view = {r["url"] for r in await conn.fetch("SELECT url FROM orphan_pages")}
    data = await report_queries.gather(db, None, None)
    table = _table(data, "orphan_pages")
    assert {str(r[0]) for r in table.rows} == view and table.total == len(view)
    return view


async def test_orphan_pages_are_the_views_rows(crawled, db_url: str) -> None:
    """The report's own query for orphans gives the view's rows: pages nothing else links
    to, directly or through a redirect, with links to themselves not counting."""
    db, base, _ = crawled
    conn = await asyncpg.connect(_plain(db_url))
    try:
        assert await _orphans_agree(db, conn) == set()
        await _drop_links(conn, base + "/", base + "/a.html?x=1")  # linked from / only
        assert await _orphans_agree(db, conn) == {base + "/a.html?x=1"}
        # /target.html is linked only through /moved (a redirect), from / alone.
        await _drop_links(conn, base + "/", base + "/moved")
        assert await _orphans_agree(db, conn) == {base + "/a.html?x=1", base + "/target.html"}
        # A page's links to itself, directly or through a redirect to it, do not count.
        await conn.execute(
            "UPDATE page_links SET target_urls = ARRAY[$2, $3], anchor_texts = ARRAY['', ''], "
            "nofollow = ARRAY[false, false] "
            "WHERE page_id = (SELECT id FROM pages WHERE url = $1)",
            base + "/target.html",
            base + "/target.html",
            base + "/moved",
        )
        assert await _orphans_agree(db, conn) == {base + "/a.html?x=1", base + "/target.html"}
    finally:
        await conn.close()
