"""Issue 3 ("durable frontier") and the no-overlap / time-budget parts of issue 5, checked the
way a user meets them: real `python -m crawler crawl` processes, killed, signalled, joined and
cut off from their database, against a generated site (tests/sitegen.py) served in the test's
own loop and a real PostgreSQL.

Every child runs in a session of its own (its own process group), writes stdout and stderr to
files (no pipe can fill up while a test waits), and is killed by its process group in a
`finally` if it is still running. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from crawler.config import normalise_database_url
from crawler.db import embedded
from crawler.errors import DatabaseUnavailable
from tests.sitegen import Manifest, generate, serve_directory
from tests.speed import FAST_ENV
from tests.sql import plain_url

pytestmark = pytest.mark.db

NAME = "durable"
CHILD_TIMEOUT = 60.0  # seconds any one child may take
POLL = 0.02
# Variables that would change what the child prints, whatever the test meant.
NOT_INHERITED = frozenset({"FORCE_COLOR", "CLICOLOR_FORCE", "PY_COLORS", "TTY_COMPATIBLE"})
FAST = ("--concurrency", "16", "--host-concurrency", "16", "--delay", "0")


# -- children ---------------------------------------------------------------------------------


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CRAWLER_") and k not in NOT_INHERITED
    } | FAST_ENV
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str
    seconds: float  # from start to exit

    def __str__(self) -> str:
        return (
            f"exit {self.code} after {self.seconds:.1f}s\n--- stdout\n{self.out}"
            f"\n--- stderr\n{self.err}"
        )


class Child:
    """One `python -m crawler ...` process, leader of its own process group."""

    def __init__(self, proc: asyncio.subprocess.Process, out: Path, err: Path) -> None:
        self.proc = proc
        self.out = out
        self.err = err
        self.started = time.monotonic()

    @property
    def running(self) -> bool:
        return self.proc.returncode is None

    def send(self, signum: int) -> None:
        if self.running:
            self.proc.send_signal(signum)

    async def wait(self, within: float = CHILD_TIMEOUT) -> Done:
        try:
            async with asyncio.timeout(within):
                await self.proc.wait()
        except TimeoutError:
            await self.kill()
            raise AssertionError(
                f"the child ran longer than {within:.0f}s: {self.done()}"
            ) from None
        return self.done()

    def done(self) -> Done:
        code = self.proc.returncode
        return Done(
            -999 if code is None else code,
            self.out.read_text(errors="replace"),
            self.err.read_text(errors="replace"),
            time.monotonic() - self.started,
        )

    async def kill(self) -> Done:
        """SIGKILL the child's process group (it is the group leader) and reap it."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()
        return self.done()


class Children:
    """Starts crawler processes; kills whatever still runs when the test ends."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.all: list[Child] = []
        self.numbers = itertools.count(1)

    async def start(self, *args: str, env: Mapping[str, str] | None = None) -> Child:
        n = next(self.numbers)
        out, err = self.folder / f"child-{n}.out", self.folder / f"child-{n}.err"
        with out.open("wb") as out_file, err.open("wb") as err_file:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "crawler",
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out_file,
                stderr=err_file,
                env=child_env(env),
                cwd=self.folder,
                start_new_session=True,
            )
        child = Child(proc, out, err)
        self.all.append(child)
        return child

    async def kill_all(self) -> None:
        for child in self.all:
            await child.kill()


@contextlib.asynccontextmanager
async def children(folder: Path) -> AsyncIterator[Children]:
    started = Children(folder)
    try:
        yield started
    finally:
        await started.kill_all()


# -- site and database ------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def generated_site(folder: Path, pages: int, seed: int = 1) -> AsyncIterator[Manifest]:
    """A sitegen site of `pages` pages, served on 127.0.0.1 in this loop."""
    async with serve_directory(folder / "site") as (base_url, root):
        yield await asyncio.to_thread(generate, root, pages, base_url, seed)


@contextlib.asynccontextmanager
async def connect(url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(plain_url(url))
    try:
        yield conn
    finally:
        await conn.close()


async def stored_pages(conn: asyncpg.Connection) -> set[str]:
    return {r["url"] for r in await conn.fetch("SELECT url FROM pages")}


async def duplicate_pages(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT url FROM pages GROUP BY crawl_id, url HAVING count(*) > 1 ORDER BY url"
    )
    return [r["url"] for r in rows]


async def runs(conn: asyncpg.Connection) -> list[tuple[int, str]]:
    rows = await conn.fetch("SELECT id, status FROM crawl_runs ORDER BY id")
    return [(r["id"], r["status"]) for r in rows]


async def wait_until(
    conn: asyncpg.Connection, query: str, at_least: int, child: Child, within: float = 30.0
) -> int:
    """Poll `query` (one number) until it reaches `at_least` or the child exits. A table
    the child has not created yet (it migrates a fresh database first) counts as 0."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            value = int(await conn.fetchval(query) or 0)
        except asyncpg.UndefinedTableError:
            value = 0
        if value >= at_least or not child.running:
            return value
        await asyncio.sleep(POLL)
    raise AssertionError(f"{query!r} did not reach {at_least} in {within:.0f}s")


def differences(found: set[str], expected: frozenset[str]) -> str:
    missing, extra = sorted(expected - found), sorted(found - expected)
    return f"{len(missing)} missing {missing[:5]}, {len(extra)} unexpected {extra[:5]}"


def fetch_total(manifest: Manifest) -> int:
    """Fetches a run makes when every URL is fetched once (robots.txt obeyed)."""
    return (
        len(manifest.robots_html_200_urls)
        + len(manifest.robots_not_found_urls)
        + len(manifest.robots_asset_urls)
    )


# -- kill -9 ----------------------------------------------------------------------------------


async def test_sigkill_at_three_random_moments_loses_nothing(db_url: str, tmp_path: Path) -> None:
    rng = random.Random(20240503)
    env = {"CRAWLER_LEASE_SECONDS": "2"}
    opts = ("--name", NAME, "--database-url", db_url, *FAST)
    async with (
        generated_site(tmp_path, 600) as site,
        connect(db_url) as conn,
        children(tmp_path) as spawn,
    ):
        total = fetch_total(site)
        thresholds = sorted(rng.sample(range(total // 10, total * 7 // 10), 3))
        killed: list[Done] = []
        for n, threshold in enumerate(thresholds):
            seeds = (site.start_url,) if n == 0 else ()  # restarts name the crawl only
            child = await spawn.start("crawl", *seeds, *opts, env=env)
            reached = await wait_until(conn, "SELECT count(*) FROM fetches", threshold, child)
            assert child.running, f"ended before {threshold} fetches ({reached}): {child.done()}"
            killed.append(await child.kill())
        final = await (await spawn.start("crawl", *opts, env=env)).wait()
        assert final.code == 0, final
        pages = await stored_pages(conn)
        doubled = await duplicate_pages(conn)
        run_rows = await runs(conn)
        open_rows = await conn.fetchval("SELECT count(*) FROM frontier WHERE state <> 'done'")

    for done in [*killed[1:], final]:
        assert "resuming" in done.err, f"a restart did not say it resumes:\n{done}"
    assert pages == site.robots_html_200_urls, differences(pages, site.robots_html_200_urls)
    assert doubled == [], doubled
    assert len(run_rows) == 1, run_rows
    assert run_rows[0][1] == "finished", run_rows
    assert open_rows == 0


# -- three processes on one run ---------------------------------------------------------------


async def test_three_processes_share_one_run(db_url: str, tmp_path: Path) -> None:
    # The host's delay (shared by the processes) keeps the run going while the joiners start.
    # The first process alone could fill the host's slots: the joiners get theirs because a
    # claim leaves the slots its process has just freed to the others (crawler.db.host_frontier).
    opts = ("--name", NAME, "--database-url", db_url, "--json")
    slow = ("--concurrency", "8", "--host-concurrency", "8", "--delay", "0.02")
    async with (
        generated_site(tmp_path, 400) as site,
        connect(db_url) as conn,
        children(tmp_path) as spawn,
    ):
        first = await spawn.start("crawl", site.start_url, *opts, *slow)
        query = "SELECT count(*) FROM crawl_runs WHERE status = 'running'"
        assert await wait_until(conn, query, 1, first) == 1, first.done()
        assert first.running, first.done()
        joiners = [await spawn.start("crawl", "--join", *opts, *slow) for _ in range(2)]
        done = [await child.wait() for child in (first, *joiners)]
        for d in done:
            assert d.code == 0, d
        run_id = (await runs(conn))[-1][0]
        pages = await stored_pages(conn)
        doubled = await duplicate_pages(conn)
        fetches = await conn.fetchval("SELECT count(*) FROM fetches WHERE run_id = $1", run_id)
        twice = await conn.fetch(
            """
            SELECT f.url, count(*) AS fetches, max(fr.attempts) AS attempts
            FROM fetches f LEFT JOIN frontier fr ON fr.run_id = f.run_id AND fr.url = f.url
            WHERE f.run_id = $1
            GROUP BY f.url
            HAVING count(*) > 1 AND coalesce(max(fr.attempts), 0) <= 1
            ORDER BY f.url
            """,
            run_id,
        )
        run_rows = await runs(conn)

    summaries = [json.loads(d.out) for d in done]
    assert pages == site.robots_html_200_urls, differences(pages, site.robots_html_200_urls)
    assert doubled == [], doubled
    assert [dict(r) for r in twice] == [], "URLs fetched twice in the run without a second claim"
    assert run_rows == [(run_id, "finished")], run_rows
    assert [s["run_id"] for s in summaries] == [run_id] * 3, summaries
    assert sum(s["invocation"]["fetched"] for s in summaries) == fetches, summaries
    # Before a claim left its own freed slots to the others, joiners fetched 0-51 of ~470
    # (five runs); after, 69-170.
    for n, s in enumerate(summaries[1:], 1):
        share = s["invocation"]["fetched"] / fetches
        assert share >= 0.05, f"joiner {n} fetched {share:.0%} of the run: {done[n]}"


# -- graceful stop ----------------------------------------------------------------------------


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_signal_interrupts_then_the_next_crawl_resumes(
    db_url: str, tmp_path: Path, signum: int, code: int
) -> None:
    opts = ("--name", NAME, "--database-url", db_url)
    slow = ("--concurrency", "4", "--host-concurrency", "2", "--delay", "0.02")
    async with (
        generated_site(tmp_path, 200) as site,
        connect(db_url) as conn,
        children(tmp_path) as spawn,
    ):
        child = await spawn.start("crawl", site.start_url, *opts, *slow)
        await wait_until(conn, "SELECT count(*) FROM fetches", 40, child)
        assert child.running, f"the crawl ended before it could be interrupted: {child.done()}"
        sent = time.monotonic()
        child.send(signum)
        stopped = await child.wait(within=15)
        took = time.monotonic() - sent
        status_after_stop = await runs(conn)
        leased = await conn.fetchval("SELECT count(*) FROM frontier WHERE state = 'leased'")

        resumed = await (await spawn.start("crawl", *opts, *FAST)).wait()
        pages = await stored_pages(conn)
        run_rows = await runs(conn)

    assert stopped.code == code, stopped
    assert took < 10, f"took {took:.1f}s to stop"
    out_lines = stopped.out.strip().splitlines()
    assert len(out_lines) == 1 and "interrupted" in out_lines[0], stopped
    assert "Traceback" not in stopped.err, stopped
    assert [status for _, status in status_after_stop] == ["interrupted"], status_after_stop
    assert leased == 0, "leases were not released on the graceful stop"

    assert resumed.code == 0, resumed
    assert "resuming" in resumed.err, resumed
    assert pages == site.robots_html_200_urls, differences(pages, site.robots_html_200_urls)
    assert len(run_rows) == 1 and run_rows[0][1] == "finished", run_rows


# -- one run at a time ------------------------------------------------------------------------


async def test_second_invocation_exits_75_at_once_and_changes_nothing(
    db_url: str, tmp_path: Path
) -> None:
    async with (
        generated_site(tmp_path, 100) as site,
        connect(db_url) as conn,
        children(tmp_path) as spawn,
    ):
        first = await spawn.start(
            "crawl",
            site.start_url,
            "--name",
            NAME,
            "--database-url",
            db_url,
            "--delay",
            "0.2",
            "--host-concurrency",
            "1",
        )
        await wait_until(conn, "SELECT count(*) FROM fetches", 1, first)
        assert first.running, first.done()
        runs_before = await runs(conn)
        crawl_before = dict(await conn.fetchrow("SELECT * FROM crawls"))

        second = await (await spawn.start("crawl", "--name", NAME, "--database-url", db_url)).wait()

        runs_after = await runs(conn)
        crawl_after = dict(await conn.fetchrow("SELECT * FROM crawls"))
        assert first.running, "the first crawl did not survive the second invocation"
        first.send(signal.SIGINT)
        await first.wait(within=15)

    assert second.code == 75, second
    # It refused while the first crawl still held the lock (a wait for the lock would have
    # outlasted the first crawl, which runs until SIGINT).
    assert len(second.err.strip().splitlines()) == 1, second
    assert second.out == "", second
    assert runs_after == runs_before
    changed = {k: (crawl_before[k], v) for k, v in crawl_after.items() if crawl_before[k] != v}
    if "config" in changed:
        before, after = (json.loads(c) for c in changed.pop("config"))
        changed.update(
            {f"config.{k}": (before.get(k), after[k]) for k in after if before.get(k) != after[k]}
        )
    assert changed == {}, (
        f"the refused invocation changed the crawl's row (before, after): {changed}"
    )


# -- the database goes away -------------------------------------------------------------------


@contextlib.asynccontextmanager
async def private_server() -> AsyncIterator[tuple[Path, str]]:
    """An embedded PostgreSQL of this test alone: (its folder, its URL in asyncpg form).
    Stopped and removed at the end, however the test ends."""
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="crawler-outage-"))
    await asyncio.to_thread(folder.chmod, 0o755)  # as root the server's user must enter it
    try:
        server = await asyncio.to_thread(embedded.start, folder)
        yield folder, normalise_database_url(server.url)
    finally:
        with contextlib.suppress(DatabaseUnavailable):
            await asyncio.to_thread(embedded.stop, folder)
        shutil.rmtree(folder, ignore_errors=True)


async def test_database_restart_costs_a_pause_not_the_run(tmp_path: Path) -> None:
    async with (
        private_server() as (folder, url),
        generated_site(tmp_path, 400) as site,
        children(tmp_path) as spawn,
    ):
        child = await spawn.start(
            "crawl", site.start_url, "--name", NAME, "--database-url", url, "--delay", "0.01"
        )
        async with connect(url) as conn:
            await wait_until(conn, "SELECT count(*) FROM fetches", 60, child)
        assert child.running, f"the crawl ended before the outage: {child.done()}"
        await asyncio.to_thread(embedded.stop, folder)
        await asyncio.sleep(4)
        assert child.running, f"the crawl gave up during a 4 s outage: {child.done()}"
        await asyncio.to_thread(embedded.start, folder)
        done = await child.wait()
        async with connect(url) as conn:
            pages = await stored_pages(conn)
            run_rows = await runs(conn)

    assert done.code == 0, done
    assert "database unavailable" in done.err.lower(), done
    assert pages == site.robots_html_200_urls, differences(pages, site.robots_html_200_urls)
    assert len(run_rows) == 1 and run_rows[0][1] == "finished", run_rows


async def test_database_away_too_long_exits_3_and_the_run_resumes(tmp_path: Path) -> None:
    env = {"CRAWLER_LEASE_SECONDS": "3"}  # the leases of the process that gave up expire soon
    async with (
        private_server() as (folder, url),
        generated_site(tmp_path, 200) as site,
        children(tmp_path) as spawn,
    ):
        opts = ("--name", NAME, "--database-wait", "5s", "--database-url", url)
        child = await spawn.start("crawl", site.start_url, *opts, "--delay", "0.01", env=env)
        async with connect(url) as conn:
            await wait_until(conn, "SELECT count(*) FROM fetches", 60, child)
        assert child.running, f"the crawl ended before the outage: {child.done()}"
        await asyncio.to_thread(embedded.stop, folder)
        gave_up = await child.wait(within=30)
        await asyncio.to_thread(embedded.start, folder)

        resumed = await (await spawn.start("crawl", *opts, *FAST, env=env)).wait()
        async with connect(url) as conn:
            pages = await stored_pages(conn)
            run_rows = await runs(conn)

    assert gave_up.code == 3, gave_up
    assert "Traceback" not in gave_up.err, gave_up
    assert resumed.code == 0, resumed
    assert "resuming" in resumed.err, resumed
    assert pages == site.robots_html_200_urls, differences(pages, site.robots_html_200_urls)
    assert len(run_rows) == 1 and run_rows[0][1] == "finished", run_rows


async def test_one_run_at_a_time_still_holds_after_a_database_restart(tmp_path: Path) -> None:
    """The run lock lives on a database session; a restart ends that session. A crawl that
    rides out the restart must still keep a second `crawl --name X` out (exit 75)."""
    async with (
        private_server() as (folder, url),
        generated_site(tmp_path, 100) as site,
        children(tmp_path) as spawn,
    ):
        opts = ("--name", NAME, "--database-url", url, "--delay", "0.1", "--host-concurrency", "1")
        first = await spawn.start("crawl", site.start_url, *opts)
        async with connect(url) as conn:
            await wait_until(conn, "SELECT count(*) FROM fetches", 5, first)
        assert first.running, first.done()
        await asyncio.to_thread(embedded.stop, folder)
        await asyncio.sleep(1)
        await asyncio.to_thread(embedded.start, folder)
        async with connect(url) as conn:
            fetched = await conn.fetchval("SELECT count(*) FROM fetches")
            await wait_until(conn, "SELECT count(*) FROM fetches", fetched + 3, first)
        assert first.running, f"the crawl did not ride out the restart: {first.done()}"
        second = await spawn.start("crawl", *opts)
        try:
            refused = await second.wait(within=10)
        except AssertionError:
            refused = await second.kill()  # it ran on: the lock was gone
        first.send(signal.SIGINT)
        await first.wait(within=15)

    assert refused.code == 75, f"a second process ran the crawl after the restart:\n{refused}"


# -- a time budget ----------------------------------------------------------------------------


async def test_max_duration_stops_with_exit_0_and_the_next_run_resumes(
    db_url: str, tmp_path: Path
) -> None:
    opts = ("--name", NAME, "--database-url", db_url)
    async with (
        generated_site(tmp_path, 100) as site,
        connect(db_url) as conn,
        children(tmp_path) as spawn,
    ):
        budget = await (
            await spawn.start(
                "crawl",
                site.start_url,
                *opts,
                "--max-duration",
                "1s",
                "--delay",
                "0.1",
                "--host-concurrency",
                "1",
                "--json",
            )
        ).wait()
        after_budget = await runs(conn)
        fetched_then = await conn.fetchval("SELECT count(*) FROM fetches")
        resumed = await (await spawn.start("crawl", *opts, *FAST)).wait()
        pages = await stored_pages(conn)
        run_rows = await runs(conn)

    assert budget.code == 0, budget
    assert budget.seconds < 8, f"a 1 s budget took {budget.seconds:.1f}s"
    assert json.loads(budget.out)["status"] == "interrupted", budget
    assert [status for _, status in after_budget] == ["interrupted"], after_budget
    assert 0 < fetched_then < fetch_total(site), fetched_then
    assert resumed.code == 0, resumed
    assert "resuming" in resumed.err, resumed
    assert pages == site.robots_html_200_urls, differences(pages, site.robots_html_200_urls)
    assert len(run_rows) == 1 and run_rows[0][1] == "finished", run_rows
