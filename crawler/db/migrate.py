"""Apply the Alembic revisions under migrations/ (shipped as crawler.migrations), then check
the schema (`crawler.db.schema`): a database whose tables were dropped by hand is reported,
not trusted because its alembic_version is current.

A database already at the head revision is only checked: Alembic is imported only to migrate.
The check runs on the engine it is given (the crawl's own, whose connection is already open:
no second connection to set up), or on one of its own.
"""

from __future__ import annotations

import asyncio
import importlib.resources
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from crawler.db import schema
from crawler.db.database import DB_ERRORS, describe, redact, translate
from crawler.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from alembic.config import Config


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(importlib.resources.files("crawler.migrations")))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _upgrade(url: str, revision: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


async def _at_head_or_verify(url: str, engine: AsyncEngine | None, *, check_only: bool) -> bool:
    """True when the database is at the head revision and its schema is whole. With
    `check_only`, a damaged schema raises DatabaseUnavailable; without, a database below
    head answers False (to be migrated)."""
    checker = create_async_engine(url, poolclass=NullPool) if engine is None else engine
    try:
        async with checker.connect() as conn:
            if not check_only and await schema.current_revision(conn) != schema.head_revision():
                return False
            await schema.verify(conn, redact(url))
            return True
    finally:
        if engine is None:
            await checker.dispose()


async def upgrade(url: str, revision: str = "head", *, engine: AsyncEngine | None = None) -> None:
    """Migrate the database at `url` to `revision`, in a thread (Alembic's API is sync); at
    head, check that the schema is whole (DatabaseUnavailable when it is not), on `engine`
    if given (an engine of `url`)."""
    try:
        if revision == "head" and await _at_head_or_verify(url, engine, check_only=False):
            return
        await _alembic_upgrade(url, revision)
        if revision == "head":
            await _at_head_or_verify(url, engine, check_only=True)
    except DB_ERRORS as exc:
        # Unavailable or refused (rights to create tables, say), as `translate` has it.
        kind = type(translate(exc))
        raise kind(f"cannot migrate PostgreSQL at {redact(url)}: {describe(exc)}") from None


async def _alembic_upgrade(url: str, revision: str) -> None:
    from alembic.util.exc import CommandError

    try:
        await asyncio.to_thread(_upgrade, url, revision)
    except CommandError as exc:  # e.g. a schema revision this version does not know
        hint = (
            ": its schema was migrated by a newer version of the crawler; upgrade this one"
            if "Can't locate revision" in str(exc)
            else ""
        )
        raise DatabaseUnavailable(
            f"cannot use PostgreSQL at {redact(url)}: {str(exc).rstrip('.')}{hint}"
        ) from None


async def downgrade(url: str, revision: str) -> None:
    from alembic import command

    await asyncio.to_thread(command.downgrade, alembic_config(url), revision)
