"""The batched page write (crawler.db.store): a record the server refuses fails alone."""

from __future__ import annotations

import asyncio
import hashlib

import asyncpg
import pytest

from crawler.db.database import Database
from crawler.db.store import PgPageSink
from crawler.parse import parse_html
from crawler.records import CrawlTask, FetchResult, PageRecord

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
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
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
        sink = PgPageSink(db, crawl, run, OWNER)
        try:
            # Handed over together, before the writer runs: one batch.
            results = await asyncio.gather(
                *(sink.complete(_record(fid, url)) for fid, url in zip(fids, urls, strict=True)),
                return_exceptions=True,
            )
        finally:
            await sink.close()
        assert sink.batches == len(urls) - 1  # after the refused batch, each record alone
        refused = [url for url, r in zip(urls, results, strict=True) if isinstance(r, Exception)]
        assert refused == ["https://site.example/poison"]
        assert "poisoned page" in str(results[2])
        stored = await conn.fetch("SELECT url FROM pages ORDER BY url")
        assert [r["url"] for r in stored] == sorted(set(urls) - {"https://site.example/poison"})
    finally:
        await db.dispose()
        await conn.close()
