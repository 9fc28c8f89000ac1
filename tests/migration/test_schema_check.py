"""The schema check at every open (crawler.db.schema): it knows the head revision without
Alembic, passes on a migrated database, and names what a hand-made DROP or ALTER took away,
even though alembic_version still says "head" (issue 21, point 5)."""

from __future__ import annotations

import asyncpg
import pytest
from alembic.script import ScriptDirectory

from crawler.db import migrate, schema
from crawler.errors import DatabaseUnavailable

pytestmark = pytest.mark.db


def test_the_head_revision_is_alembics() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config("postgresql://x/y"))
    assert schema.head_revision() == script.get_current_head()


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
