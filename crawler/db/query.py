"""Ad-hoc SQL for `crawler sql`, and small read-only questions about the server."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from crawler.db.database import Database
from crawler.errors import ConfigError, DatabaseFull, DatabaseRefused


async def run_sql(db: Database, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one statement; return its column names and rows (none for a command)."""
    try:
        async with db.transaction() as session:
            result = await session.execute(text(sql.replace(":", r"\:")))
            if not result.returns_rows:  # type: ignore[attr-defined]
                return [], []
            return list(result.keys()), [tuple(row) for row in result.all()]
    except DatabaseFull:
        raise
    except DatabaseRefused as exc:  # the user's SQL, refused: a user mistake
        raise ConfigError(f"SQL error: {exc}") from None


async def other_clients(db: Database) -> int:
    """Client connections to the server other than this process's pool."""
    sql = text(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
        "AND coalesce(application_name, '') <> :app"
    )
    async with db.transaction() as session:
        return int((await session.execute(sql, {"app": db.application_name})).scalar_one())
