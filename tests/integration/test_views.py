"""The views of migration 0002 on a crawled fixture site: documented columns, sensible rows,
the examples of README.md, and the report operations that read them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web

from crawler.db import migrate, reports
from crawler.db.database import Database
from crawler.errors import ConfigError
from crawler.run import crawl
from tests.site import EXPECTED_HTML, serve_app, serve_site
from tests.speed import fast_settings
from tests.sql import plain_url

pytestmark = pytest.mark.db

README = Path(__file__).parents[2] / "README.md"
START, END = "<!-- sql-examples -->", "<!-- /sql-examples -->"
VIEWS = (
    "broken_links",
    "redirects",
    "duplicate_content",
    "missing_metadata",
    "bad_canonicals",
    "slowest_pages",
    "orphan_pages",
    "run_changes",
)
# Pages of tests/site.py without <meta name=description> (all of them have a title).
WITHOUT_DESCRIPTION = EXPECTED_HTML - {"/"}


def documented_columns() -> dict[str, list[str]]:
    """View name -> the column names of its table in README's "Views" section, in order."""
    readme = README.read_text(encoding="utf-8")
    text = readme[readme.index("\n## Views\n") : readme.index("\n## SQL examples\n")]
    found: dict[str, list[str]] = {}
    for section in re.split(r"^### ", text, flags=re.MULTILINE)[1:]:
        name = re.match(r"`(\w+)`", section)
        assert name, f"a view heading without a `name`: {section[:40]!r}"
        found[name.group(1)] = re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE)
    return found


def doc_examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    assert START in text and END in text
    block = text[text.index(START) : text.index(END)]
    return [m.strip() for m in re.findall(r"```sql\n(.*?)```", block, re.DOTALL)]


@pytest.fixture
async def site() -> AsyncIterator[str]:
    async with serve_site() as base:
        yield base


async def _crawl(db_url: str, base: str, name: str = "site", **more: object) -> int:
    flags = {"seeds": (base + "/",), "database_url": db_url, "name": name, **more}
    return (await crawl(fast_settings(flags))).run_id


@pytest.fixture
async def etag_site() -> AsyncIterator[str]:
    """Two linked pages that answer conditional requests with 304 Not Modified."""
    pages = {
        "/": '<html><head><title>Home</title></head><body><a href="/b">B</a></body></html>',
        "/b": '<html><head><title>B</title></head><body><a href="/">Home</a></body></html>',
    }

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path == "/robots.txt":
            return web.Response(text="", content_type="text/plain")
        if request.path not in pages:
            return web.Response(status=404)
        etag = f'"v1-{len(request.path)}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(
            text=pages[request.path], content_type="text/html", headers={"ETag": etag}
        )

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    async with serve_app(app) as base:
        yield base


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(plain_url(db_url))
    try:
        yield connection
    finally:
        await connection.close()


async def _unlink(conn: asyncpg.Connection, target: str) -> None:
    """Take every link to `target` out of the stored pages (page_links holds a page's links
    as parallel arrays)."""
    rows = await conn.fetch("SELECT * FROM page_links WHERE $1 = ANY(target_urls)", target)
    for row in rows:
        kept = [i for i, url in enumerate(row["target_urls"]) if url != target]
        await conn.execute(
            "UPDATE page_links SET target_urls = $2, anchor_texts = $3, nofollow = $4 "
            "WHERE page_id = $1",
            row["page_id"],
            [row["target_urls"][i] for i in kept],
            [row["anchor_texts"][i] for i in kept],
            [row["nofollow"][i] for i in kept],
        )


def _paths(rows: list[asyncpg.Record], column: str, base: str) -> set[str]:
    return {r[column].removeprefix(base) for r in rows}


async def test_every_view_has_its_documented_columns(db_url: str, conn: asyncpg.Connection):
    documented = documented_columns()
    assert set(documented) == set(VIEWS)
    for view in VIEWS:
        statement = await conn.prepare(f"SELECT * FROM {view}")
        assert [a.name for a in statement.get_attributes()] == documented[view], view


async def test_views_on_a_crawled_site(db_url: str, site: str, conn: asyncpg.Connection):
    run_id = await _crawl(db_url, site)

    broken = await conn.fetch("SELECT * FROM broken_links")
    assert {
        (r["source_url"].removeprefix(site), r["target_url"].removeprefix(site)) for r in broken
    } == {
        ("/", "/missing.html"),
        ("/b.html", "/missing.html"),
    }
    assert {(r["status"], r["error_kind"], r["run_id"]) for r in broken} == {
        (404, "http_status", run_id)
    }  # robots-disallowed /private/ is not broken

    redirects = await conn.fetch("SELECT * FROM redirects")
    assert [
        (r["from_url"].removeprefix(site), r["to_url"].removeprefix(site), r["hops"], r["status"])
        for r in redirects
    ] == [("/moved", "/target.html", 1, 200)]

    assert await conn.fetch("SELECT * FROM duplicate_content") == []

    missing = await conn.fetch("SELECT * FROM missing_metadata")
    assert _paths(missing, "url", site) == WITHOUT_DESCRIPTION
    assert all(r["missing_description"] and not r["missing_title"] for r in missing)

    slowest = await conn.fetch("SELECT * FROM slowest_pages ORDER BY elapsed_ms DESC")
    assert _paths(slowest, "url", site) == EXPECTED_HTML
    assert len(slowest) == len(EXPECTED_HTML)
    assert all(
        r["status"] == 200 and r["bytes"] > 0 and r["elapsed_ms"] is not None for r in slowest
    )

    # Every page is linked (/target.html through the /moved redirect).
    assert await conn.fetch("SELECT * FROM orphan_pages") == []

    changes = await conn.fetch("SELECT * FROM run_changes WHERE run_id = $1", run_id)
    assert _paths(changes, "url", site) == EXPECTED_HTML
    assert {r["outcome"] for r in changes} == {"new"}


async def test_a_second_crawl_finds_everything_unchanged(
    db_url: str, site: str, conn: asyncpg.Connection
):
    first = await _crawl(db_url, site)
    second = await _crawl(db_url, site)
    rows = await conn.fetch("SELECT run_id, url, outcome FROM run_changes ORDER BY run_id")
    by_run: dict[int, dict[str, str]] = {}
    for r in rows:
        by_run.setdefault(r["run_id"], {})[r["url"].removeprefix(site)] = r["outcome"]
    assert by_run[first] == dict.fromkeys(EXPECTED_HTML, "new")
    assert by_run[second] == dict.fromkeys(EXPECTED_HTML, "unchanged")
    # One redirect row per run; broken links and slowest pages name the latest run.
    assert await conn.fetchval("SELECT count(*) FROM redirects") == 2
    assert {r["run_id"] for r in await conn.fetch("SELECT run_id FROM broken_links")} == {second}
    assert {r["run_id"] for r in await conn.fetch("SELECT run_id FROM slowest_pages")} == {second}
    assert await conn.fetch("SELECT * FROM orphan_pages") == []


async def test_304_answers_are_unchanged_and_keep_their_links(
    db_url: str, etag_site: str, conn: asyncpg.Connection
):
    first = await _crawl(db_url, etag_site)
    second = await _crawl(db_url, etag_site)
    rows = await conn.fetch(
        "SELECT c.run_id, c.url, c.outcome, f.not_modified FROM run_changes c "
        "JOIN fetches f ON f.run_id = c.run_id AND f.url = c.url"
    )
    got = {
        (r["run_id"], r["url"].removeprefix(etag_site), r["outcome"], r["not_modified"])
        for r in rows
    }
    assert got == {
        (first, "/", "new", False),
        (first, "/b", "new", False),
        (second, "/", "unchanged", True),
        (second, "/b", "unchanged", True),
    }
    # A 304 says nothing about how long the page takes: the full fetch of run 1 stays.
    slowest = await conn.fetch("SELECT run_id, bytes FROM slowest_pages")
    assert len(slowest) == 2 and all(r["run_id"] == first and r["bytes"] > 0 for r in slowest)
    assert await conn.fetch("SELECT * FROM orphan_pages") == []


async def test_pages_skipped_as_not_due_still_link(
    db_url: str, site: str, conn: asyncpg.Connection
):
    await _crawl(db_url, site)
    second = await _crawl(db_url, site, revisit_after="1d")
    fetched = await conn.fetchval("SELECT count(*) FROM run_changes WHERE run_id = $1", second)
    assert fetched == 0  # every page was skipped: fetched too recently
    assert await conn.fetchval("SELECT count(*) FROM pages WHERE last_run_id = $1", second) == 0
    assert await conn.fetch("SELECT * FROM orphan_pages") == []


async def test_duplicates_orphans_and_gone_pages(db_url: str, site: str, conn: asyncpg.Connection):
    run_id = await _crawl(db_url, site)
    await _crawl(db_url, site, name="other")  # the same site again: no duplicates across crawls
    assert await conn.fetch("SELECT * FROM duplicate_content") == []
    crawl_id = await conn.fetchval("SELECT id FROM crawls WHERE name = 'site'")

    # Same content under two URLs.
    await conn.execute(
        "UPDATE pages SET content_hash = (SELECT content_hash FROM pages WHERE url = $1 "
        "AND crawl_id = $3) WHERE url = $2 AND crawl_id = $3",
        site + "/a.html",
        site + "/a.html?x=1",
        crawl_id,
    )
    dupes = await conn.fetch("SELECT * FROM duplicate_content")
    assert len(dupes) == 1
    assert dupes[0]["crawl_id"] == crawl_id
    assert dupes[0]["urls"] == [site + "/a.html", site + "/a.html?x=1"]
    assert dupes[0]["count"] == 2

    # A known page nothing links to, and a page whose only inlink is gone.
    await conn.execute(
        "INSERT INTO pages (crawl_id, url, status, title, last_run_id) "
        "VALUES ($1, $2, 200, 'Lonely', $3)",
        crawl_id,
        site + "/lonely.html",
        run_id,
    )
    await _unlink(conn, site + "/b.html")
    orphans = await conn.fetch("SELECT * FROM orphan_pages WHERE crawl_id = $1", crawl_id)
    assert _paths(orphans, "url", site) == {"/lonely.html", "/b.html"}

    # Gone pages are not current: no duplicates, metadata, orphans or broken links of theirs.
    await conn.execute(
        "UPDATE pages SET gone_at = now() WHERE crawl_id = $1 AND url = ANY($2::text[])",
        crawl_id,
        [site + "/a.html?x=1", site + "/lonely.html", site + "/"],
    )
    assert await conn.fetch("SELECT * FROM duplicate_content") == []
    current = "SELECT url FROM {} WHERE crawl_id = $1"
    missing = await conn.fetch(current.format("missing_metadata"), crawl_id)
    assert _paths(missing, "url", site) == WITHOUT_DESCRIPTION - {"/a.html?x=1"}
    orphans = await conn.fetch(current.format("orphan_pages"), crawl_id)
    # Only the gone home page linked /moved, the redirect to /target.html.
    assert _paths(orphans, "url", site) == {"/b.html", "/target.html"}
    broken = await conn.fetch("SELECT source_url FROM broken_links WHERE crawl_id = $1", crawl_id)
    assert _paths(broken, "source_url", site) == {"/b.html"}


@pytest.fixture
async def canonical_site() -> AsyncIterator[str]:
    """Pages whose canonicals go nowhere, and one page linking to a missing page three times."""
    robots = "User-agent: *\nDisallow: /private/\n"
    links = '<a href="/missing">one</a> <a href="/missing">two</a> <a href="/missing">three</a>'
    heads = {
        "/": '<link rel="canonical" href="/">',  # fine: not listed
        "/docs": '<link rel="canonical" href="file:///home/docs/build/html/docs.html">',
        "/js": '<link rel="canonical" href="javascript:void(0)">',
        "/old": '<link rel="canonical" href="/missing">',
        "/hidden": '<link rel="canonical" href="/private/p">',
        "/moving": '<link rel="canonical" href="/moved">',
        "/away": '<link rel="canonical" href="https://elsewhere.invalid/x">',  # never fetched
    }
    nav = "".join(f'<a href="{path}">{path}</a>' for path in [*heads, "/private/p", "/moved"])

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path == "/robots.txt":
            return web.Response(text=robots, content_type="text/plain")
        if request.path == "/moved":
            raise web.HTTPFound("/")
        if request.path not in heads:
            return web.Response(status=404)
        body = nav + (links if request.path == "/" else "")
        html = f"<html><head><title>t</title>{heads[request.path]}</head><body>{body}</body>"
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    async with serve_app(app) as base:
        yield base


async def test_bad_canonicals_and_repeated_broken_links(
    db_url: str, canonical_site: str, conn: asyncpg.Connection
):
    """Issue 21: a file:// canonical is stored and flagged (point 9); a page linking to one
    missing URL three times gives three rows told apart by position and text (point 11)."""
    base = canonical_site
    await _crawl(db_url, base)
    rows = await conn.fetch("SELECT * FROM bad_canonicals ORDER BY url")
    got = {
        (r["url"].removeprefix(base), r["canonical"].removeprefix(base), r["reason"]) for r in rows
    }
    assert got == {
        ("/docs", "file:///home/docs/build/html/docs.html", "not_http"),
        ("/js", "javascript:void(0)", "not_http"),
        ("/old", "/missing", "failed"),
        ("/hidden", "/private/p", "failed"),
        ("/moving", "/moved", "redirected"),
    }
    kinds = {r["url"].removeprefix(base): (r["status"], r["error_kind"]) for r in rows}
    assert kinds["/old"] == (404, "http_status")
    assert kinds["/hidden"][1] == "robots"
    assert kinds["/docs"] == (None, None)

    broken = await conn.fetch(
        "SELECT position, anchor_text FROM broken_links WHERE source_url = $1 ORDER BY position",
        base + "/",
    )
    assert [r["anchor_text"] for r in broken] == ["one", "two", "three"]
    assert len({r["position"] for r in broken}) == 3


async def test_the_documented_examples_run(db_url: str, site: str, conn: asyncpg.Connection):
    await _crawl(db_url, site)
    examples = doc_examples()
    assert len(examples) >= len(VIEWS)
    for view in VIEWS:
        assert any(view in sql for sql in examples), f"no example queries {view}"
    for sql in examples:
        await conn.fetch(sql)  # raises on an error


async def test_downgrade_drops_the_views_and_upgrade_restores_them(
    db_url: str, conn: asyncpg.Connection
):
    listed = "SELECT count(*) FROM pg_views WHERE schemaname = 'public' AND viewname = ANY($1)"
    assert await conn.fetchval(listed, list(VIEWS)) == len(VIEWS)
    await migrate.downgrade(db_url, "0001")
    assert await conn.fetchval(listed, list(VIEWS)) == 0
    await migrate.upgrade(db_url)
    assert await conn.fetchval(listed, list(VIEWS)) == len(VIEWS)


async def test_report_operations(db_url: str, site: str):
    first = await _crawl(db_url, site)
    second = await _crawl(db_url, site)
    db = Database(db_url)
    try:
        runs = await reports.list_runs(db, "site")
        assert [r.id for r in runs] == [first, second]
        assert (runs[0].new, runs[0].unchanged) == (len(EXPECTED_HTML), 0)
        assert (runs[1].new, runs[1].changed, runs[1].unchanged, runs[1].gone) == (
            0,
            0,
            len(EXPECTED_HTML),
            0,
        )
        assert all(r.status == "finished" and r.finished_at and r.errors == 2 for r in runs)
        assert [r.id for r in await reports.list_runs(db)] == [first, second]

        latest = await reports.changes(db)  # the only crawl, its latest run
        assert (latest.crawl, latest.run_id) == ("site", second)
        assert {u.removeprefix(site) for u in latest.unchanged} == EXPECTED_HTML
        as_json = latest.to_json()
        assert list(as_json) == ["crawl", "run_id", "new", "changed", "unchanged", "gone", "urls"]
        assert as_json["unchanged"] == len(EXPECTED_HTML)
        assert as_json["urls"]["unchanged"] == sorted(as_json["urls"]["unchanged"])

        earlier = await reports.changes(db, "site", first)
        assert {u.removeprefix(site) for u in earlier.new} == EXPECTED_HTML
        assert (await reports.changes(db, None, first)).crawl == "site"

        with pytest.raises(ConfigError, match="no crawl named 'nope'"):
            await reports.list_runs(db, "nope")
        with pytest.raises(ConfigError, match="no crawl named 'nope'"):
            await reports.changes(db, "nope")
        with pytest.raises(ConfigError, match="has no run 999"):
            await reports.changes(db, "site", 999)
        with pytest.raises(ConfigError, match="no run 999"):
            await reports.changes(db, None, 999)
    finally:
        await db.dispose()


async def test_the_default_crawl_is_the_most_recently_run(db_url: str, site: str):
    await _crawl(db_url, site, name="older")
    await _crawl(db_url, site, name="newer")
    db = Database(db_url)
    try:
        assert (await reports.changes(db)).crawl == "newer"
        await _crawl(db_url, site, name="older")
        assert (await reports.changes(db)).crawl == "older"
    finally:
        await db.dispose()


async def test_reports_on_an_empty_database(db_url: str):
    db = Database(db_url)
    try:
        assert await reports.list_runs(db) == []
        with pytest.raises(ConfigError, match="no crawl"):
            await reports.changes(db)
    finally:
        await db.dispose()
