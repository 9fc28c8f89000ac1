"""Alembic environment (async): migrates the database named by the Alembic config.

`crawler db upgrade` (and every crawl) calls this through crawler.db.migrate; developers can
also run `alembic upgrade head` from the repo root with CRAWLER_DATABASE_URL set. An advisory
lock serialises processes that start at the same moment (several `--join` workers).
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from crawler.config import normalise_database_url
from crawler.db.models import Base

MIGRATION_LOCK = 7_361_501  # pg_advisory_lock key held while migrating

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("CRAWLER_DATABASE_URL")
    if not url:
        raise SystemExit("set CRAWLER_DATABASE_URL (or sqlalchemy.url) to migrate")
    return normalise_database_url(url)


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_async_migrations())
