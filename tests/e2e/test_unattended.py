"""`crawler crawl` as cron runs it (issue 5, "Unattended output" and "Exit codes"): an
environment with nothing but PATH and a HOME, stdin closed, stdout and stderr not terminals.
Only the summary (or the one JSON object) on stdout, only progress lines and errors on stderr,
and the exit codes of the README table.

Children run in a session of their own with their output in files, through
`/bin/sh -c 'exec "$@" <&-'` so that their stdin is really closed; every wait is bounded and a
child still running at the end is killed by its process group.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from tests.processes import wait_or_kill
from tests.site import EXPECTED_HTML, serve_endless_site, serve_site
from tests.speed import FAST_ENV
from tests.sql import plain_url

pytestmark = pytest.mark.db

CHILD_TIMEOUT = 60.0
README = Path(__file__).resolve().parents[2] / "README.md"
UNREACHABLE = "postgresql://cron:s3cret@127.0.0.1:1/crawls"
ANSI = re.compile(r"\x1b\[")
TEXT_PROGRESS = re.compile(r"^crawler: progress: ")


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"

    @property
    def out_lines(self) -> list[str]:
        return self.out.splitlines()

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


_numbers = itertools.count(1)


async def cron(*args: str, home: Path) -> Done:
    """Run `python -m crawler ARGS` as cron would: PATH and HOME only, stdin closed, output
    to files (not terminals)."""
    n = next(_numbers)
    out_path, err_path = home.parent / f"cron-{n}.out", home.parent / f"cron-{n}.err"
    await asyncio.to_thread(home.mkdir, exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)} | FAST_ENV
    argv = ["/bin/sh", "-c", 'exec "$@" <&-', "sh", sys.executable, "-m", "crawler", *args]
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=out, stderr=err, env=env, cwd=home, start_new_session=True
        )
    code = await wait_or_kill(proc, CHILD_TIMEOUT)
    return Done(
        code,
        out_path.read_text(errors="replace"),
        err_path.read_text(errors="replace"),
    )


def readme_exit_codes() -> dict[int, str]:
    """The README's exit code table: code -> meaning ("130 / 143" gives both)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    codes: dict[int, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and re.fullmatch(r"\d+( / \d+)*", cells[0]):
            for code in cells[0].split(" / "):
                codes[int(code)] = cells[1]
    return codes


def only_progress(done: Done) -> list[str]:
    """stderr lines that are not progress lines."""
    return [line for line in done.err_lines if not TEXT_PROGRESS.match(line)]


# -- output -----------------------------------------------------------------------------------


async def test_cron_output_plain_quiet_and_json(db_url: str, tmp_path: Path) -> None:
    """Three crawls of the fixture site (three crawl names, one database): plain output is
    one summary line, --quiet prints nothing, --json one JSON object."""

    async def crawl(name: str, *flags: str) -> Done:
        return await cron(
            "crawl",
            base + "/",
            "--name",
            name,
            "--database-url",
            db_url,
            *flags,
            home=tmp_path / f"home-{name}",
        )

    async with serve_site() as base:
        normal, quiet, as_json = await asyncio.gather(
            crawl("plain"), crawl("quiet", "--quiet"), crawl("json", "--json")
        )

    assert normal.code == 0, normal
    assert len(normal.out_lines) == 1, normal
    assert "finished" in normal.out_lines[0], normal
    assert re.search(rf"\b{len(EXPECTED_HTML)} pages\b", normal.out_lines[0]), normal
    assert only_progress(normal) == [], normal
    assert not ANSI.search(normal.out + normal.err), normal

    assert quiet.code == 0, quiet
    assert quiet.out == "", quiet
    assert quiet.err == "", quiet

    assert as_json.code == 0, as_json
    assert len(as_json.out_lines) == 1, as_json
    summary = json.loads(as_json.out)
    assert isinstance(summary, dict), as_json
    assert summary["status"] == "finished", summary
    assert summary["pages"] == len(EXPECTED_HTML), summary
    assert summary["exit_code"] == 0, summary
    assert only_progress(as_json) == [], as_json


async def test_cron_progress_lines_in_text_and_json(db_url: str, tmp_path: Path) -> None:
    """A run longer than the progress interval (10 s) logs progress on stderr: plain lines,
    or with --log-format json one JSON object a line. Both runs share the database."""
    common = ("--database-url", db_url, "--max-duration", "11.5s", "--delay", "0.05")
    async with serve_endless_site(0.05) as base:
        text, as_json = await asyncio.gather(
            cron("crawl", base + "/", "--name", "text", *common, home=tmp_path / "home-text"),
            cron(
                "crawl",
                base + "/",
                "--name",
                "json",
                *common,
                "--log-format",
                "json",
                "--json",
                home=tmp_path / "home-json",
            ),
        )
    assert text.code == 0, text
    assert len(text.out_lines) == 1 and "interrupted" in text.out_lines[0], text
    assert text.err_lines, f"no progress line in 11.5 s:\n{text}"
    assert only_progress(text) == [], text

    assert as_json.code == 0, as_json
    assert len(as_json.out_lines) == 1, as_json
    assert json.loads(as_json.out)["status"] == "interrupted", as_json
    assert as_json.err_lines, f"no progress line in 11.5 s:\n{as_json}"
    records = []
    for line in as_json.err_lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a stderr line is not JSON: {line!r}\n{as_json}")
    assert all(isinstance(r, dict) for r in records), records
    assert any("progress" in str(r.get("message", "")) for r in records), records


# -- exit codes -------------------------------------------------------------------------------


async def test_cron_fail_on_error_rate_exits_1(db_url: str, tmp_path: Path) -> None:
    """The fixture site has a 404 among its few URLs: far more than 1 % failed."""
    async with serve_site() as base:
        over, within = await asyncio.gather(
            cron(
                "crawl",
                base + "/",
                "--name",
                "strict",
                "--database-url",
                db_url,
                "--fail-on-error-rate",
                "0.01",
                home=tmp_path / "home-strict",
            ),
            cron(
                "crawl",
                base + "/",
                "--name",
                "lenient",
                "--database-url",
                db_url,
                "--fail-on-error-rate",
                "0.9",
                home=tmp_path / "home-lenient",
            ),
        )
    conn = await asyncpg.connect(plain_url(db_url))
    try:
        statuses = await conn.fetch(
            "SELECT c.name, r.status FROM crawl_runs r JOIN crawls c ON c.id = r.crawl_id"
        )
    finally:
        await conn.close()
    assert over.code == 1, over
    assert len(over.out_lines) == 1 and "finished" in over.out_lines[0], over
    # Exit 1 says why, in one line on stderr (the summary line alone reads like a success).
    said = [line for line in over.err_lines if "--fail-on-error-rate" in line]
    assert len(said) == 1 and "0.01" in said[0] and "failed" in said[0], over
    assert within.code == 0, within
    assert not [line for line in within.err_lines if "--fail-on-error-rate" in line], within
    assert {r["name"]: r["status"] for r in statuses} == {
        "strict": "finished",
        "lenient": "finished",
    }
    assert "error rate" in readme_exit_codes().get(1, "").replace("-", " "), readme_exit_codes()


async def test_cron_exit_codes_match_the_readme(tmp_path: Path) -> None:
    home = tmp_path / "home"
    usage, bad_value, no_database = await asyncio.gather(
        cron("crawl", "--bogus", "http://127.0.0.1:9/", home=home),
        cron(
            "crawl",
            "http://127.0.0.1:9/",
            "--concurrency",
            "0",
            "--database-url",
            UNREACHABLE,
            home=home,
        ),
        cron("crawl", "http://127.0.0.1:9/", "--database-url", UNREACHABLE, home=home),
    )
    for done in (usage, bad_value, no_database):
        assert done.out == "", done
        assert "Traceback" not in done.err, done
        assert "s3cret" not in done.err, done
    assert usage.code == 2, usage
    assert bad_value.code == 2, bad_value
    assert len(bad_value.err_lines) == 1, bad_value
    assert no_database.code == 3, no_database
    assert len(no_database.err_lines) == 1, no_database

    table = readme_exit_codes()
    assert set(table) == {0, 1, 2, 3, 75, 130, 143}, table
    assert "usage" in table[2], table
    assert "database" in table[3], table
