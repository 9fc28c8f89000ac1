"""Migrations are code under test: an empty database upgraded to head matches the models
(what `alembic check` verifies), downgrades to base clean, and upgrades again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from crawler.config import normalise_database_url
from crawler.db import migrate
from crawler.db.models import Base
from crawler.errors import DatabaseUnavailable

pytestmark = pytest.mark.db

# What may remain after a downgrade to base: Alembic's own table (and its primary key).
ALEMBIC_OWN = {"alembic_version", "alembic_version_pkc"}


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


@pytest.fixture
async def empty_db(pg_server_url: str) -> AsyncIterator[str]:
    """A new, empty database on the test server (asyncpg URL form); dropped afterwards."""
    name = f"crawler_migration_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_plain(pg_server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield normalise_database_url(_with_database(pg_server_url, name))
    finally:
        admin = await asyncpg.connect(_plain(pg_server_url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def _compare(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "compare_server_default": True},
    )
    return list(compare_metadata(context, Base.metadata))


async def schema_differences(url: str) -> list[Any]:
    """The differences `alembic check` would report between the models and the database."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_compare)
    finally:
        await engine.dispose()


async def leftovers(url: str) -> list[str]:
    """Everything of ours in the public schema: relations (tables, views, indexes,
    sequences), functions and types, other than Alembic's own version table."""
    conn = await asyncpg.connect(_plain(url))
    try:
        rows = await conn.fetch(
            """
            SELECT c.relkind::text AS kind, c.relname AS name
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public'
            UNION ALL
            SELECT 'function', p.proname FROM pg_proc p
            WHERE p.pronamespace = 'public'::regnamespace
            UNION ALL
            SELECT 'type', t.typname FROM pg_type t
            WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd', 'r')
            ORDER BY 1, 2
            """
        )
    finally:
        await conn.close()
    return [f"{r['kind']}:{r['name']}" for r in rows if r["name"] not in ALEMBIC_OWN]


async def tables(url: str) -> set[str]:
    conn = await asyncpg.connect(_plain(url))
    try:
        rows = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        )
    finally:
        await conn.close()
    return {r["tablename"] for r in rows}


async def version(url: str) -> str | None:
    conn = await asyncpg.connect(_plain(url))
    try:
        return await conn.fetchval("SELECT max(version_num) FROM alembic_version")  # type: ignore[no-any-return]
    finally:
        await conn.close()


def revisions(url: str) -> list[str]:
    """The revision ids from base to head (one line of history)."""
    script = ScriptDirectory.from_config(migrate.alembic_config(url))
    assert len(script.get_heads()) == 1, f"several migration heads: {script.get_heads()}"
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


async def test_upgrade_matches_models_downgrade_cleans_upgrade_again(empty_db: str) -> None:
    assert await tables(empty_db) == set()
    await migrate.upgrade(empty_db)
    head = revisions(empty_db)[-1]
    assert await version(empty_db) == head
    assert set(Base.metadata.tables) <= await tables(empty_db)

    differences = await schema_differences(empty_db)
    assert differences == [], "models and migrations differ (alembic check):\n" + "\n".join(
        map(str, differences)
    )

    await migrate.downgrade(empty_db, "base")
    assert await tables(empty_db) == {"alembic_version"}
    assert await leftovers(empty_db) == []
    assert await version(empty_db) is None

    await migrate.upgrade(empty_db)
    assert await version(empty_db) == head
    assert await schema_differences(empty_db) == []


async def test_each_revision_downgrades_and_upgrades_one_step(empty_db: str) -> None:
    """The stairway: every revision's downgrade undoes exactly its upgrade."""
    history = revisions(empty_db)
    assert history, "no migrations found"
    previous: list[str] = []
    for revision in history:
        await migrate.upgrade(empty_db, revision)
        assert await version(empty_db) == revision
        here = await leftovers(empty_db)
        await migrate.downgrade(empty_db, "-1")
        assert await leftovers(empty_db) == previous, f"downgrade of {revision} left objects"
        await migrate.upgrade(empty_db, revision)
        assert await leftovers(empty_db) == here
        previous = here
    assert await schema_differences(empty_db) == []


async def test_upgrade_twice_is_a_no_op(empty_db: str) -> None:
    await migrate.upgrade(empty_db)
    before = await leftovers(empty_db)
    await migrate.upgrade(empty_db)
    assert await leftovers(empty_db) == before


async def test_a_schema_newer_than_the_crawler_is_a_clear_error(empty_db: str) -> None:
    """An older crawler meeting a database a newer one migrated: no traceback, no crawl."""
    await migrate.upgrade(empty_db)
    conn = await asyncpg.connect(_plain(empty_db))
    try:
        await conn.execute("UPDATE alembic_version SET version_num = '9999'")
    finally:
        await conn.close()
    with pytest.raises(DatabaseUnavailable, match="migrated by a newer version of the crawler"):
        await migrate.upgrade(empty_db)
