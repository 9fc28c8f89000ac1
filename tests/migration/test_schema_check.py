"""The schema check at every open (crawler.db.schema): it knows the head revision without
Alembic and the head revision's tables, views and columns without the models (written out,
and held equal here to the models and to a migrated database), passes on a migrated
database, and names what a hand-made DROP or ALTER took away, even though alembic_version
still says "head" (issue 21, point 5)."""

from __future__ import annotations

import asyncpg
import pytest
from alembic.script import ScriptDirectory

from crawler.db import migrate, schema
from crawler.db.models import Base, links_view
from crawler.errors import DatabaseUnavailable

pytestmark = pytest.mark.db


def test_the_head_revision_is_alembics() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config("postgresql://x/y"))
    assert schema.head_revision() == script.get_current_head()


def test_the_written_out_schema_is_the_models() -> None:
    tables = {t.name: frozenset(c.name for c in t.columns) for t in Base.metadata.tables.values()}
    assert tables == schema.TABLES
    assert schema.VIEWS[links_view.name] == frozenset(c.name for c in links_view.columns)


async def test_the_written_out_schema_is_a_migrated_databases(db_url: str) -> None:
    """Every table and view the migrations make (but alembic_version) is in TABLES or VIEWS,
    with exactly its columns (the views but links: listed with none, they need only exist)."""
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch(
            """
            SELECT c.relname, c.relkind IN ('v', 'm') AS is_view, array_agg(a.attname) AS columns
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm')
              AND c.relname <> 'alembic_version'
            GROUP BY c.relname, c.relkind
            """
        )
    finally:
        await conn.close()
    tables = {row["relname"]: frozenset(row["columns"]) for row in rows if not row["is_view"]}
    views = {row["relname"]: frozenset(row["columns"]) for row in rows if row["is_view"]}
    assert tables == schema.TABLES
    assert set(views) == set(schema.VIEWS)
    checked = {name: columns for name, columns in schema.VIEWS.items() if columns}
    assert {name: views[name] for name in checked} == checked


def test_missing_lists_tables_then_columns_then_views() -> None:
    wanted = {
        "pages": frozenset({"id", "title"}),
        "crawls": frozenset({"id"}),
        "links": frozenset({"page_id"}),
        "run_changes": frozenset(),
    }
    assert schema.missing({"crawls": {"id"}}, wanted) == [
        "table pages",
        "view links",
        "view run_changes",
    ]
    assert schema.missing(
        {"crawls": {"id"}, "pages": {"id"}, "links": {"page_id"}, "run_changes": set()}, wanted
    ) == ["pages.title"]


async def _execute(db_url: str, sql: str) -> None:
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def test_a_migrated_database_passes(db_url: str) -> None:
    await migrate.upgrade(db_url)


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        ("DROP TABLE pages CASCADE", "table pages"),
        ("ALTER TABLE fetches DROP COLUMN outcome CASCADE", "fetches.outcome"),
        ("DROP VIEW orphan_pages", "view orphan_pages"),
    ],
)
async def test_damage_is_named_though_alembic_version_is_current(
    db_url: str, damage: str, named: str
) -> None:
    await _execute(db_url, damage)
    with pytest.raises(DatabaseUnavailable) as info:
        await migrate.upgrade(db_url)
    message = str(info.value)
    assert "damaged" in message and named in message
    assert "\n" not in message
