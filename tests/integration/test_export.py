"""Streaming export of a crawled fixture site: every table in JSON Lines and CSV, row counts,
value encodings, crawl and run selection."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
import pytest

from crawler import export
from crawler.db import reports
from crawler.db.database import Database
from crawler.errors import ConfigError
from crawler.run import crawl
from tests.site import EXPECTED_HTML, serve_site
from tests.speed import fast_settings
from tests.sql import plain_url

pytestmark = pytest.mark.db


@pytest.fixture
async def crawled(db_url: str) -> AsyncIterator[tuple[Database, str, list[int]]]:
    """The fixture site crawled twice as crawl "site"; (db, base URL, run ids)."""
    async with serve_site() as base:
        settings = fast_settings({"seeds": (base + "/",), "database_url": db_url, "name": "site"})
        runs = [(await crawl(settings)).run_id, (await crawl(settings)).run_id]
    db = Database(db_url)
    try:
        yield db, base, runs
    finally:
        await db.dispose()


async def _count(db_url: str, sql: str, *args: object) -> int:
    conn = await asyncpg.connect(plain_url(db_url))
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


EXPECTED_COUNTS = {
    "pages": "SELECT count(*) FROM pages",
    "links": "SELECT count(*) FROM links",
    "fetches": "SELECT count(*) FROM fetches WHERE run_id = $1",
}


async def _export(db: Database, fmt: str, table: str, **kwargs: object) -> tuple[bytes, int]:
    out = io.BytesIO()
    rows = reports.export_rows(db, table, **kwargs)  # type: ignore[arg-type]
    count = await export.write(fmt, rows, out, reports.columns(table))
    return out.getvalue(), count


@pytest.mark.parametrize("table", ["pages", "links", "fetches"])
async def test_jsonl_has_one_object_per_row(crawled, db_url: str, table: str) -> None:
    db, base, runs = crawled
    expected = await _count(
        db_url, EXPECTED_COUNTS[table], *([runs[-1]] if table == "fetches" else [])
    )
    data, count = await _export(db, "jsonl", table, crawl_name="site")
    lines = data.decode().splitlines()
    assert count == len(lines) == expected > 0
    objects = [json.loads(line) for line in lines]
    assert all(list(o) == reports.columns(table) for o in objects)
    key = ("page_id", "position") if table == "links" else ("id",)
    assert len({tuple(o[k] for k in key) for o in objects}) == len(objects)
    if table == "pages":
        assert {o["url"] for o in objects} == {base + p for p in EXPECTED_HTML}
        for o in objects:
            assert isinstance(o["data"], dict)  # JSONB stays an object
            datetime.fromisoformat(o["fetched_at"])
            assert o["fetched_at"].endswith("+00:00")
    if table == "fetches":
        assert {o["run_id"] for o in objects} == {runs[-1]}
        moved = next(o for o in objects if o["url"].endswith("/moved"))
        assert moved["redirects"] == [base + "/moved"]
        assert isinstance(moved["not_modified"], bool)
    if table == "links":
        assert all(o["page_url"].startswith(base) for o in objects)


@pytest.mark.parametrize("table", ["pages", "links", "fetches"])
async def test_csv_has_a_header_and_one_record_per_row(crawled, db_url: str, table: str) -> None:
    db, base, runs = crawled
    expected = await _count(
        db_url, EXPECTED_COUNTS[table], *([runs[-1]] if table == "fetches" else [])
    )
    data, count = await _export(db, "csv", table, crawl_name="site")
    records = list(csv.DictReader(io.StringIO(data.decode(), newline="")))
    assert count == len(records) == expected > 0
    assert list(records[0]) == reports.columns(table)
    if table == "pages":
        for r in records:
            assert json.loads(r["data"]) == {}  # JSONB as JSON text
            datetime.fromisoformat(r["first_seen_at"])
            assert r["gone_at"] == ""  # null
    if table == "fetches":
        moved = next(r for r in records if r["url"].endswith("/moved"))
        assert json.loads(moved["redirects"]) == [base + "/moved"]
        assert moved["not_modified"] in ("true", "false")


async def test_fetches_of_a_given_run_and_small_batches(crawled, db_url: str) -> None:
    db, _base, runs = crawled
    for run in runs:
        data, count = await _export(db, "jsonl", "fetches", crawl_name="site", run_id=run)
        assert count == await _count(db_url, EXPECTED_COUNTS["fetches"], run)
        assert {json.loads(line)["run_id"] for line in data.decode().splitlines()} == {run}
    whole, _ = await _export(db, "jsonl", "links", crawl_name="site")
    batched, _ = await _export(db, "jsonl", "links", crawl_name="site", batch=3)
    assert whole == batched
    assert await reports.count_rows(db, "links", "site") == len(whole.splitlines())
    assert await reports.count_rows(db, "fetches", "site", runs[0]) == await _count(
        db_url, EXPECTED_COUNTS["fetches"], runs[0]
    )


async def test_the_default_crawl_and_an_empty_export(crawled) -> None:
    db, _base, runs = crawled
    _data, count = await _export(db, "jsonl", "pages")  # the only crawl
    assert count == len(EXPECTED_HTML)
    _data, count = await _export(db, "csv", "pages", crawl_name="site", run_id=runs[0])
    assert count == len(EXPECTED_HTML)  # --run selects fetches, not pages
    out = io.BytesIO()
    assert await export.write("csv", _no_rows(), out, reports.columns("links")) == 0
    assert out.getvalue().decode() == ",".join(reports.columns("links")) + "\n"
    out = io.BytesIO()
    assert await export.write("jsonl", _no_rows(), out, []) == 0
    assert out.getvalue() == b""


async def _no_rows() -> AsyncIterator[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for row in rows:
        yield row


async def test_unknown_crawl_run_table_and_format(crawled) -> None:
    db, _base, _runs = crawled
    with pytest.raises(ConfigError, match="no crawl named 'nope'"):
        await _export(db, "jsonl", "pages", crawl_name="nope")
    with pytest.raises(ConfigError, match="has no run 999"):
        await _export(db, "jsonl", "fetches", crawl_name="site", run_id=999)
    with pytest.raises(ConfigError, match="--table"):
        reports.columns("frontier")
    with pytest.raises(ConfigError, match="--format"):
        await export.write("xml", _no_rows(), io.BytesIO(), [])


async def test_an_abandoned_export_releases_its_connection(crawled) -> None:
    db, _base, _runs = crawled
    rows = reports.export_rows(db, "links", "site", batch=2)
    first = await anext(rows)
    assert "target_url" in first
    await rows.aclose()
    assert db.engine.pool.checkedout() == 0
