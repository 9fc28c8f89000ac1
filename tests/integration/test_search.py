"""Full-text search (`crawler.db.search`) on a small crawled site: ranking by field weight,
per-language configurations, lazy indexing, gone pages, hostile queries; and the CLI."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp import web

from crawler.db import search
from crawler.db.database import Database
from crawler.errors import ConfigError
from crawler.run import crawl
from tests.processes import crawler_cli
from tests.site import serve_app
from tests.speed import fast_settings

pytestmark = pytest.mark.db

CHILD_TIMEOUT = 60.0
FILLER = " ".join(["storage", "table", "index", "rows", "disk", "query", "server"] * 30)
PAGES = {
    "/": ("Database notes", "en", "<h1>Notes</h1><p>Start here.</p>"),
    # Titled about vacuum, the word once more in the text.
    "/vacuum": ("VACUUM and autovacuum", "en", f"<p>{FILLER} Run vacuum nightly.</p>"),
    # Only mentions vacuum in its text.
    "/mentions": ("Storage layout", "en", f"<p>{FILLER} Dead rows wait for vacuum.</p>"),
    # Mentions it in its h1 and description.
    "/h1": ("Maintenance", "en-GB", f"<h1>Vacuum tuning</h1><p>{FILLER}</p>"),
    "/haeuser": ("Über Häuser", "de-AT", "<p>Die Häuser stehen am See.</p>"),
    "/plain": ("Xyzzy", None, "<p>plugh xyzzy words without a language</p>"),
}


def _html(title: str, lang: str | None, body: str) -> str:
    links = "".join(f'<a href="{path}">{path}</a> ' for path in PAGES)
    lang_attr = f' lang="{lang}"' if lang else ""
    return f"<html{lang_attr}><head><title>{title}</title></head><body>{body}{links}</body></html>"


@pytest.fixture
async def site() -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path == "/robots.txt":
            return web.Response(text="", content_type="text/plain")
        if request.path not in PAGES:
            return web.Response(status=404)
        return web.Response(text=_html(*PAGES[request.path]), content_type="text/html")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    async with serve_app(app) as base:
        yield base


@pytest.fixture
async def db(db_url: str, site: str) -> AsyncIterator[Database]:
    await crawl(fast_settings({"seeds": (site + "/",), "database_url": db_url, "name": "s"}))
    database = Database(db_url)
    try:
        yield database
    finally:
        await database.dispose()


def _paths(hits: list[search.Hit], base: str) -> list[str]:
    return [hit.url.removeprefix(base) for hit in hits]


async def test_title_ranks_above_h1_above_text(db: Database, site: str) -> None:
    indexed, hits = await search.search(db, "s", "vacuum")
    assert indexed.indexed == len(PAGES)
    assert _paths(hits, site) == ["/vacuum", "/h1", "/mentions"]
    assert hits[0].rank > hits[1].rank > hits[2].rank > 0
    assert search.MARK_START + "vacuum" + search.MARK_END in hits[2].snippet.lower()
    assert hits[0].title == "VACUUM and autovacuum"


async def test_each_page_is_searched_in_its_language(db: Database, site: str) -> None:
    # German stemming: "Haus" finds "Häuser" on the de-AT page.
    assert _paths((await search.search(db, "s", "Haus"))[1], site) == ["/haeuser"]
    # English stemming on the en pages: "vacuumed" is "vacuum".
    assert "/vacuum" in _paths((await search.search(db, "s", "vacuumed"))[1], site)
    # No lang: the simple configuration.
    assert _paths((await search.search(db, "s", "xyzzy"))[1], site) == ["/plain"]


@pytest.mark.parametrize(
    "query",
    ["", "   ", "'); DROP TABLE pages; --", '"unbalanced', "a & | ! :* ( <-> )", "the", "-vacuum"],
)
async def test_any_input_is_a_query(db: Database, query: str) -> None:
    _indexed, hits = await search.search(db, "s", query)
    assert isinstance(hits, list)
    assert _indexed.crawl == "s"


async def test_search_syntax(db: Database, site: str) -> None:
    both = await search.search(db, "s", "vacuum -nightly")
    assert "/vacuum" not in _paths(both[1], site) and "/mentions" in _paths(both[1], site)
    either = await search.search(db, "s", "xyzzy or häuser")
    assert set(_paths(either[1], site)) == {"/plain", "/haeuser"}
    phrase = await search.search(db, "s", '"dead rows"')
    assert _paths(phrase[1], site) == ["/mentions"]
    assert len((await search.search(db, "s", "vacuum", limit=1))[1]) == 1


async def test_index_is_lazy_follows_changes_and_drops_gone_pages(
    db: Database, db_url: str, site: str
) -> None:
    assert (await search.search(db, "s", "vacuum"))[0].indexed == len(PAGES)
    assert (await search.search(db, "s", "vacuum"))[0].indexed == 0  # nothing new
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        # New content on one page (as a refetch that changed it writes it), one page gone.
        await conn.execute(
            "UPDATE pages SET text = 'now about zeppelins', content_hash = 'new' WHERE url = $1",
            site + "/plain",
        )
        await conn.execute("UPDATE pages SET gone_at = now() WHERE url = $1", site + "/vacuum")
        indexed, hits = await search.search(db, "s", "zeppelins")  # simple: no stemming
        assert (indexed.indexed, indexed.dropped) == (1, 1)
        assert _paths(hits, site) == ["/plain"]
        assert "/vacuum" not in _paths((await search.search(db, "s", "vacuum"))[1], site)
        # A deleted page takes its vector with it; a rebuild indexes every page again.
        await conn.execute("DELETE FROM pages WHERE url = $1", site + "/mentions")
        assert await conn.fetchval("SELECT count(*) FROM page_search") == len(PAGES) - 2
        rebuilt = await search.refresh_all(db, "s", rebuild=True)
        assert [r.indexed for r in rebuilt] == [len(PAGES) - 2]
    finally:
        await conn.close()


async def test_unknown_crawl_is_a_config_error(db: Database) -> None:
    with pytest.raises(ConfigError, match="there is no crawl named 'nope'"):
        await search.search(db, "nope", "x")


async def _cli(*args: str, db_url: str) -> tuple[int, str, str]:
    done = await crawler_cli(*args, db_url=db_url, seconds=CHILD_TIMEOUT)
    return done.code, done.out, done.err


async def test_cli_search_and_db_index(db: Database, db_url: str, site: str) -> None:
    code, out, err = await _cli("db", "index", "--name", "s", db_url=db_url)
    assert code == 0, err
    assert f"crawl 's': indexed {len(PAGES)} pages" in err

    code, out, err = await _cli("search", "vacuum", "--name", "s", "--json", db_url=db_url)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["url"].removeprefix(site) for r in rows] == ["/vacuum", "/h1", "/mentions"]
    assert set(rows[0]) == {"rank", "url", "title", "snippet"}
    assert search.MARK_START not in rows[2]["snippet"] and "vacuum" in rows[2]["snippet"]

    code, out, err = await _cli("search", "vacuum", "--limit", "1", db_url=db_url)
    assert code == 0, err
    assert site + "/vacuum\n" in out and "VACUUM and autovacuum" in out and site + "/h1" not in out

    code, out, err = await _cli("search", "nothing-matches-this", db_url=db_url)
    assert (code, out) == (0, "") and "no page of crawl 's' matches" in err

    code, out, err = await _cli("search", "x", "--name", "nope", db_url=db_url)
    assert code == 2 and err.strip() == "crawler: there is no crawl named 'nope'"
    code, out, err = await _cli("search", "x", "--limit", "0", db_url=db_url)
    assert code == 2 and "Traceback" not in err
