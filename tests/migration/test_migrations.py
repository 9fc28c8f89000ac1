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
from tests.sql import plain_url

pytestmark = pytest.mark.db

# What may remain after a downgrade to base: Alembic's own table (and its primary key).
ALEMBIC_OWN = {"alembic_version", "alembic_version_pkc"}


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


@pytest.fixture
async def empty_db(pg_server_url: str) -> AsyncIterator[str]:
    """A new, empty database on the test server (asyncpg URL form); dropped afterwards."""
    name = f"crawler_migration_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(plain_url(pg_server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield normalise_database_url(_with_database(pg_server_url, name))
    finally:
        admin = await asyncpg.connect(plain_url(pg_server_url))
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
    conn = await asyncpg.connect(plain_url(url))
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
    conn = await asyncpg.connect(plain_url(url))
    try:
        rows = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        )
    finally:
        await conn.close()
    return {r["tablename"] for r in rows}


async def version(url: str) -> str | None:
    conn = await asyncpg.connect(plain_url(url))
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
    conn = await asyncpg.connect(plain_url(empty_db))
    try:
        await conn.execute("UPDATE alembic_version SET version_num = '9999'")
    finally:
        await conn.close()
    with pytest.raises(DatabaseUnavailable, match="migrated by a newer version of the crawler"):
        await migrate.upgrade(empty_db)


async def test_links_move_to_arrays_and_back_with_their_order(empty_db: str) -> None:
    """Revision 0005 turns the rows of `links` into a row of arrays a page (`links` becomes
    a view of them); its downgrade turns them back. Order, texts and nofollow survive."""
    await migrate.upgrade(empty_db, "0004")
    conn = await asyncpg.connect(plain_url(empty_db))
    try:
        crawl = await conn.fetchval("INSERT INTO crawls (name) VALUES ('c') RETURNING id")
        pages = [
            await conn.fetchval(
                "INSERT INTO pages (crawl_id, url) VALUES ($1, $2) RETURNING id", crawl, url
            )
            for url in ("https://a.example/", "https://a.example/b")
        ]
        rows = [
            (pages[0], 2, "https://a.example/x", "second", True),
            (pages[0], 1, "https://a.example/b", "first", False),
            (pages[0], 3, "https://a.example/b", None, False),  # no text, a repeated target
            (pages[1], 1, "https://elsewhere.example/", "", False),
        ]
        await conn.executemany(
            "INSERT INTO links (page_id, position, target_url, anchor_text, nofollow) "
            "VALUES ($1, $2, $3, $4, $5)",
            rows,
        )
        read = (
            "SELECT page_id, position, target_url, anchor_text, nofollow FROM links "
            "ORDER BY page_id, position"
        )
        expected = sorted((p, n, url, text or "", nf) for p, n, url, text, nf in rows)

        await migrate.upgrade(empty_db)
        assert [tuple(r) for r in await conn.fetch(read)] == expected
        arrays = await conn.fetchrow("SELECT * FROM page_links WHERE page_id = $1", pages[0])
        assert list(arrays["target_urls"]) == [
            "https://a.example/b",
            "https://a.example/x",
            "https://a.example/b",
        ]
        assert list(arrays["anchor_texts"]) == ["first", "second", ""]
        assert list(arrays["nofollow"]) == [False, True, False]
        # The views that read links are back and answer.
        assert await conn.fetchval("SELECT count(*) FROM broken_links") == 0

        await migrate.downgrade(empty_db, "0004")
        assert [tuple(r) for r in await conn.fetch(read)] == expected
        # Deleting a page deletes its links, before and after.
        await conn.execute("DELETE FROM pages WHERE id = $1", pages[1])
        assert await conn.fetchval("SELECT count(*) FROM links") == 3
        await migrate.upgrade(empty_db)
        await conn.execute("DELETE FROM pages WHERE id = $1", pages[0])
        assert await conn.fetchval("SELECT count(*) FROM page_links") == 0
    finally:
        await conn.close()


async def test_page_text_is_never_compressed_with_pglz(empty_db: str) -> None:
    """Revision 0003: lz4 for `pages.text` on a server built with it (Debian's PostgreSQL
    15), stored uncompressed on one without (the embedded server); 0011, a repeat of it,
    changes nothing either way, its downgrade included."""

    async def storage() -> tuple[str, str, bool]:
        conn = await asyncpg.connect(plain_url(empty_db))
        try:
            row = await conn.fetchrow(
                """
                SELECT a.attstorage::text AS storage, a.attcompression::text AS method,
                       'lz4' = ANY(s.enumvals) AS has_lz4
                FROM pg_attribute a, pg_settings s
                WHERE a.attrelid = 'pages'::regclass AND a.attname = 'text'
                  AND s.name = 'default_toast_compression'
                """
            )
        finally:
            await conn.close()
        assert row is not None
        return row["storage"], row["method"], row["has_lz4"]

    await migrate.upgrade(empty_db, "0010")
    at_0010 = await storage()
    assert at_0010 == (("x", "l", True) if at_0010[2] else ("e", "", False))
    await migrate.upgrade(empty_db, "0011")
    assert await storage() == at_0010
    await migrate.downgrade(empty_db, "0010")
    assert await storage() == at_0010
