"""Is this database's schema the one the code expects? A cheap check at every open.

`alembic_version` only says which migration ran last; a `DROP TABLE pages` run since leaves
it unchanged. So after migrating (or finding the database at the head revision) the tables
and views of the head revision are looked up in the catalog, with their columns, in one
query; what is missing is reported as one line (`DatabaseUnavailable`, exit 3).

The head revision is read from the migration files' `revision` / `down_revision` lines, so a
database already at head is opened without importing Alembic; the head revision's tables and
views, with their columns, are written out below (`TABLES`, `VIEWS`), so it is opened without
importing the models either (their declarative classes cost some 50 ms of every start). The
migration tests hold the two equal to the models and to a migrated database.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Mapping

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from crawler.errors import DatabaseUnavailable

# The tables of the head revision (crawler.db.models), with their columns.
TABLES: dict[str, frozenset[str]] = {
    "bodies": frozenset({"body", "content_hash", "created_at", "encoding"}),
    "crawl_runs": frozenset(
        {"crawl_id", "errors", "finished_at", "id", "pages", "started_at", "stats", "status"}
    ),
    "crawls": frozenset({"config", "created_at", "id", "name", "seeds"}),
    "fetches": frozenset(
        {
            "bytes",
            "changed",
            "content_type",
            "elapsed_ms",
            "error",
            "error_kind",
            "fetched_at",
            "final_url",
            "id",
            "not_modified",
            "outcome",
            "redirects",
            "run_id",
            "status",
            "url",
        }
    ),
    "frontier": frozenset(
        {
            "added_at",
            "attempts",
            "depth",
            "host",
            "id",
            "lastmod",
            "lease_owner",
            "lease_until",
            "not_before",
            "run_id",
            "state",
            "url",
        }
    ),
    "frontier_hosts": frozenset(
        {
            "busy_until",
            "delay",
            "host",
            "id",
            "in_flight",
            "min_delay",
            "next_at",
            "queued",
            "run_id",
            "slots",
        }
    ),
    "frontier_runs": frozenset({"first_delay", "host_slots", "run_id"}),
    "page_links": frozenset({"anchor_texts", "nofollow", "page_id", "target_urls"}),
    "page_search": frozenset(
        {"config", "content_hash", "crawl_id", "head", "indexed_at", "page_id", "vector"}
    ),
    "pages": frozenset(
        {
            "bytes",
            "canonical",
            "changed_at",
            "content_hash",
            "content_type",
            "crawl_id",
            "data",
            "depth",
            "description",
            "error_kind",
            "etag",
            "fetched_at",
            "final_url",
            "first_seen_at",
            "gone_at",
            "h1",
            "id",
            "lang",
            "last_modified",
            "last_run_id",
            "meta_robots",
            "rendered",
            "static_hash",
            "status",
            "text",
            "title",
            "url",
        }
    ),
}
# The views of migrations 0002, 0005 and 0006 (README, "Views"). Their columns are part of the
# interface too, but only the links view's (models.links_view) are checked: the others
# must only exist.
VIEWS: dict[str, frozenset[str]] = {
    "links": frozenset({"anchor_text", "nofollow", "page_id", "position", "target_url"}),
    "broken_links": frozenset(),
    "redirects": frozenset(),
    "duplicate_content": frozenset(),
    "missing_metadata": frozenset(),
    "slowest_pages": frozenset(),
    "orphan_pages": frozenset(),
    "run_changes": frozenset(),
    "bad_canonicals": frozenset(),
}
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
    return {**TABLES, **VIEWS}


def missing(found: Mapping[str, set[str]], wanted: Mapping[str, frozenset[str]]) -> list[str]:
    """What of `wanted` is not in `found`, as short phrases, tables first (the views that
    depend on a dropped table go with it): "table pages", "view links", "pages.title"."""
    tables: list[str] = []
    views: list[str] = []
    columns: list[str] = []
    for name, wanted_columns in sorted(wanted.items()):
        is_view = name in VIEWS
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
