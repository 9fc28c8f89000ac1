"""Is this database's schema the one the code expects? A cheap check at every open.

`alembic_version` only says which migration ran last; a `DROP TABLE pages` run since leaves
it unchanged. So after migrating (or finding the database at the head revision) the tables
and views of the head revision are looked up in the catalog, with their columns, in one
query; what is missing is reported as one line (`DatabaseUnavailable`, exit 3).

The head revision is read from the migration files' `revision` / `down_revision` lines, so a
database already at head is opened without importing Alembic.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Mapping

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from crawler.db.models import Base, links_view
from crawler.errors import DatabaseUnavailable

# The views of migrations 0002 and 0005 (README, "Views"); their columns are part of the
# interface too, but only the links view is described in the models.
VIEWS = (
    "broken_links",
    "redirects",
    "duplicate_content",
    "missing_metadata",
    "slowest_pages",
    "orphan_pages",
    "run_changes",
)
_REVISION = re.compile(r"^(down_revision|revision)\b[^=]*=\s*(None|[\"']([^\"']+)[\"'])", re.M)

_CATALOG = text(
    """
    SELECT c.relname AS relation, a.attname AS column_name
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm')
      AND c.relname = ANY(CAST(:names AS text[]))
    """
)
_VERSION = text("SELECT version_num FROM alembic_version")
_HAS_VERSION_TABLE = text("SELECT to_regclass('alembic_version') IS NOT NULL")


def head_revision() -> str:
    """The newest migration: the revision no other migration names as its down_revision."""
    revisions: set[str] = set()
    parents: set[str] = set()
    folder = importlib.resources.files("crawler.migrations") / "versions"
    for entry in folder.iterdir():
        if not entry.name.endswith(".py") or entry.name.startswith("__"):
            continue
        for kind, _raw, value in _REVISION.findall(entry.read_text(encoding="utf-8")):
            if value:
                (revisions if kind == "revision" else parents).add(value)
    heads = revisions - parents
    if len(heads) != 1:  # pragma: no cover - the migration tests hold one head
        raise DatabaseUnavailable(f"the shipped migrations have {len(heads)} heads")
    return heads.pop()


def expected() -> dict[str, frozenset[str]]:
    """Relation name -> the columns it must have (empty: it must only exist)."""
    wanted = {t.name: frozenset(c.name for c in t.columns) for t in Base.metadata.tables.values()}
    wanted[links_view.name] = frozenset(c.name for c in links_view.columns)
    wanted.update({view: frozenset() for view in VIEWS})
    return wanted


def missing(found: Mapping[str, set[str]], wanted: Mapping[str, frozenset[str]]) -> list[str]:
    """What of `wanted` is not in `found`, as short phrases, tables first (the views that
    depend on a dropped table go with it): "table pages", "view links", "pages.title"."""
    tables: list[str] = []
    views: list[str] = []
    columns: list[str] = []
    for name, wanted_columns in sorted(wanted.items()):
        is_view = name in VIEWS or name == links_view.name
        if name not in found:
            (views if is_view else tables).append(f"{'view' if is_view else 'table'} {name}")
            continue
        columns.extend(f"{name}.{column}" for column in sorted(wanted_columns - found[name]))
    return tables + columns + views


async def current_revision(conn: AsyncConnection) -> str | None:
    """The revision alembic_version records, or None (no such table, or empty)."""
    if not (await conn.execute(_HAS_VERSION_TABLE)).scalar():
        return None
    value = (await conn.execute(_VERSION)).scalar()
    return None if value is None else str(value)


async def verify(conn: AsyncConnection, where: str) -> None:
    """Raise DatabaseUnavailable naming what is missing, when anything is."""
    wanted = expected()
    try:
        rows = (await conn.execute(_CATALOG, {"names": sorted(wanted)})).all()
    except DBAPIError as exc:  # pragma: no cover - a catalog query fails only with the server
        raise DatabaseUnavailable(f"cannot check the schema at {where}: {exc.orig}") from None
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(row.relation, set()).add(row.column_name)
    gaps = missing(found, wanted)
    if gaps:
        more = f" and {len(gaps) - 3} more" if len(gaps) > 3 else ""
        raise DatabaseUnavailable(
            f"the crawl database at {where} is damaged: {', '.join(gaps[:3])}{more} missing "
            "(dropped or altered by hand?); restore it from a backup, or use a new database"
        )
