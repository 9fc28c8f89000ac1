"""The engine's connections: a Unix-socket connection gets a wider send buffer, TCP keeps the
kernel's autotuned one."""

from __future__ import annotations

import socket

import asyncpg
import pytest

from crawler.db.database import Database
from tests.sql import plain_url

pytestmark = pytest.mark.db


def _send_buffer(connection: asyncpg.Connection) -> tuple[int, int]:
    """(address family, SO_SNDBUF) of an asyncpg connection's socket."""
    sock = connection._transport.get_extra_info("socket")
    return sock.family, sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)


async def test_unix_socket_connections_get_a_wider_send_buffer(db_url: str) -> None:
    plain = await asyncpg.connect(plain_url(db_url))
    try:
        family, default = _send_buffer(plain)
    finally:
        await plain.close()
    db = Database(db_url)
    try:
        async with db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            widened_family, widened = _send_buffer(raw.driver_connection)
    finally:
        await db.dispose()
    assert widened_family == family
    if family == socket.AF_UNIX:
        assert widened > default
    else:
        assert widened == default
