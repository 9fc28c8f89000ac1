"""The embedded server's life: a stop stuck in its shutdown checkpoint becomes an immediate
stop and the next start recovers; data dirs of older versions (trust authentication, no
password file) are secured on their next start, stopped or still running, without losing data.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from crawler.db import embedded, embedded_access
from crawler.db.embedded_early import EarlyStart
from crawler.db.embedded_runner import Runner
from crawler.errors import DatabaseUnavailable


@pytest.fixture
def folder() -> Iterator[Path]:
    """A fresh data dir under the system temp dir; its servers are stopped and it is removed."""
    path = Path(tempfile.mkdtemp(prefix="crawler-embedded-"))
    path.chmod(0o755)  # as root the server's account must enter data dirs made inside it
    try:
        yield path
    finally:
        for data_dir in [path, *path.iterdir()]:  # the folder, or data dirs made inside it
            with contextlib.suppress(DatabaseUnavailable):
                embedded.stop(data_dir)
        shutil.rmtree(path, ignore_errors=True)


def query(url: str, sql: str) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            if ";" in sql:  # several statements: no rows
                await conn.execute(sql)
                return []
            rows: list[asyncpg.Record] = await conn.fetch(sql)
            return rows
        finally:
            await conn.close()

    return asyncio.run(go())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"


def wait_gone(pid: int, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_a_stop_stuck_in_its_checkpoint_turns_immediate_and_the_next_start_recovers(
    folder: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    server = embedded.start(folder)
    query(server.url, "CREATE TABLE kept (n int); INSERT INTO kept SELECT generate_series(1, 500)")
    rows = query(server.url, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
    checkpointer = rows[0]["pid"]
    postmaster = int((folder / "pgdata" / "postmaster.pid").read_text().split()[0])
    os.kill(checkpointer, signal.SIGSTOP)  # the shutdown checkpoint can never finish
    try:
        runner = Runner(folder)
        with pytest.raises(DatabaseUnavailable) as stuck:
            runner.run(
                "pg_ctl", "-D", str(runner.pgdata), "-w", "-t", "30", "-m", "fast", "stop",
                timeout=1,
            )  # fmt: skip
        message = str(stuck.value)
        assert message == "embedded PostgreSQL: pg_ctl did not finish within 1 s", message
        monkeypatch.setattr(embedded, "FAST_STOP_SECONDS", 2)
        with caplog.at_level(logging.WARNING, logger="crawler.db.embedded"):
            assert embedded.stop(folder) is True
        assert "stopping it at once" in caplog.text
        assert embedded.status(folder) is None
        assert wait_gone(postmaster), "the postmaster outlived the immediate stop"
        assert wait_gone(checkpointer), "the stuck checkpointer outlived the immediate stop"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(checkpointer, signal.SIGCONT)
    again = embedded.start(folder)
    assert again.started_here
    log = (folder / "pgdata" / "server.log").read_text()
    assert "automatic recovery in progress" in log
    assert query(again.url, "SELECT count(*) AS n FROM kept")[0]["n"] == 500


# -- data dirs of older versions ---------------------------------------------------------------


def old_style_cluster(folder: Path, *, running: bool) -> Path:
    """A data dir as versions before the password made it: trust authentication, no password
    file, the socket in pgdata or, for a long path, in a predictable /tmp folder of mode 0755.
    A table `kept` holds one row. Returns the socket folder."""
    folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    runner = Runner(folder)
    embedded._initdb(runner)  # --auth=trust, as before
    pgdata = runner.pgdata
    socket_dir = pgdata
    if embedded_access.needs_own_socket_dir(pgdata):
        digest = hashlib.sha256(str(pgdata).encode()).hexdigest()[:12]
        socket_dir = Path(tempfile.gettempdir()) / f"crawler-pg-{digest}"
        socket_dir.mkdir(mode=0o755, exist_ok=True)
        runner.chown(socket_dir)
    started = runner.run(
        "pg_ctl", "-D", str(pgdata), "-w", "-o", f"-h '' -k {socket_dir}",
        "-l", str(pgdata / "server.log"), "start",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    url = f"postgresql://postgres@/postgres?host={socket_dir}"
    query(url, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)")
    if not running:
        assert runner.run("pg_ctl", "-D", str(pgdata), "-w", "stop").returncode == 0
    return socket_dir


def refused_without_password(server: embedded.EmbeddedServer) -> None:
    without = f"postgresql://postgres@/postgres?host={server.socket_dir}"
    with pytest.raises(
        (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)
    ):
        query(without, "SELECT 1")
    wrong = f"postgresql://postgres:wrong@/postgres?host={server.socket_dir}"
    with pytest.raises(asyncpg.InvalidPasswordError):
        query(wrong, "SELECT 1")


def admin_url(server: embedded.EmbeddedServer) -> str:
    return server.url.replace("/crawler?", "/postgres?")


def test_a_stopped_data_dir_of_an_older_version_is_secured_on_start(folder: Path) -> None:
    data_dir = folder / "d"
    old_style_cluster(data_dir, running=False)
    assert not embedded_access.passfile_of(data_dir).exists()
    server = embedded.start(data_dir)
    assert server.started_here
    assert embedded_access.is_secured(data_dir / "pgdata")
    assert (embedded_access.passfile_of(data_dir).stat().st_mode & 0o777) == 0o600
    assert query(admin_url(server), "SELECT n FROM kept")[0]["n"] == 7
    refused_without_password(server)
    password = embedded_access.read_password(data_dir)
    assert password
    assert password not in (data_dir / "pgdata" / "server.log").read_text()
    assert password not in server.url


def test_a_running_server_of_an_older_version_is_secured_in_place(folder: Path) -> None:
    data_dir = folder / ("x" * (100 - len(str(folder))))  # its socket was in /tmp, 0755
    assert len(str(data_dir)) >= 100
    socket_dir = old_style_cluster(data_dir, running=True)
    assert socket_dir != data_dir / "pgdata"
    try:
        server = embedded.start(data_dir)
        assert not server.started_here, "the running server should have been kept"
        assert server.socket_dir == socket_dir
        assert (socket_dir.stat().st_mode & 0o777) == 0o700
        assert query(admin_url(server), "SELECT n FROM kept")[0]["n"] == 7
        refused_without_password(server)
        assert embedded.stop(data_dir)
        assert not socket_dir.exists(), "the old socket folder was left in the temp dir"
        again = embedded.start(data_dir)
        assert again.socket_dir != socket_dir
        assert query(admin_url(again), "SELECT n FROM kept")[0]["n"] == 7
    finally:
        with contextlib.suppress(DatabaseUnavailable):
            embedded.stop(data_dir)
        shutil.rmtree(socket_dir, ignore_errors=True)


# -- the start `crawler crawl` begins while it imports (embedded_early) -------------------------


def test_an_early_start_the_crawl_never_took_is_stopped(folder: Path) -> None:
    early = EarlyStart(folder)
    early.close()  # as after a mistake or Ctrl-C before the crawl opened its database
    assert embedded.status(folder) is None
    assert (folder / "pgdata" / "PG_VERSION").exists()  # the next start finds its cluster


def test_an_early_start_leaves_a_server_it_did_not_start_running(folder: Path) -> None:
    embedded.start(folder)
    early = EarlyStart(folder)
    early.close()
    assert embedded.status(folder) is not None


def test_a_taken_start_is_left_to_the_crawl(folder: Path) -> None:
    early = EarlyStart(folder)
    server = asyncio.run(early.take())
    assert server.started_here
    early.close()
    assert embedded.status(folder) is not None  # the crawl stops it on its way out
    assert embedded.stop(folder) is True


def test_an_early_start_that_failed_raises_where_the_crawl_takes_it(folder: Path) -> None:
    blocked = folder / "a-file"
    blocked.write_text("not a folder")
    early = EarlyStart(blocked / "data")
    with pytest.raises(DatabaseUnavailable):
        asyncio.run(early.take())
    early.close()  # nothing to stop, nothing raised
