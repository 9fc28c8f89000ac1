"""Extraction rules and `crawler reparse` as a user runs them: `python -m crawler` subprocesses.

Children run through `asyncio.create_subprocess_exec`, so the test's aiohttp site keeps
serving in the same loop; their environment has no CRAWLER_* variables. Rules are compiled
once at start, before the database is opened: a bad selector exits 2 even with no database.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import asyncpg
import pytest

from tests.site import EXPECTED_HTML, serve_site
from tests.speed import FAST_ENV
from tests.sql import plain_url

CHILD_TIMEOUT = 60.0
# Nothing listens on port 1: a command that got as far as the database would exit 3.
UNREACHABLE = "postgresql://user:s3cret@127.0.0.1:1/x"
BAD_RULES = """
[extract.title]
css = "title"
[extract.price]
css = "div[=price]"
"""
TWO_RULES = """
[extract.heading]
css = "h1"
[extract.hrefs]
css = "a"
take = "attr:href"
all = true
"""


async def cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")} | FAST_ENV
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "crawler",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    try:
        async with asyncio.timeout(CHILD_TIMEOUT):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "crawler.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _filled(data: dict[str, dict[str, object]], base: str) -> None:
    """Every page has both fields (a noindex page too), with the values of the site."""
    assert set(data) == EXPECTED_HTML
    for fields in data.values():
        assert set(fields) == {"heading", "hrefs"}, data
    assert data["/"]["heading"] == "Welcome"
    assert base + "/a.html" in data["/"]["hrefs"]  # type: ignore[operator]


def _one_line_naming_the_rule(code: int, out: str, err: str, config: str) -> None:
    detail = f"exit {code}\n--- stdout\n{out}\n--- stderr\n{err}"
    assert code == 2, detail
    assert err.strip().splitlines() == [
        f"crawler: config file {config}: extract rule 'price': bad CSS selector 'div[=price]'"
    ], detail
    assert "Traceback" not in err and "s3cret" not in err, detail


async def test_crawl_with_a_bad_selector_exits_2_before_the_database(tmp_path: Path) -> None:
    config = _config(tmp_path, BAD_RULES)
    args = ("crawl", "http://127.0.0.1:1/", "--config", config, "--database-url", UNREACHABLE)
    _one_line_naming_the_rule(*await cli(*args, cwd=tmp_path), config)


async def test_crawl_with_a_bad_selector_starts_no_embedded_server(tmp_path: Path) -> None:
    """With no database URL the embedded server starts while the crawl's modules load; a
    bad rule is found before that start: no cluster is made in a new data dir."""
    config = _config(tmp_path, BAD_RULES)
    data_dir = tmp_path / "data"
    args = ("crawl", "http://127.0.0.1:1/", "--config", config, "--data-dir", str(data_dir))
    _one_line_naming_the_rule(*await cli(*args, cwd=tmp_path), config)
    assert not (data_dir / "pgdata").exists()


@pytest.mark.db
async def test_crawl_with_two_rules_fills_data_for_every_page(db_url: str, tmp_path: Path) -> None:
    config = _config(tmp_path, TWO_RULES)
    async with serve_site() as base:
        code, _, err = await cli(
            "crawl", base + "/", "--config", config, "--database-url", plain_url(db_url), "--quiet",
            cwd=tmp_path,
        )  # fmt: skip
    assert code == 0, err
    conn = await asyncpg.connect(plain_url(db_url))
    try:
        rows = await conn.fetch("SELECT url, h1, data FROM pages")
    finally:
        await conn.close()
    _filled({r["url"].removeprefix(base): json.loads(r["data"]) for r in rows}, base)


async def test_reparse_with_a_bad_selector_exits_2_before_the_database(tmp_path: Path) -> None:
    config = _config(tmp_path, BAD_RULES)
    args = ("reparse", "--name", "x", "--config", config, "--database-url", UNREACHABLE)
    _one_line_naming_the_rule(*await cli(*args, cwd=tmp_path), config)


@pytest.mark.db
async def test_crawl_with_store_body_then_reparse_with_a_new_rule(
    db_url: str, tmp_path: Path
) -> None:
    url = plain_url(db_url)
    async with serve_site() as base:
        code, _, err = await cli(
            "crawl", base + "/", "--name", "site", "--store-body", "--database-url", url,
            "--quiet", cwd=tmp_path,
        )  # fmt: skip
        assert code == 0, err
    # The site is gone: reparse has only the stored bodies.
    config = _config(tmp_path, TWO_RULES)
    code, out, err = await cli(
        "reparse", "--name", "site", "--config", config, "--database-url", url, cwd=tmp_path
    )
    n = changed = len(EXPECTED_HTML)
    assert code == 0, err
    assert out.strip() == (
        f"reparsed {n} pages of crawl 'site' ({changed} changed); 0 had no stored body"
    )
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT url, h1, data FROM pages")
    finally:
        await conn.close()
    _filled({r["url"].removeprefix(base): json.loads(r["data"]) for r in rows}, base)

    code, out, err = await cli(
        "reparse", "--name", "site", "--config", config, "--database-url", url, "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out) == {
        "crawl": "site",
        "pages": n,
        "reparsed": n,
        "changed": 0,
        "missing": 0,
    }


@pytest.mark.db
async def test_reparse_of_an_unknown_crawl_exits_2(db_url: str, tmp_path: Path) -> None:
    code, _, err = await cli(
        "reparse", "--name", "nope", "--database-url", plain_url(db_url), cwd=tmp_path
    )
    assert code == 2, err
    assert err.strip() == "crawler: there is no crawl named 'nope'"
