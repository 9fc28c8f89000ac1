"""The batched page write (crawler.db.writer): a record the server refuses fails alone."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime

import asyncpg
import pytest

from crawler.db import store
from crawler.db.database import Database
from crawler.db.store import PgStore
from crawler.parse import parse_html
from crawler.records import CrawlTask, FetchResult, PageRecord
from tests.sql import plain_url

pytestmark = pytest.mark.db

OWNER = "test-owner"
REFUSE_POISON = """
CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.url LIKE '%poison%' THEN RAISE EXCEPTION 'poisoned page'; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_poison BEFORE INSERT ON pages
FOR EACH ROW EXECUTE FUNCTION refuse_poison();
"""


def _record(fid: int, url: str) -> PageRecord:
    body = f"<html><title>{url}</title><a href='/next'>next</a></html>".encode()
    fetch = FetchResult(url, url, 200, "text/html", (), body, "utf-8", 3)
    digest = hashlib.blake2b(body, digest_size=16).hexdigest()
    return PageRecord(CrawlTask(fid, url, 1), fetch, parse_html(body.decode(), url), digest)


async def test_a_refused_record_fails_alone_and_its_batch_is_stored(db_url: str) -> None:
    urls = [f"https://site.example/{name}" for name in ("a", "b", "poison", "c", "d")]
    conn = await asyncpg.connect(plain_url(db_url))
    db = Database(db_url)
    try:
        await conn.execute(REFUSE_POISON)
        crawl = await conn.fetchval("INSERT INTO crawls (name) VALUES ('c') RETURNING id")
        run = await conn.fetchval(
            "INSERT INTO crawl_runs (crawl_id) VALUES ($1) RETURNING id", crawl
        )
        fids = [
            await conn.fetchval(
                "INSERT INTO frontier (run_id, url, state, lease_owner) "
                "VALUES ($1, $2, 'leased', $3) RETURNING id",
                run,
                url,
                OWNER,
            )
            for url in urls
        ]
        sink = PgStore(db, crawl, run, OWNER)
        try:
            # Handed over together, before the writer runs: one batch.
            results = await asyncio.gather(
                *(sink.complete(_record(fid, url)) for fid, url in zip(fids, urls, strict=True)),
                return_exceptions=True,
            )
        finally:
            await sink.close()
        assert sink.writer.batches == len(urls) - 1  # after the refused batch, each record alone
        refused = [url for url, r in zip(urls, results, strict=True) if isinstance(r, Exception)]
        assert refused == ["https://site.example/poison"]
        assert "poisoned page" in str(results[2])
        stored = await conn.fetch("SELECT url FROM pages ORDER BY url")
        assert [r["url"] for r in stored] == sorted(set(urls) - {"https://site.example/poison"})
    finally:
        await db.dispose()
        await conn.close()


async def _run_with_rows(conn: asyncpg.Connection, rows: dict[str, str]) -> tuple[int, int]:
    """A crawl and a run whose frontier holds `rows` (url: state)."""
    crawl = await conn.fetchval("INSERT INTO crawls (name) VALUES ('c') RETURNING id")
    run = await conn.fetchval("INSERT INTO crawl_runs (crawl_id) VALUES ($1) RETURNING id", crawl)
    for url, state in rows.items():
        await conn.execute(
            "INSERT INTO frontier (run_id, url, state, lease_owner) VALUES ($1, $2, $3, $4)",
            run,
            url,
            state,
            OWNER if state == "leased" else None,
        )
    return crawl, run


@pytest.mark.parametrize("chunk", [1_000, 2])
async def test_sitemap_entries_queue_new_urls_and_date_queued_ones(
    db_url: str, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New URLs are queued with their lastmod; a queued row takes the sitemap's lastmod;
    rows being crawled or done keep theirs. In statements of LISTED_CHUNK entries."""
    monkeypatch.setattr(store, "LISTED_CHUNK", chunk)
    site = "https://site.example/"
    conn = await asyncpg.connect(plain_url(db_url))
    db = Database(db_url)
    try:
        crawl, run = await _run_with_rows(
            conn, {site + "queued": "queued", site + "leased": "leased", site + "done": "done"}
        )
        day = datetime(2026, 11, 1, tzinfo=UTC)
        entries = [(site + name, day) for name in ("new", "queued", "leased", "done")]
        sink = PgStore(db, crawl, run, OWNER)
        changed = await sink.enqueue_listed([*entries, (site + "undated", None)], 1)
        rows = await conn.fetch("SELECT url, depth, lastmod FROM frontier ORDER BY url")
    finally:
        await db.dispose()
        await conn.close()
    assert changed == 3  # two new rows, one dated
    assert {r["url"].removeprefix(site): r["lastmod"] for r in rows} == {
        "done": None,
        "leased": None,
        "new": day,
        "queued": day,
        "undated": None,
    }
    assert {r["url"].removeprefix(site): r["depth"] for r in rows}["new"] == 1


async def test_sitemap_entries_and_a_page_write_never_wait_on_each_other(db_url: str) -> None:
    """A page write marks a listed URL done, then queues a link that the sitemap lists too;
    meanwhile the sitemap's entries are queued. Neither waits for the other (an upsert of
    the entries deadlocked with such a write: a second's standstill, then an error)."""
    site = "https://site.example/"
    setup = await asyncpg.connect(plain_url(db_url))
    writer = await asyncpg.connect(plain_url(db_url))
    db = Database(db_url)
    try:
        crawl, run = await _run_with_rows(setup, {site + "b": "leased"})
        day = datetime(2026, 11, 1, tzinfo=UTC)
        sink = PgStore(db, crawl, run, OWNER)
        async with writer.transaction():
            await writer.execute(
                "UPDATE frontier SET state = 'done' WHERE run_id = $1 AND url = $2", run, site + "b"
            )
            listing = asyncio.create_task(
                sink.enqueue_listed([(site + "a", day), (site + "b", day)], 1)
            )
            await asyncio.wait_for(asyncio.shield(listing), 5)
            await asyncio.wait_for(
                writer.execute(
                    "INSERT INTO frontier (run_id, url, depth) VALUES ($1, $2, 2) "
                    "ON CONFLICT (run_id, url) DO NOTHING",
                    run,
                    site + "a",
                ),
                0.5,
            )
        assert listing.result() == 1
        rows = await setup.fetch("SELECT url, state, depth FROM frontier ORDER BY url")
    finally:
        await db.dispose()
        await writer.close()
        await setup.close()
    assert [tuple(r) for r in rows] == [(site + "a", "queued", 1), (site + "b", "done", 0)]


async def _leased(conn: asyncpg.Connection, run: int, url: str) -> CrawlTask:
    row = await conn.fetchrow(
        "UPDATE frontier SET attempts = attempts + 1 WHERE run_id = $1 AND url = $2 "
        "RETURNING id, attempts",
        run,
        url,
    )
    return CrawlTask(row["id"], url, 0, row["attempts"])


async def _frontier(conn: asyncpg.Connection) -> dict[str, tuple[str, int, bool]]:
    rows = await conn.fetch(
        "SELECT url, state, attempts, not_before > now() AS later FROM frontier ORDER BY url"
    )
    return {r["url"]: (r["state"], r["attempts"], bool(r["later"])) for r in rows}


async def test_retry_later_records_the_attempt_and_queues_the_task_for_later(
    db_url: str,
) -> None:
    site = "https://site.example/"
    conn = await asyncpg.connect(plain_url(db_url))
    db = Database(db_url)
    try:
        crawl, run = await _run_with_rows(conn, {site + "a": "leased", site + "b": "queued"})
        task = await _leased(conn, run, site + "a")
        busy = FetchResult(task.url, task.url, 503, "text/html", error_kind=None, retryable=True)
        sink = PgStore(db, crawl, run, OWNER)
        await sink.retry_later(task, busy, 30.0)
        stale = await _leased(conn, run, site + "b")  # not leased: a lease lost meanwhile
        await sink.retry_later(stale, busy, 30.0)
        fetches = await conn.fetch("SELECT url, status FROM fetches")
        rows = await _frontier(conn)
    finally:
        await db.dispose()
        await conn.close()
    assert [(r["url"], r["status"]) for r in fetches] == [(site + "a", 503)]
    assert rows[site + "a"] == ("queued", 1, True)
    assert rows[site + "b"] == ("queued", 1, False)  # untouched


async def test_postpone_gives_the_task_back_and_the_attempt_does_not_count(db_url: str) -> None:
    site = "https://site.example/"
    conn = await asyncpg.connect(plain_url(db_url))
    db = Database(db_url)
    try:
        crawl, run = await _run_with_rows(conn, {site + "a": "leased"})
        task = await _leased(conn, run, site + "a")
        await PgStore(db, crawl, run, OWNER).postpone(task, 60.0)
        rows = await _frontier(conn)
        recorded = await conn.fetchval("SELECT count(*) FROM fetches")
    finally:
        await db.dispose()
        await conn.close()
    assert rows[site + "a"] == ("queued", 0, True)
    assert recorded == 0


async def test_skip_marks_the_task_done_and_queues_only_new_links(db_url: str) -> None:
    site = "https://site.example/"
    conn = await asyncpg.connect(plain_url(db_url))
    db = Database(db_url)
    try:
        crawl, run = await _run_with_rows(conn, {site + "a": "leased", site + "known": "done"})
        task = await _leased(conn, run, site + "a")
        sink = PgStore(db, crawl, run, OWNER)
        queued = await sink.skip(task, (site + "new", site + "known", site + "new"), 1)
        again = await sink.skip(task, (site + "other",), 1)  # done already: not ours any more
        rows = await _frontier(conn)
    finally:
        await db.dispose()
        await conn.close()
    assert (queued, again) == (1, -1)
    assert {url: state for url, (state, _, _) in rows.items()} == {
        site + "a": "done",
        site + "known": "done",
        site + "new": "queued",
    }


async def test_stored_links_are_the_pages_followable_links(db_url: str) -> None:
    site = "https://site.example/"
    conn = await asyncpg.connect(plain_url(db_url))
    db = Database(db_url)
    try:
        crawl, run = await _run_with_rows(conn, {site + "p": "leased"})
        task = await _leased(conn, run, site + "p")
        body = b"<a href='/x'>x</a><a rel=nofollow href='/y'>y</a>"
        fetch = FetchResult(task.url, task.url, 200, "text/html", (), body, "utf-8")
        page = parse_html(body.decode(), task.url)
        sink = PgStore(db, crawl, run, OWNER)
        try:
            assert await sink.complete(PageRecord(task, fetch, page, "h")) == 0
        finally:
            await sink.close()
        links = await sink.stored_links(task.url)
        unknown = await sink.stored_links(site + "never")
    finally:
        await db.dispose()
        await conn.close()
    assert links == [(site + "x", False), (site + "y", True)]
    assert unknown == []
