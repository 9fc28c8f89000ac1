"""The engine and the one shared sessionmaker, with database errors translated into ours."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Executable, Row, event, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from crawler.errors import DatabaseUnavailable

# What a lost or refused connection looks like, from asyncpg through SQLAlchemy.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    socket.gaierror,
    asyncio.TimeoutError,
    OperationalError,
    InterfaceError,
)


# Deadlock detected, serialization failure: the transaction can simply run again.
RETRY_SQLSTATES = frozenset({"40P01", "40001"})
RETRIES = 5


def redact(url: str) -> str:
    """The URL with any password replaced, for messages."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


def describe(exc: BaseException) -> str:
    """One line for a database error, without credentials."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return redact(message)


class Database:
    """One AsyncEngine and one `async_sessionmaker(expire_on_commit=False)` for the process."""

    def __init__(self, url: str, *, pool_size: int = 10, application_name: str = "crawler") -> None:
        self.url = url
        self.application_name = application_name
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=4,
            pool_pre_ping=True,
            pool_recycle=1800,
            connect_args={
                "server_settings": {
                    "application_name": application_name,
                    # A commit need not wait for its WAL flush: an OS crash can lose the
                    # last fraction of a second of pages, never consistency (those tasks
                    # are simply crawled again). It makes each page write several times
                    # cheaper on slow disks.
                    "synchronous_commit": "off",
                },
                "timeout": 10,
            },
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self.statements = 0
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, *args: Any) -> None:
        self.statements += 1

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A short-lived session in one transaction: the unit of every write."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    async def execute_retrying(
        self, statement: Executable, params: dict[str, Any]
    ) -> Row[Any] | None:
        """Run one statement in its own transaction; retry it on deadlock or serialization
        failure (the transaction was rolled back, so running it again is safe)."""
        for attempt in range(RETRIES):
            try:
                async with self.transaction() as session:
                    result = await session.execute(statement, params)
                    return result.first() if result.returns_rows else None  # type: ignore[attr-defined]
            except DBAPIError as exc:
                code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
                if code not in RETRY_SQLSTATES or attempt == RETRIES - 1:
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    async def check(self) -> None:
        """Connect once, or raise DatabaseUnavailable with a clear, password-free line."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except CONNECTION_ERRORS as exc:
            raise DatabaseUnavailable(
                f"cannot connect to PostgreSQL at {redact(self.url)}: {describe(exc)}"
            ) from None
        except DBAPIError as exc:
            raise DatabaseUnavailable(
                f"cannot use PostgreSQL at {redact(self.url)}: {describe(exc)}"
            ) from None

    async def dispose(self) -> None:
        await self.engine.dispose()
