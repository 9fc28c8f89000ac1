"""The embedded server's password file, SCRAM verifier and start-failure line, without a server
(the integration tests log in with them)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

from crawler.db import embedded, embedded_access


def test_the_scram_verifier_has_postgresqls_form_and_keys() -> None:
    salt = bytes(range(16))
    verifier = embedded_access.scram_verifier("pencil", salt)
    method, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt_b64 = iterations_salt.split(":")
    stored_b64, server_b64 = keys.split(":")
    assert (method, iterations, base64.b64decode(salt_b64)) == ("SCRAM-SHA-256", "4096", salt)
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    assert base64.b64decode(stored_b64) == hashlib.sha256(client_key).digest()
    assert base64.b64decode(server_b64) == hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    assert embedded_access.scram_verifier("pencil") != embedded_access.scram_verifier("pencil")


def test_the_password_file_is_private_and_read_back(tmp_path: Path) -> None:
    assert embedded_access.read_password(tmp_path) is None
    password = embedded_access.write_password(tmp_path)
    passfile = embedded_access.passfile_of(tmp_path)
    assert passfile.stat().st_mode & 0o777 == 0o600
    assert passfile.read_text() == f"*:*:*:postgres:{password}\n"
    assert embedded_access.read_password(tmp_path) == password
    assert ":" not in password and "\\" not in password and len(password) >= 40
    passfile.write_text("garbage\n")
    assert embedded_access.read_password(tmp_path) is None


def test_the_url_carries_the_password_file_not_the_password(tmp_path: Path) -> None:
    server = embedded.EmbeddedServer(tmp_path / "a b+c", Path("/tmp/s"), True)
    assert server.url == (
        f"postgresql://postgres@/crawler?host=/tmp/s&passfile={tmp_path}/a%20b%2Bc/pgpass"
    )


LOG = """\
2026-12-05 15:38:35.862 UTC [4676] LOG:  database system was not properly shut down
2026-12-05 15:38:36.111 UTC [4677] ERROR:  could not write blocks 24..24 in file "x": {error}
2026-12-05 15:38:36.111 UTC [4676] FATAL:  checkpoint request failed
2026-12-05 15:38:36.139 UTC [4304] LOG:  database system is shut down
"""


def test_a_start_failure_is_one_line_and_a_full_disk_is_said_plainly() -> None:
    full = embedded._why_not_started(Path("/d"), LOG.format(error="No space left on device"), "")
    assert full == "the disk of its data dir /d is full; free some space and run again"
    other = embedded._why_not_started(Path("/d"), LOG.format(error="Input/output error"), "")
    assert other == "checkpoint request failed"
    assert embedded._why_not_started(Path("/d"), "", "pg_ctl: could not start\nmore\n") == (
        "pg_ctl: could not start"
    )
