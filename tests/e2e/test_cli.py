"""The real `crawler` command, run as a subprocess against a local site and real PostgreSQL.

Children run through `asyncio.create_subprocess_exec`, so the test's aiohttp site keeps
serving in the same loop. Their environment has no CRAWLER_* variables but those a test sets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from crawler.db import embedded
from crawler.errors import DatabaseUnavailable
from tests.site import EXPECTED_HTML, EXPECTED_TITLES, serve_endless_site, serve_site
from tests.speed import FAST_ENV
from tests.sql import plain_url

ANSI = re.compile(r"\x1b\[")
SUMMARY_KEYS = {"pages", "fetched", "status", "run_id"}
CHILD_TIMEOUT = 60  # seconds one child may take
UNREACHABLE = "postgresql://user:s3cret@127.0.0.1:1/x"
# Variables that would change what the child prints, whatever the test meant.
NOT_INHERITED = {"FORCE_COLOR", "CLICOLOR_FORCE", "PY_COLORS", "TTY_COMPATIBLE"}


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CRAWLER_") and k not in NOT_INHERITED
    } | FAST_ENV
    env.update(extra or {})
    return env


async def start_cli(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None, stdin: bool = False
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "crawler",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env(env),
        cwd=cwd,
    )


async def finish(proc: asyncio.subprocess.Process, stdin: str | None = None) -> Done:
    try:
        async with asyncio.timeout(CHILD_TIMEOUT):
            out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Done(proc.returncode, out.decode(), err.decode())


async def cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: str | None = None,
) -> Done:
    """Run `python -m crawler ARGS` to the end."""
    proc = await start_cli(*args, env=env, cwd=cwd, stdin=stdin is not None)
    return await finish(proc, stdin)


def _no_traceback(done: Done) -> None:
    assert "Traceback" not in done.err, str(done)
    assert "Traceback" not in done.out, str(done)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A fresh embedded-PostgreSQL data dir in the system temp dir, enterable by other users
    (as root the server runs as a system user); its server is stopped and it is removed after."""
    folder = Path(tempfile.mkdtemp(prefix="crawler-e2e-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        with contextlib.suppress(DatabaseUnavailable):
            embedded.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


async def server_status(folder: Path) -> embedded.EmbeddedServer | None:
    return await asyncio.to_thread(embedded.status, folder)


# -- (a) crawl into a given database, --json --------------------------------------------------


@pytest.mark.db
async def test_crawl_with_database_url_prints_one_json_object(db_url: str, tmp_path: Path) -> None:
    async with serve_site() as base:
        done = await cli(
            "crawl", base + "/", "--database-url", plain_url(db_url), "--json", cwd=tmp_path
        )
    assert done.code == 0, str(done)
    _no_traceback(done)
    assert len(done.out.strip().splitlines()) == 1, str(done)
    summary = json.loads(done.out)
    assert isinstance(summary, dict)
    assert set(summary) >= SUMMARY_KEYS, summary
    assert summary["status"] == "finished"
    assert summary["pages"] == len(EXPECTED_HTML)
    assert not ANSI.search(done.out + done.err)

    conn = await asyncpg.connect(plain_url(db_url))
    try:
        pages = {
            r["url"].removeprefix(base): r["title"]
            for r in await conn.fetch("SELECT url, title FROM pages")
        }
        fetched = await conn.fetchval(
            "SELECT count(*) FROM fetches WHERE run_id = $1", summary["run_id"]
        )
        run = await conn.fetchrow(
            "SELECT status, stats FROM crawl_runs WHERE id = $1", summary["run_id"]
        )
    finally:
        await conn.close()
    assert set(pages) == EXPECTED_HTML
    assert pages == EXPECTED_TITLES
    assert summary["fetched"] == fetched
    assert run["status"] == "finished"
    assert json.loads(run["stats"])["run_id"] == summary["run_id"]


# -- (b) the embedded default: crawl, then sql -------------------------------------------------


@pytest.mark.db
async def test_embedded_default_crawl_then_sql(data_dir: Path, tmp_path: Path) -> None:
    async with serve_site() as base:
        done = await cli("crawl", base + "/", "--data-dir", str(data_dir), "--json", cwd=tmp_path)
    assert done.code == 0, str(done)
    summary = json.loads(done.out)
    assert summary["status"] == "finished"
    assert summary["pages"] == len(EXPECTED_HTML)
    assert await server_status(data_dir) is None, "the crawl left its embedded server running"

    count = len(EXPECTED_HTML)
    table = await cli(
        "sql", "--data-dir", str(data_dir), "select count(*) from pages", cwd=tmp_path
    )
    assert table.code == 0, str(table)
    assert re.search(rf"(?<!\d){count}(?!\d)", table.out), str(table)
    assert "count" in table.out
    assert not ANSI.search(table.out)
    # It had to start the embedded server itself: one line says how to make repeats fast.
    assert "crawler db start" in table.err, str(table)
    assert len(table.err.strip().splitlines()) == 1, str(table)

    as_csv = await cli(
        "sql", "--csv", "--data-dir", str(data_dir), "select count(*) from pages", cwd=tmp_path
    )
    assert as_csv.code == 0, str(as_csv)
    assert as_csv.out == f"count\n{count}\n"

    assert await server_status(data_dir) is None, "sql left the embedded server running"


# -- (c) db start / url / psql / stop -----------------------------------------------------------


@pytest.mark.db
async def test_db_start_url_psql_stop(data_dir: Path, tmp_path: Path) -> None:
    folder = str(data_dir)
    try:
        started = await cli("db", "start", "--data-dir", folder, cwd=tmp_path)
        assert started.code == 0, str(started)
        url = started.out.strip()
        assert url.startswith("postgresql://"), str(started)
        assert len(started.out.strip().splitlines()) == 1
        assert await server_status(data_dir) is not None, "db start did not keep it running"

        shown = await cli("db", "url", "--data-dir", folder, cwd=tmp_path)
        assert shown.code == 0, str(shown)
        assert shown.out.strip() == url

        # Other tools can use the URL while it runs.
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()

        # A kept server: sql answers without starting one, and without the hint.
        quick = await cli("sql", "--data-dir", folder, "select 41 + 1 as n", cwd=tmp_path)
        assert quick.code == 0, str(quick)
        assert "42" in quick.out and quick.err == "", str(quick)

        answered = await cli("psql", "--data-dir", folder, stdin="select 42;\n", cwd=tmp_path)
        assert answered.code == 0, str(answered)
        assert re.search(r"(?<!\d)42(?!\d)", answered.out), str(answered)
        assert await server_status(data_dir) is not None, "psql stopped a kept server"
        # ON_ERROR_STOP makes psql exit 3 on the failing statement; `crawler psql` says so.
        failed = await cli(
            "psql",
            "--data-dir",
            folder,
            stdin="\\set ON_ERROR_STOP on\nselect 1/0;\n",
            cwd=tmp_path,
        )
        assert "division by zero" in failed.err, str(failed)

        stopped = await cli("db", "stop", "--data-dir", folder, cwd=tmp_path)
        assert stopped.code == 0, str(stopped)
        assert await server_status(data_dir) is None

        gone = await cli("db", "url", "--data-dir", folder, cwd=tmp_path)
        assert gone.code != 0, str(gone)
        assert len(gone.err.strip().splitlines()) == 1, str(gone)
        _no_traceback(gone)

        assert failed.code == 3, f"crawler psql did not pass on psql's exit status 3\n{failed}"
    finally:
        with contextlib.suppress(DatabaseUnavailable):
            await asyncio.to_thread(embedded.stop, data_dir)


# -- (d) user mistakes: exit 2, a short message, never a traceback ------------------------------

SEED = "http://127.0.0.1:9/"


@dataclass(frozen=True)
class Mistake:
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    ours: bool = True  # our ConfigError (one line) rather than a usage error of the parser


MISTAKES = {
    "unknown flag": Mistake(("crawl", "--bogus", SEED), ours=False),
    "concurrency not a number": Mistake(("crawl", "--concurrency", "abc", SEED), ours=False),
    "concurrency 0": Mistake(("crawl", "--concurrency", "0", SEED)),
    "ftp seed": Mistake(("crawl", "ftp://x/")),
    "missing config file": Mistake(("crawl", "--config", "missing.toml", SEED)),
    "bad toml": Mistake(("crawl", "--config", "bad.toml", SEED)),
    "bad config value": Mistake(("crawl", "--config", "bad-value.toml", SEED)),
    "bad environment value": Mistake(("crawl", SEED), env=(("CRAWLER_MAX_PAGES", "lots"),)),
    "bad database url scheme": Mistake(("crawl", "--database-url", "mysql://u:s3cret@h/db", SEED)),
}


async def test_user_mistakes_exit_2_with_a_short_message(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("concurrency = = 3\n", encoding="utf-8")
    (tmp_path / "bad-value.toml").write_text('concurrency = "many"\n', encoding="utf-8")
    unused = tmp_path / "data"

    async def one(mistake: Mistake) -> Done:
        env = {"CRAWLER_DATA_DIR": str(unused), **dict(mistake.env)}
        return await cli(*mistake.args, env=env, cwd=tmp_path)

    results = await asyncio.gather(*(one(m) for m in MISTAKES.values()))
    wrong = []
    for (name, mistake), done in zip(MISTAKES.items(), results, strict=True):
        lines = done.err.strip().splitlines()
        problems = []
        if done.code != 2:
            problems.append(f"exit {done.code}, not 2")
        if "Traceback" in done.err:
            problems.append("a traceback")
        if not lines or len(lines) > (1 if mistake.ours else 5) or len(done.err) > 400:
            problems.append(f"{len(lines)} lines of stderr")
        if done.out.strip():
            problems.append("output on stdout")
        if "s3cret" in done.out + done.err:
            problems.append("the password")
        if problems:
            wrong.append(f"{name} {list(mistake.args)}: {', '.join(problems)}\n{done}")
    assert not wrong, "\n\n".join(wrong)
    assert not unused.exists(), "a usage error started the embedded database"


# -- (e) an unreachable database: exit 3, one line, no password -----------------------------------


async def test_unreachable_database_exits_3_without_the_password(tmp_path: Path) -> None:
    cases = {
        "crawl --database-url": (("crawl", SEED, "--database-url", UNREACHABLE), {}),
        "crawl, env": (("crawl", SEED), {"CRAWLER_DATABASE_URL": UNREACHABLE}),
        "crawl, asyncpg url": (
            (
                "crawl",
                SEED,
                "--database-url",
                UNREACHABLE.replace("postgresql", "postgresql+asyncpg"),
            ),
            {},
        ),
        "sql": (("sql", "select 1", "--database-url", UNREACHABLE), {}),
        "db upgrade": (("db", "upgrade", "--database-url", UNREACHABLE), {}),
    }
    results = await asyncio.gather(
        *(cli(*args, env=env, cwd=tmp_path) for args, env in cases.values())
    )
    wrong = []
    for name, done in zip(cases, results, strict=True):
        problems = []
        if done.code != 3:
            problems.append(f"exit {done.code}, not 3")
        if len(done.err.strip().splitlines()) != 1:
            problems.append("not one line on stderr")
        if "s3cret" in done.out + done.err:
            problems.append("the password is printed")
        if "Traceback" in done.err:
            problems.append("a traceback")
        if problems:
            wrong.append(f"{name}: {', '.join(problems)}\n{done}")
    assert not wrong, "\n\n".join(wrong)


# -- (f) output when stdout is not a terminal -------------------------------------------------


@pytest.mark.db
async def test_non_tty_output_is_one_plain_summary_line(db_url: str, tmp_path: Path) -> None:
    async with serve_site() as base:
        done = await cli("crawl", base + "/", "--database-url", plain_url(db_url), cwd=tmp_path)
    assert done.code == 0, str(done)
    lines = [line for line in done.out.splitlines() if line.strip()]
    assert len(lines) == 1, str(done)
    assert not ANSI.search(done.out), str(done)
    assert not ANSI.search(done.err), str(done)
    assert str(len(EXPECTED_HTML)) in lines[0]
    _no_traceback(done)


@pytest.mark.db
async def test_quiet_prints_nothing_on_success(db_url: str, tmp_path: Path) -> None:
    async with serve_site() as base:
        done = await cli(
            "crawl", base + "/", "--database-url", plain_url(db_url), "--quiet", cwd=tmp_path
        )
    assert done.code == 0, str(done)
    assert done.out == ""


# -- signals: a stopped run says so in its exit code --------------------------------------------


@pytest.mark.db
async def test_sigterm_interrupts_the_run_with_exit_143(db_url: str, tmp_path: Path) -> None:
    conn = await asyncpg.connect(plain_url(db_url))
    try:
        async with serve_endless_site(0.2) as base:
            proc = await start_cli(
                "crawl", base + "/", "--database-url", plain_url(db_url), "--json", cwd=tmp_path
            )
            try:
                for _ in range(200):  # wait until it has fetched something (at most 20 s)
                    if await conn.fetchval("SELECT count(*) FROM fetches"):
                        break
                    await asyncio.sleep(0.1)
                else:
                    pytest.fail("the crawl fetched nothing in 20 s")
                proc.send_signal(signal.SIGTERM)
                done = await finish(proc)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        status = await conn.fetchval("SELECT status FROM crawl_runs ORDER BY id DESC LIMIT 1")
    finally:
        await conn.close()
    _no_traceback(done)
    assert json.loads(done.out)["status"] == "interrupted", str(done)
    assert status == "interrupted"
    assert done.code == 143, str(done)


# -- (g) help -------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [("--help",), ("crawl", "--help")], ids=["crawler", "crawl"])
async def test_help_mentions_exit_codes(args: tuple[str, ...], tmp_path: Path) -> None:
    done = await cli(*args, cwd=tmp_path)
    assert done.code == 0, str(done)
    assert not ANSI.search(done.out)
    assert re.search(r"exit code", done.out, re.IGNORECASE), f"no exit codes in\n{done}"
    assert "130" in done.out and "143" in done.out, str(done)


async def test_the_console_script_is_installed(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "crawler"
    if not script.exists():
        pytest.skip("no `crawler` script next to this Python")
    proc = await asyncio.create_subprocess_exec(
        str(script),
        "crawl",
        "--help",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env(),
        cwd=tmp_path,
    )
    done = await finish(proc)
    assert done.code == 0, str(done)
    assert "--database-url" in done.out
