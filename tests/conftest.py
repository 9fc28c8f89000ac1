"""Shared fixtures: a real PostgreSQL (embedded unless CRAWLER_TEST_DATABASE_URL names one),
migrated once into a template database and cloned for every test that asks for `db_url`."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from crawler.config import normalise_database_url
from crawler.db import embedded, migrate
from tests.sql import plain_url

# One template a test session: sessions that share a server (CRAWLER_TEST_DATABASE_URL) do
# not drop each other's.
TEMPLATE = f"crawler_test_template_{uuid.uuid4().hex[:8]}"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def _admin(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(plain_url(url))


async def _make_template(server_url: str) -> None:
    conn = await _admin(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
    finally:
        await conn.close()
    await migrate.upgrade(normalise_database_url(_with_database(server_url, TEMPLATE)))


async def _drop_template(server_url: str) -> None:
    conn = await _admin(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A server URL (its admin database) for the whole session."""
    given = os.environ.get("CRAWLER_TEST_DATABASE_URL")
    if given:
        asyncio.run(_make_template(given))
        try:
            yield given
        finally:
            asyncio.run(_drop_template(given))
        return
    folder = Path(tempfile.mkdtemp(prefix="crawler-test-pg-"))
    folder.chmod(0o755)
    server = embedded.start(folder)
    try:
        url = server.url
        asyncio.run(_make_template(url))
        yield url
    finally:
        embedded.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def db_url(pg_server_url: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test (a clone of the template), asyncpg form."""
    name = f"crawler_test_{uuid.uuid4().hex[:12]}"
    conn = await _admin(pg_server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    finally:
        await conn.close()
    yield normalise_database_url(_with_database(pg_server_url, name))
    conn = await _admin(pg_server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
