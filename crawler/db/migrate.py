"""Apply the Alembic revisions under migrations/ (shipped as crawler.migrations)."""

from __future__ import annotations

import asyncio
import importlib.resources

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError

from crawler.db.database import DB_ERRORS, describe, redact, translate
from crawler.errors import DatabaseUnavailable


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(importlib.resources.files("crawler.migrations")))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _upgrade(url: str, revision: str) -> None:
    command.upgrade(alembic_config(url), revision)


async def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` to `revision`, in a thread (Alembic's API is sync)."""
    try:
        await asyncio.to_thread(_upgrade, url, revision)
    except DB_ERRORS as exc:
        # Unavailable or refused (rights to create tables, say), as `translate` has it.
        kind = type(translate(exc))
        raise kind(f"cannot migrate PostgreSQL at {redact(url)}: {describe(exc)}") from None
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
    await asyncio.to_thread(command.downgrade, alembic_config(url), revision)
