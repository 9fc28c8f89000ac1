"""A database whose disk fills up mid-crawl (SQLSTATE 53100, raised here by a trigger: the
server's own words for a full disk): the crawl stops claiming, says so once, keeps the
run resumable and returns its summary with exit code 3."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest

from crawler.kinds import RunStatus
from crawler.run import crawl
from tests.site import serve_site
from tests.speed import fast_settings
from tests.sql import plain_url

pytestmark = pytest.mark.db

FULL_AFTER_ONE_PAGE = """
CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM pages) >= 1 THEN
        RAISE EXCEPTION 'could not extend file "base/1/2": No space left on device'
            USING ERRCODE = 'disk_full';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER disk_full BEFORE INSERT ON pages FOR EACH ROW EXECUTE FUNCTION disk_full();
"""


async def test_a_full_disk_stops_the_crawl_with_one_line_and_exit_3(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    conn = await asyncpg.connect(plain_url(db_url))
    try:
        await conn.execute(FULL_AFTER_ONE_PAGE)
        async with serve_site() as base:
            settings = fast_settings(
                {"seeds": (base + "/",), "database_url": db_url, "name": "full"}
            )
            with caplog.at_level(logging.INFO, logger="crawler"):
                summary = await asyncio.wait_for(crawl(settings), 120)
        status = await conn.fetchval("SELECT status FROM crawl_runs ORDER BY id DESC LIMIT 1")
        pages = await conn.fetchval("SELECT count(*) FROM pages")
    finally:
        await conn.close()
    assert summary.exit_code == 3
    assert summary.status is RunStatus.INTERRUPTED
    assert status == "interrupted"  # the next `crawler crawl --name full` resumes it
    assert pages == 1
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1, said
    assert "disk is full" in said[0]
    assert "No space left on device" in said[0]
    assert "crawler crawl --name full" in said[0]
    assert "sqlalchemy" not in said[0].lower() and "asyncpg" not in said[0].lower()
