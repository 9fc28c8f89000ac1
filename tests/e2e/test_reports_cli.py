"""`crawler runs`, `crawler changes` and `crawler export` as a user runs them: subprocesses of
`python -m crawler` on a database where the fixture site was crawled twice."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from crawler.run import crawl
from tests.processes import Done, crawler_cli
from tests.site import EXPECTED_HTML, serve_site
from tests.speed import fast_settings
from tests.sql import plain_url

pytestmark = pytest.mark.db

CHILD_TIMEOUT = 30.0


async def cli(*args: str, db_url: str) -> Done:
    return await crawler_cli(*args, db_url=db_url, seconds=CHILD_TIMEOUT)


@pytest.fixture
async def crawled(db_url: str) -> AsyncIterator[tuple[str, str, list[int]]]:
    """(database URL, site base URL, run ids) after two crawls of the fixture site."""
    async with serve_site() as base:
        settings = fast_settings({"seeds": (base + "/",), "database_url": db_url, "name": "site"})
        runs = [(await crawl(settings)).run_id, (await crawl(settings)).run_id]
    yield db_url, base, runs


async def test_runs_and_changes(crawled) -> None:
    db_url, base, runs = crawled
    as_json, table, changes, earlier, text = await asyncio.gather(
        cli("runs", "--name", "site", "--json", db_url=db_url),
        cli("runs", db_url=db_url),
        cli("changes", "--json", db_url=db_url),
        cli("changes", "--name", "site", "--run", str(runs[0]), "--json", db_url=db_url),
        cli("changes", "--run", str(runs[0]), db_url=db_url),
    )
    for done in (as_json, table, changes, earlier, text):
        assert done.code == 0, done.err
        assert done.err == ""

    listed = json.loads(as_json.out)
    assert [r["id"] for r in listed] == runs
    assert [(r["new"], r["unchanged"]) for r in listed] == [
        (len(EXPECTED_HTML), 0),
        (0, len(EXPECTED_HTML)),
    ]
    assert all(r["crawl"] == "site" and r["status"] == "finished" for r in listed)
    assert {"started_at", "finished_at", "pages", "errors", "changed", "gone"} <= set(listed[0])
    assert "site" in table.out and "finished" in table.out and "unchanged" in table.out

    latest = json.loads(changes.out)
    assert list(latest) == ["crawl", "run_id", "new", "changed", "unchanged", "gone", "urls"]
    assert (latest["crawl"], latest["run_id"]) == ("site", runs[1])
    assert (latest["new"], latest["changed"], latest["gone"]) == (0, 0, 0)
    assert latest["unchanged"] == len(EXPECTED_HTML)
    assert {u.removeprefix(base) for u in latest["urls"]["unchanged"]} == EXPECTED_HTML
    assert latest["urls"]["new"] == latest["urls"]["changed"] == latest["urls"]["gone"] == []

    first = json.loads(earlier.out)
    assert (first["run_id"], first["new"]) == (runs[0], len(EXPECTED_HTML))
    assert text.out.splitlines()[0] == (
        f"crawl site, run {runs[0]}: {len(EXPECTED_HTML)} new, 0 changed, 0 unchanged, 0 gone"
    )
    assert {line.removeprefix("+ " + base) for line in text.out.splitlines()[1:]} == EXPECTED_HTML


async def test_export(crawled, tmp_path: Path) -> None:
    db_url, _base, runs = crawled
    target = tmp_path / "links.csv"
    links_args = ["export", "--name", "site", "--table", "links", "--format", "csv"]
    fetches_args = ["export", "--table", "fetches", "--format", "jsonl"]
    pages, links, fetches = await asyncio.gather(
        cli("export", "--format", "jsonl", db_url=db_url),
        cli(*links_args, "--out", str(target), db_url=db_url),
        cli(*fetches_args, "--run", str(runs[0]), db_url=db_url),
    )
    for done in (pages, links, fetches):
        assert done.code == 0, done.err
        assert done.err == ""  # stderr is not a terminal: no progress display

    conn = await asyncpg.connect(plain_url(db_url))
    try:
        counts = {
            table: await conn.fetchval(sql, *params)
            for table, sql, params in (
                ("pages", "SELECT count(*) FROM pages", ()),
                ("links", "SELECT count(*) FROM links", ()),
                ("fetches", "SELECT count(*) FROM fetches WHERE run_id = $1", (runs[0],)),
            )
        }
    finally:
        await conn.close()

    page_rows = [json.loads(line) for line in pages.out.splitlines()]
    assert len(page_rows) == counts["pages"] == len(EXPECTED_HTML)
    assert links.out == ""
    link_rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"), newline="")))
    assert len(link_rows) == counts["links"]
    fetch_rows = [json.loads(line) for line in fetches.out.splitlines()]
    assert len(fetch_rows) == counts["fetches"]
    assert {r["run_id"] for r in fetch_rows} == {runs[0]}


async def test_mistakes_exit_2_with_one_line(crawled, tmp_path: Path) -> None:
    db_url, _base, _runs = crawled
    results = await asyncio.gather(
        cli("runs", "--name", "nope", db_url=db_url),
        cli("changes", "--name", "nope", "--json", db_url=db_url),
        cli("changes", "--run", "999", db_url=db_url),
        cli("export", "--name", "nope", "--format", "csv", db_url=db_url),
        cli("export", "--format", "xml", db_url=db_url),
        cli("export", "--format", "csv", "--out", str(tmp_path / "no" / "dir.csv"), db_url=db_url),
    )
    for done in results:
        assert done.code == 2, done.err
        assert done.out == ""
        assert "Traceback" not in done.err
    for done in results[:4]:
        assert len(done.err.strip().splitlines()) == 1
        assert done.err.startswith("crawler: ")
    assert "'nope'" in results[0].err
    assert "999" in results[2].err
    assert "cannot write" in results[5].err
