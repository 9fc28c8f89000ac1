"""No other local user may reach the embedded PostgreSQL, whatever the data dir's path.

As root (as CI runs), a real second user, `nobody`, tries: it cannot enter the socket's folder
nor connect to the socket, nor read the password file, the data dir or the server's log; and
handed a connection that is already open (as if the folders were open to it), it still fails
the server's password authentication. The modes of what the server writes are checked as any
user, and the password appears in no URL, command line or log.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from crawler.db import embedded, embedded_access
from crawler.errors import DatabaseUnavailable

pytestmark = pytest.mark.db

# Run as `nobody` with nothing but the standard library: argv is the socket path, the paths it
# must not read, and the number of an open connection to try a wrong password on.
PROBE = r"""
import base64, hashlib, hmac, json, os, socket, struct, sys

def attempt(what, action):
    try:
        action()
    except PermissionError:
        return "refused"
    except OSError as exc:
        return f"error {exc.errno}"
    return "allowed"

def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sys.argv[1])
    s.close()

def read(path):
    if os.path.isdir(path):
        os.listdir(path)
    else:
        open(path, "rb").read(1)

out = {"socket": attempt("socket", connect)}
for path in sys.argv[2].split("\n"):
    out[path] = attempt(path, lambda: read(path))

def message(sock):
    head = b""
    while len(head) < 5:
        head += sock.recv(5 - len(head))
    body = b""
    while len(body) < struct.unpack("!I", head[1:])[0] - 4:
        body += sock.recv(65536)
    return head[:1], body

def scram_with_wrong_password(sock, password):
    params = b"user\0postgres\0database\0postgres\0\0"
    sock.sendall(struct.pack("!II", 8 + len(params), 196608) + params)
    kind, body = message(sock)
    auth = struct.unpack("!I", body[:4])[0]
    if kind != b"R" or auth != 10:
        return {"first_reply": kind.decode(), "auth": auth}
    nonce = base64.b64encode(os.urandom(18)).decode()
    bare = f"n=,r={nonce}"
    first = ("n,," + bare).encode()
    mech = b"SCRAM-SHA-256\0"
    sock.sendall(b"p" + struct.pack("!I", 4 + len(mech) + 4 + len(first)) + mech
                 + struct.pack("!I", len(first)) + first)
    kind, body = message(sock)
    server_first = body[4:].decode()
    fields = dict(item.split("=", 1) for item in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(fields["s"]),
                                 int(fields["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored = hashlib.sha256(client_key).digest()
    without_proof = f"c=biws,r={fields['r']}"
    signature = hmac.new(stored, f"{bare},{server_first},{without_proof}".encode(),
                         hashlib.sha256).digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()
    final = f"{without_proof},p={proof}".encode()
    sock.sendall(b"p" + struct.pack("!I", 4 + len(final)) + final)
    kind, body = message(sock)
    codes = [f[1:].decode() for f in body.split(b"\0") if f[:1] == b"C"]
    return {"first_reply": "R", "auth": 10, "final_reply": kind.decode(), "code": codes}

out["handed_connection"] = scram_with_wrong_password(
    socket.socket(fileno=int(sys.argv[3])), "not-the-password")
print(json.dumps(out))
"""


def _nobody_python() -> list[str] | None:
    """argv prefix that runs a Python as `nobody`, or None when there is none it can run."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return None
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return None
    switch = [
        "setpriv",
        f"--reuid={entry.pw_uid}",
        f"--regid={entry.pw_gid}",
        "--clear-groups",
        "--",
    ]
    for python in (sys.executable, "/usr/bin/python3", shutil.which("python3")):
        if python is None:
            continue
        done = subprocess.run(
            [*switch, python, "-c", "print(1)"], capture_output=True, check=False, timeout=30
        )
        if done.returncode == 0:
            return [*switch, python]
    return None


@pytest.fixture
def parent() -> Iterator[Path]:
    """A temp folder others may enter (as root the server's account must)."""
    folder = Path(tempfile.mkdtemp(prefix="crawler-sec-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for data_dir in folder.iterdir():
            with contextlib.suppress(DatabaseUnavailable):
                embedded.stop(data_dir)
        shutil.rmtree(folder, ignore_errors=True)


def data_dirs(parent: Path) -> list[Path]:
    """A short data dir (socket in it) and one of 100+ characters (socket in the temp dir)."""
    long = parent / ("l" * max(1, 101 - len(str(parent)) - 1))
    assert len(str(long)) >= 100
    return [parent / "short", long]


def socket_of(server: embedded.EmbeddedServer) -> Path:
    return server.socket_dir / ".s.PGSQL.5432"


@pytest.mark.parametrize("which", ["short", "long"])
def test_nobody_cannot_reach_or_log_in_to_the_embedded_server(parent: Path, which: str) -> None:
    runner = _nobody_python()
    if runner is None:
        pytest.skip(
            "needs root (to start the server as crawler_pg and act as user nobody, as CI "
            "does), setpriv, and a Python that nobody may run"
        )
    data_dir = data_dirs(parent)[0 if which == "short" else 1]
    server = embedded.start(data_dir)
    assert (server.socket_dir == data_dir / "pgdata") == (which == "short")
    private = [
        server.socket_dir,
        data_dir,
        data_dir / "pgdata",
        embedded_access.passfile_of(data_dir),
        data_dir / "pgdata" / "server.log",
    ]
    handed = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    handed.connect(str(socket_of(server)))  # as root: what nobody would get past the folders
    try:
        done = subprocess.run(
            [*runner, "-c", PROBE, str(socket_of(server)), "\n".join(map(str, private)),
             str(handed.fileno())],
            capture_output=True, text=True, check=False, timeout=60,
            pass_fds=(handed.fileno(),),
        )  # fmt: skip
    finally:
        handed.close()
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen.pop("socket") == "refused", seen
    login = seen.pop("handed_connection")
    assert login == {
        "first_reply": "R",
        "auth": 10,  # SASL: the server asks for the password, it does not trust the peer
        "final_reply": "E",
        "code": ["28P01"],  # invalid_password
    }, login
    assert set(seen.values()) == {"refused"}, seen


def test_what_the_server_writes_is_closed_to_other_users(parent: Path) -> None:
    for data_dir in data_dirs(parent):
        server = embedded.start(data_dir)
        pgdata = data_dir / "pgdata"
        assert mode(pgdata) == 0o700
        assert mode(server.socket_dir) == 0o700
        assert mode(socket_of(server)) == 0o700
        assert mode(embedded_access.passfile_of(data_dir)) == 0o600
        assert embedded_access.passfile_of(data_dir).stat().st_uid == os.geteuid()
        assert mode(pgdata / "server.log") & 0o077 == 0
        assert mode(data_dir) & 0o007 == 0, oct(mode(data_dir))
        loose = open_to_others(data_dir) + open_to_others(server.socket_dir)
        assert not loose, loose
        password = embedded_access.read_password(data_dir)
        assert password
        assert password not in server.url
        assert password not in " ".join(embedded.psql_command(server))
        processes = subprocess.run(
            ["ps", "-eo", "args"], capture_output=True, text=True, check=True
        ).stdout
        assert password not in processes
        assert password not in (pgdata / "server.log").read_text()
        assert embedded.stop(data_dir)
        if server.socket_dir != pgdata:
            assert not server.socket_dir.exists(), "the socket folder outlived its server"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def open_to_others(folder: Path) -> list[str]:
    """Paths under `folder` that other users may read, write or enter (except a copy of the
    wheel's binaries, made as root)."""
    return [
        f"{path} {oct(mode(path))}"
        for path in [folder, *folder.rglob("*")]
        if not any(part.startswith("pginstall-") for part in path.relative_to(folder).parts)
        and not path.is_symlink()
        and mode(path) & 0o007
    ]
