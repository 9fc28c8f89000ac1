"""Ad-hoc SQL for `crawler sql`, and small read-only questions about the server.

A statement runs in a read-only transaction unless the caller asks to write: a mistyped
`DROP` or `UPDATE` then fails with a clear line instead of damaging the crawl. It runs on the
driver's connection as one prepared statement (so a string with several statements is
refused), which also gives the column types and the command tag (`UPDATE 3`). json, jsonb and
interval values are read as PostgreSQL's own text, so they are shown as psql shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import text

from crawler.db.database import CONNECTION_ERRORS, Database, describe
from crawler.errors import ConfigError, DatabaseUnavailable

# Types read as the server's text rather than decoded by the driver.
TEXT_TYPES = ("json", "jsonb", "interval")
READ_ONLY_SQLSTATE = "25006"


@dataclass(frozen=True)
class SqlResult:
    """What one statement returned: columns with their type names, rows, and the command
    tag (`SELECT 2`, `UPDATE 3`, `CREATE TABLE`)."""

    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    status: str


async def _as_text(conn: Any) -> None:
    for name in TEXT_TYPES:
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=str, decoder=str, format="text"
        )


async def run_sql(db: Database, sql: str, *, write: bool = False) -> SqlResult:
    """Run one statement, read-only unless `write`; return what it returned."""
    try:
        async with db.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            conn = raw.driver_connection
            assert conn is not None
            await _as_text(conn)
            try:
                async with conn.transaction(readonly=not write):
                    statement = await conn.prepare(sql)
                    attributes = statement.get_attributes()
                    rows = [tuple(row) for row in await statement.fetch()]
                    status = statement.get_statusmsg() or ""
            finally:
                # The codecs were for this statement only: the connection is not reused.
                await connection.invalidate()
    except asyncpg.PostgresError as exc:
        code = getattr(exc, "sqlstate", None) or ""
        if code.startswith("08") or code in ("57P01", "57P02", "57P03"):
            raise DatabaseUnavailable(f"lost the database: {describe(exc)}") from None
        if code == READ_ONLY_SQLSTATE:
            raise ConfigError(
                f"SQL error: {describe(exc)} (crawler sql reads only; add --write to change "
                "the database)"
            ) from None
        if "multiple commands" in str(exc):
            raise ConfigError("SQL error: give one statement at a time") from None
        raise ConfigError(f"SQL error: {describe(exc)}") from None
    except asyncpg.InterfaceError as exc:
        raise DatabaseUnavailable(f"lost the database: {describe(exc)}") from None
    except CONNECTION_ERRORS as exc:
        raise DatabaseUnavailable(f"lost the database: {describe(exc)}") from None
    return SqlResult(
        columns=tuple(a.name for a in attributes),
        types=tuple(a.type.name for a in attributes),
        rows=rows,
        status=status,
    )


async def other_clients(db: Database) -> int:
    """Client connections to the server other than this process's pool."""
    sql = text(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
        "AND coalesce(application_name, '') <> :app"
    )
    async with db.transaction() as session:
        return int((await session.execute(sql, {"app": db.application_name})).scalar_one())
