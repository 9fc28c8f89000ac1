"""Who may connect to the embedded PostgreSQL: the superuser's password, its file, pg_hba.conf.

Only the account that runs the crawler may reach the server, whatever the data dir's path:
- The socket's folder is the server's data folder (`pgdata`, mode 0700), or, when that path is
  too long for a socket address, a folder made by `mkdtemp` (mode 0700, a random name, so no
  other user can prepare it in advance), owned by the server's account; the socket itself is
  0700 (`unix_socket_permissions`).
- Folder modes are not the only lock: pg_hba.conf asks for the superuser's password
  (SCRAM-SHA-256). The password is made once, kept in `<data dir>/pgpass` (0600, a libpq
  password file owned by the crawler's account; as root the server's account `crawler_pg`
  cannot read it) and given to clients through the URL's `passfile` parameter, so it never
  appears in a URL, a command line, a log line or the stored crawl settings.
- The server is given only the password's SCRAM verifier, in single-user mode (no socket, no
  log of the statement), before it first listens.

Data dirs made before this (trust authentication, no password file) are secured the same way on
their next start; a server of such a data dir still running is secured in place (the password
set over its socket, pg_hba.conf reloaded, its socket folder closed to others).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import shutil
import tempfile
from pathlib import Path

from crawler.db.embedded_runner import PASSFILE, Runner, first_line
from crawler.errors import DatabaseUnavailable

SUPERUSER = "postgres"
SOCKET_PREFIX = "crawler-pg-"
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; ".s.PGSQL.5432" must fit after the dir
_HBA_MARKER = "# crawler: password authentication (the password is in the data dir's pgpass)"
HBA = f"""{_HBA_MARKER}
# Written by crawler; it rewrites this file on start if the first line differs.
# The server listens on no TCP port; on its Unix socket every role needs its password.
local   all   all   scram-sha-256
"""
_SCRAM_ITERATIONS = 4096


def passfile_of(data_dir: Path) -> Path:
    return data_dir / PASSFILE


def scram_verifier(password: str, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802, 7677)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${_SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def read_password(data_dir: Path) -> str | None:
    """The password kept in the data dir, or None when there is no usable file."""
    try:
        line = passfile_of(data_dir).read_text().strip().splitlines()[0]
    except (OSError, IndexError):
        return None
    parts = line.split(":")
    return parts[4] if len(parts) == 5 and parts[4] else None


def write_password(data_dir: Path) -> str:
    """A new random password, written to the data dir's pgpass (0600) before it is used."""
    password = secrets.token_urlsafe(32)  # no ':' or '\\': nothing to escape in pgpass
    target = passfile_of(data_dir)
    tmp = target.with_name(f".{PASSFILE}-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"*:*:*:{SUPERUSER}:{password}\n")
        handle.flush()
        os.fsync(handle.fileno())
    tmp.rename(target)
    return password


def is_secured(pgdata: Path) -> bool:
    """True when pg_hba.conf is ours (password authentication)."""
    try:
        with open(pgdata / "pg_hba.conf") as handle:
            return handle.readline().rstrip("\n") == _HBA_MARKER
    except OSError:
        return False


def write_hba(pgdata: Path, ids: tuple[int, int] | None) -> None:
    """Replace pg_hba.conf (atomically, owned by the server's account, 0600)."""
    tmp = pgdata / f".pg_hba.conf-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(HBA)
        handle.flush()
        os.fsync(handle.fileno())
    if ids is not None:
        os.chown(tmp, *ids)
    tmp.rename(pgdata / "pg_hba.conf")


def needs_own_socket_dir(pgdata: Path) -> bool:
    return len(str(pgdata)) + len("/.s.PGSQL.5432") > _SOCKET_PATH_MAX


def make_socket_dir(ids: tuple[int, int] | None) -> Path:
    """A new folder for the socket (0700, a random name, owned by the server's account)."""
    base = tempfile.gettempdir()
    if len(base) + len(SOCKET_PREFIX) + 30 > _SOCKET_PATH_MAX:
        base = "/tmp"
    folder = Path(tempfile.mkdtemp(prefix=SOCKET_PREFIX, dir=base))
    if ids is not None:
        os.chown(folder, *ids)
    return folder


def close_socket_dir(folder: Path, ids: tuple[int, int] | None) -> None:
    """Give a socket folder of an older version (0755) to the server's account alone."""
    try:
        if ids is not None:
            os.chown(folder, *ids)
        folder.chmod(0o700)
    except OSError as exc:
        raise DatabaseUnavailable(
            f"cannot close the embedded PostgreSQL's socket folder {folder} to other users: "
            f"{exc.strerror}"
        ) from None


def remove_socket_dir(folder: Path, pgdata: Path, server_uid: int) -> None:
    """Remove a socket folder of ours outside the data dir, once its server has stopped."""
    if folder == pgdata or not folder.name.startswith(SOCKET_PREFIX):
        return
    try:
        info = folder.lstat()
    except OSError:
        return
    if info.st_uid == server_uid and not folder.is_symlink() and folder.is_dir():
        shutil.rmtree(folder, ignore_errors=True)


def secured(runner: Runner) -> bool:
    return is_secured(runner.pgdata) and read_password(runner.data_dir) is not None


def _set_password_sql(runner: Runner) -> str:
    """The statement that gives the superuser the data dir's password (made if missing)."""
    password = read_password(runner.data_dir) or write_password(runner.data_dir)
    verifier = scram_verifier(password)
    return f"ALTER ROLE {SUPERUSER} PASSWORD '{verifier}';\n"


def secure_stopped(runner: Runner) -> None:
    """Password authentication for a cluster that is not running (new, or of an older
    version): the verifier is set in single-user mode, then pg_hba.conf is replaced."""
    done = runner.run(
        "postgres", "--single", "-D", str(runner.pgdata), SUPERUSER,
        stdin=_set_password_sql(runner),
    )  # fmt: skip
    errors = [line for line in (done.stdout + done.stderr).splitlines() if "ERROR" in line]
    if done.returncode != 0 or errors:
        raise DatabaseUnavailable(
            "embedded PostgreSQL: could not set the superuser's password: "
            + first_line("\n".join(errors) or done.stderr)
        )
    write_hba(runner.pgdata, runner.ids)


def secure_running(runner: Runner, socket_dir: Path) -> None:
    """Password authentication for a server of an older version that is still running."""
    if is_secured(runner.pgdata):
        raise DatabaseUnavailable(
            f"the embedded PostgreSQL in {runner.data_dir} is running, but its password file "
            f"{passfile_of(runner.data_dir)} is missing: stop it (crawler db stop) "
            "and the next start sets a new password"
        )
    if socket_dir != runner.pgdata:
        close_socket_dir(socket_dir, runner.ids)
    sql = _set_password_sql(runner)
    done = runner.client(
        "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(socket_dir),
        "-U", SUPERUSER, "-d", "postgres", stdin=sql,
    )  # fmt: skip
    if done.returncode != 0:
        raise DatabaseUnavailable(
            f"embedded PostgreSQL: could not set the superuser's password: "
            f"{first_line(done.stderr)}"
        )
    write_hba(runner.pgdata, runner.ids)
    reloaded = runner.run("pg_ctl", "-D", str(runner.pgdata), "reload")
    if reloaded.returncode != 0:
        raise DatabaseUnavailable(
            f"embedded PostgreSQL: could not reload pg_hba.conf: {first_line(reloaded.stderr)}"
        )
