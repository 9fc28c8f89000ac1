"""A whole crawl in-process: real local HTTP site, real PostgreSQL."""

from __future__ import annotations

import asyncio
import gc

import asyncpg
import pytest
from aiohttp import web

from crawler.db import writer
from crawler.errors import DatabaseRefused
from crawler.run import crawl
from tests.site import EXPECTED_HTML, EXPECTED_TITLES, serve_app, serve_site
from tests.speed import fast_settings
from tests.sql import plain_url

pytestmark = pytest.mark.db


async def test_crawl_stores_pages_links_and_fetches(db_url: str) -> None:
    async with serve_site() as base:
        settings = fast_settings({"seeds": (base + "/",), "database_url": db_url, "concurrency": 4})
        summary = await crawl(settings)
    assert summary.status == "finished"
    assert summary.exit_code == 0
    conn = await asyncpg.connect(plain_url(db_url))
    try:
        pages = {
            r["url"].removeprefix(base): r
            for r in await conn.fetch("SELECT url, status, title, content_type, text FROM pages")
        }
        assert set(pages) == EXPECTED_HTML
        for path, title in EXPECTED_TITLES.items():
            assert pages[path]["title"] == title
            assert pages[path]["status"] == 200
            assert pages[path]["content_type"].startswith("text/html")
        assert "var x" not in pages["/"]["text"]
        assert "Hello world" in pages["/"]["text"]

        home_links = await conn.fetch(
            "SELECT target_url, anchor_text, nofollow FROM links JOIN pages ON pages.id = page_id "
            "WHERE pages.url = $1",
            base + "/",
        )
        targets = {r["target_url"] for r in home_links}
        assert base + "/b.html" in targets  # fragment dropped
        assert "https://elsewhere.example/" in targets  # external links are stored
        assert not any(t.startswith(("mailto:", "javascript:")) for t in targets)
        nofollow = {r["target_url"] for r in home_links if r["nofollow"]}
        assert nofollow == {base + "/nofollow.html"}

        b_links = await conn.fetch(
            "SELECT target_url FROM links JOIN pages ON pages.id = page_id WHERE pages.url = $1",
            base + "/b.html",
        )
        assert base + "/sub/c.html" in {r["target_url"] for r in b_links}  # <base href>

        fetches = await conn.fetch("SELECT url, status, error_kind, content_type FROM fetches")
        by_url = {r["url"].removeprefix(base): r for r in fetches}
        assert by_url["/missing.html"]["status"] == 404
        assert by_url["/missing.html"]["error_kind"] == "http_status"
        assert by_url["/file.pdf"]["content_type"] == "application/pdf"
        assert by_url["/private/secret.html"]["error_kind"] == "robots"
        assert by_url["/moved"]["status"] == 200  # followed, then stored under the target
        assert "https://elsewhere.example/" not in by_url
        # Every URL fetched once.
        assert len(fetches) == len(by_url)
        run = await conn.fetchrow("SELECT status, pages, errors FROM crawl_runs")
        assert run["status"] == "finished"
    finally:
        await conn.close()


async def test_second_crawl_is_a_new_run_and_updates_pages(db_url: str) -> None:
    async with serve_site() as base:
        settings = fast_settings({"seeds": (base + "/",), "database_url": db_url})
        first = await crawl(settings)
        second = await crawl(settings)
    assert second.run_id != first.run_id
    assert not second.resumed
    conn = await asyncpg.connect(plain_url(db_url))
    try:
        assert await conn.fetchval("SELECT count(*) FROM pages") == len(EXPECTED_HTML)
        assert await conn.fetchval("SELECT count(DISTINCT run_id) FROM fetches") == 2
        # Links are replaced, not duplicated, on refetch.
        dupes = await conn.fetchval(
            "SELECT count(*) FROM (SELECT page_id, target_url, anchor_text FROM links "
            "GROUP BY 1, 2, 3 HAVING count(*) > 1) d"
        )
        assert dupes == 0
    finally:
        await conn.close()


async def test_max_pages_and_max_depth(db_url: str) -> None:
    async with serve_site() as base:
        settings = fast_settings(
            {"seeds": (base + "/",), "database_url": db_url, "max_pages": 3, "concurrency": 1}
        )
        summary = await crawl(settings)
        assert summary.stats.fetched == 3
        shallow = fast_settings(
            {"seeds": (base + "/",), "database_url": db_url, "max_depth": 0, "name": "shallow"}
        )
        summary = await crawl(shallow)
        assert summary.stats.fetched == 1


async def test_include_exclude_and_allow_host(db_url: str) -> None:
    async with serve_site() as base:
        settings = fast_settings(
            {
                "seeds": (base + "/",),
                "database_url": db_url,
                "exclude": (r"/sub/",),
                "include": (r"\.html|/$",),
            }
        )
        await crawl(settings)
    conn = await asyncpg.connect(plain_url(db_url))
    try:
        urls = {r["url"].removeprefix(base) for r in await conn.fetch("SELECT url FROM fetches")}
    finally:
        await conn.close()
    assert "/sub/c.html" not in urls
    assert "/moved" not in urls and "/file.pdf" not in urls
    assert "/a.html" in urls


LINK_SHAPES = {
    # One link, no text: its anchor is stored as '' (the links of a page travel as lines).
    "/": '<title>one</title><a href="/two.html"><img src="x.png" alt=""></a>',
    # Links in document order, texts with markup and blanks, one nofollow.
    "/two.html": (
        "<title>two</title>"
        '<a href="/three.html">  Third\n <b>page</b> </a>'
        '<a href="/one.html#top" rel="NoFollow">back</a>'
        '<a href="/three.html"></a>'
    ),
    "/three.html": "<title>three</title><p>no links at all</p>",
}


async def _link_shapes(request: web.Request) -> web.Response:
    body = LINK_SHAPES.get(request.path)
    if body is None:
        return web.Response(status=404, text="no")
    return web.Response(text=body, content_type="text/html")


async def test_links_of_every_shape_are_stored_in_order(db_url: str) -> None:
    app = web.Application()
    app.router.add_get("/{tail:.*}", _link_shapes)
    async with serve_app(app) as base:
        await crawl(fast_settings({"seeds": (base + "/",), "database_url": db_url}))
    conn = await asyncpg.connect(plain_url(db_url))
    try:
        rows = await conn.fetch(
            "SELECT p.url, l.position, l.target_url, l.anchor_text, l.nofollow FROM links l "
            "JOIN pages p ON p.id = l.page_id ORDER BY p.url, l.position"
        )
        links = [(r["url"].removeprefix(base), *r[1:]) for r in rows]
        assert links == [
            ("/", 1, base + "/two.html", "", False),
            ("/two.html", 1, base + "/three.html", "Third page", False),
            ("/two.html", 2, base + "/one.html", "back", True),
            ("/two.html", 3, base + "/three.html", "", False),
        ]
        assert await conn.fetchval("SELECT count(*) FROM pages") == 3

        # Deleting a page deletes its links (a trigger: links.page_id has no foreign key) ...
        await conn.execute("DELETE FROM pages WHERE url = $1", base + "/")
        assert await conn.fetchval("SELECT count(*) FROM links") == 3
        # ... and so does deleting the crawl, through the pages it cascades to.
        await conn.execute("DELETE FROM crawls")
        assert await conn.fetchval("SELECT count(*) FROM pages") == 0
        assert await conn.fetchval("SELECT count(*) FROM links") == 0
    finally:
        await conn.close()


async def test_a_run_analyzes_its_tables_once_it_has_written_enough_pages(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Statistics for the planner's cached plans (crawler.db.writer): once, early in a run."""
    monkeypatch.setattr(writer, "ANALYZE_AFTER", 2)
    async with serve_site() as base:
        settings = fast_settings({"seeds": (base + "/",), "database_url": db_url, "concurrency": 2})
        summary = await crawl(settings)
    assert summary.status == "finished"
    conn = await asyncpg.connect(plain_url(db_url))
    try:
        counts = await conn.fetch(
            "SELECT relname, analyze_count FROM pg_stat_user_tables "
            "WHERE relname IN ('pages', 'frontier', 'page_links', 'fetches')"
        )
    finally:
        await conn.close()
    assert {r["relname"]: r["analyze_count"] for r in counts} == {
        "pages": 1,
        "frontier": 1,
        "page_links": 1,
        "fetches": 1,
    }


async def test_the_crawl_gives_the_garbage_collector_back_as_it_was(db_url: str) -> None:
    """The pool freezes start-up objects and collects the young generation less often while
    it crawls (crawler.pool); the process after a crawl is as before it."""
    before = gc.get_threshold()
    async with serve_site() as base:
        await crawl(fast_settings({"seeds": (base + "/",), "database_url": db_url}))
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


async def test_urls_of_the_sitemap_named_in_robots_txt_are_crawled(db_url: str) -> None:
    """robots.txt names a sitemap: its URLs are crawled, one that nothing links to too."""

    async def robots(request: web.Request) -> web.Response:
        return web.Response(text=f"User-agent: *\nSitemap: {request.url.origin()}/map.xml\n")

    async def sitemap(request: web.Request) -> web.Response:
        origin = request.url.origin()
        urls = "".join(f"<url><loc>{origin}{p}</loc></url>" for p in ("/a", "/orphan"))
        return web.Response(
            text=f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>',
            content_type="application/xml",
        )

    async def page(request: web.Request) -> web.Response:
        return web.Response(text='<a href="/a">a</a>', content_type="text/html")

    app = web.Application()
    app.router.add_get("/robots.txt", robots)
    app.router.add_get("/map.xml", sitemap)
    app.router.add_get("/{tail:.*}", page)
    async with serve_app(app) as base:
        summary = await crawl(fast_settings({"seeds": (base + "/",), "database_url": db_url}))
    assert summary.status == "finished"
    conn = await asyncpg.connect(plain_url(db_url))
    try:
        urls = {r["url"] for r in await conn.fetch("SELECT url FROM pages")}
    finally:
        await conn.close()
    assert urls == {base + "/", base + "/a", base + "/orphan"}


async def test_a_refetch_replaces_the_links_also_with_none_or_one_without_text(
    db_url: str,
) -> None:
    """page_links holds a page's links as arrays: each fetch's links replace the last ones,
    whether the page now has several, none, or one whose text is empty."""
    home = {"body": ""}

    async def handler(request: web.Request) -> web.Response:
        if request.path == "/":
            return web.Response(text=home["body"], content_type="text/html")
        return web.Response(text="<html><title>leaf</title></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    versions = [
        '<a href="/a">A</a> <a href="/b" rel="nofollow">B</a> <a href="/a">again</a>',
        "<p>no links now</p>",
        '<a href="/b"><img alt=""></a>',
    ]
    seen = []
    async with serve_app(app) as base:
        settings = fast_settings({"seeds": (base + "/",), "database_url": db_url})
        conn = await asyncpg.connect(plain_url(db_url))
        try:
            for body in versions:
                home["body"] = f"<html><body>{body}</body></html>"
                await crawl(settings)
                rows = await conn.fetch(
                    "SELECT l.position, l.target_url, l.anchor_text, l.nofollow FROM links l "
                    "JOIN pages p ON p.id = l.page_id WHERE p.url = $1 ORDER BY l.position",
                    base + "/",
                )
                seen.append([(r[0], r[1].removeprefix(base), r[2], r[3]) for r in rows])
                ragged = await conn.fetchval(
                    "SELECT count(*) FROM page_links WHERE cardinality(target_urls) "
                    "<> cardinality(anchor_texts) OR cardinality(target_urls) "
                    "<> cardinality(nofollow)"
                )
                assert ragged == 0  # the arrays run in step, element for element
        finally:
            await conn.close()
    assert seen == [
        [(1, "/a", "A", False), (2, "/b", "B", True), (3, "/a", "again", False)],
        [],
        [(1, "/b", "", False)],
    ]


async def test_a_database_that_refuses_every_write_ends_the_run_with_an_error(
    db_url: str,
) -> None:
    """Not a hang: when no page, not even the record of a failure, can be written (here every
    insert into fetches is refused, as for a user without INSERT rights; the schema itself is
    whole, so the check at start passes), the run stops, says why, and stays resumable."""
    conn = await asyncpg.connect(plain_url(db_url))
    try:
        await conn.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'permission denied for table fetches' USING ERRCODE = '42501'; "
            "END $$"
        )
        await conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON fetches "
            "FOR EACH STATEMENT EXECUTE FUNCTION refuse()"
        )
    finally:
        await conn.close()
    async with serve_site() as base:
        settings = fast_settings({"seeds": (base + "/",), "database_url": db_url})
        with pytest.raises(DatabaseRefused, match="refused") as caught:
            async with asyncio.timeout(60):
                await crawl(settings)
    assert "permission denied for table fetches" in str(caught.value)
    assert "resumable" in str(caught.value)
