"""Ad-hoc SQL for `crawler sql`, and small read-only questions about the server.

A statement runs in a read-only transaction unless the caller asks to write: a mistyped
`DROP` or `UPDATE` then fails with a clear line instead of damaging the crawl. It runs on a
plain asyncpg connection (no engine: `crawler sql` answers sooner without importing
SQLAlchemy) as one prepared statement, so a string with several statements is refused, and
the column types and the command tag (`UPDATE 3`) come with the rows. json, jsonb and interval
values are read as PostgreSQL's own text, so they are shown as psql shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg

from crawler.errors import ConfigError, DatabaseUnavailable

if TYPE_CHECKING:
    from crawler.db.database import Database

# Types read as the server's text rather than decoded by the driver.
TEXT_TYPES = ("json", "jsonb", "interval")
READ_ONLY_SQLSTATE = "25006"
CONNECT_TIMEOUT = 10.0
_OTHER_CLIENTS = (
    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
    "AND coalesce(application_name, '') <> {app}"
)


@dataclass(frozen=True)
class SqlResult:
    """What one statement returned: columns with their type names, rows, and the command
    tag (`SELECT 2`, `UPDATE 3`, `CREATE TABLE`)."""

    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    status: str


def _lost(exc: BaseException) -> DatabaseUnavailable:
    from crawler.db.database import describe

    return DatabaseUnavailable(f"lost the database: {describe(exc)}")


async def _connect(url: str, application_name: str) -> asyncpg.Connection:
    """A plain asyncpg connection to `url` (either URL form), or DatabaseUnavailable."""
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    try:
        return await asyncpg.connect(
            dsn,
            timeout=CONNECT_TIMEOUT,
            server_settings={"application_name": application_name},
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        from crawler.db.database import describe, redact

        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL at {redact(url)}: {describe(exc)}"
        ) from None


async def run_sql(
    url: str, sql: str, *, write: bool = False, application_name: str = "crawler"
) -> SqlResult:
    """Run one statement on the database at `url`, read-only unless `write`."""
    conn = await _connect(url, application_name)
    try:
        for name in TEXT_TYPES:
            await conn.set_type_codec(
                name, schema="pg_catalog", encoder=str, decoder=str, format="text"
            )
        async with conn.transaction(readonly=not write):
            statement = await conn.prepare(sql)
            attributes = statement.get_attributes()
            rows = [tuple(row) for row in await statement.fetch()]
            status = statement.get_statusmsg() or ""
    except asyncpg.PostgresError as exc:
        raise _sql_error(exc) from None
    except (OSError, TimeoutError, asyncpg.InterfaceError) as exc:
        raise _lost(exc) from None
    finally:
        await conn.close()
    return SqlResult(
        columns=tuple(a.name for a in attributes),
        types=tuple(a.type.name for a in attributes),
        rows=rows,
        status=status,
    )


def _sql_error(exc: asyncpg.PostgresError) -> Exception:
    from crawler.db.database import describe

    code = getattr(exc, "sqlstate", None) or ""
    if code.startswith("08") or code in ("57P01", "57P02", "57P03"):
        return _lost(exc)
    if code == READ_ONLY_SQLSTATE:
        return ConfigError(
            f"SQL error: {describe(exc)} (crawler sql reads only; add --write to change the "
            "database)"
        )
    if "multiple commands" in str(exc):
        return ConfigError("SQL error: give one statement at a time")
    return ConfigError(f"SQL error: {describe(exc)}")


async def other_clients_at(url: str, application_name: str) -> int:
    """Client connections to the server at `url` other than those named `application_name`
    (this process's)."""
    conn = await _connect(url, application_name)
    try:
        return int(await conn.fetchval(_OTHER_CLIENTS.format(app="$1"), application_name))
    finally:
        await conn.close()


async def other_clients(db: Database) -> int:
    """Client connections to the server other than this process's pool."""
    from sqlalchemy import text

    async with db.transaction() as session:
        sql = text(_OTHER_CLIENTS.format(app=":app"))
        return int((await session.execute(sql, {"app": db.application_name})).scalar_one())
