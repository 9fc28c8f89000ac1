"""The one door into PostgreSQL: the engine, the shared sessionmakers, and `translate`.

Every unit of work is a short session from one of the two sessionmakers, and every error
the driver raises on the way is translated by `translate`, the one place that reads them:

- `Database.execute` / `Database.first`: one statement in a short autocommit session (one
  round trip; the unit of the crawl's writes: crawler.db.writer), run again on a deadlock;
- `Database.transaction()`: a short session in one transaction, for reads and for the few
  writes of several statements (crawls, runs).

The one connection held longer is the crawl lock's (db/runs.py, an advisory lock that lives
as long as its connection); its errors go through `translate` too.

A lost or refused connection becomes `DatabaseUnavailable` (wait and retry); a statement the
server refuses becomes `DatabaseRefused` (a bug, a damaged schema, missing rights: report
it), and a full disk `DatabaseFull`. Nothing above db/ sees a driver's class or wording.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from sqlalchemy import Executable, Row, event, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from crawler.errors import DatabaseError, DatabaseFull, DatabaseRefused, DatabaseUnavailable

# What a lost or refused connection looks like, from asyncpg through SQLAlchemy.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    socket.gaierror,
    asyncio.TimeoutError,
    OperationalError,
    InterfaceError,
)


DB_ERRORS: tuple[type[BaseException], ...] = (DBAPIError, *CONNECTION_ERRORS)

# The send buffer asked for on a Unix-socket connection (the kernel caps it at
# net.core.wmem_max and doubles what it grants; see _widen_send_buffer).
SEND_BUFFER = 4 << 20

# The execution option of `Database.uncounted`: statements not counted in `statements`.
UNCOUNTED = "crawler_uncounted"

# Deadlock detected, serialization failure: the transaction can simply run again.
RETRY_SQLSTATES = frozenset({"40P01", "40001"})
RETRIES = 5
DISK_FULL = "53100"  # "could not extend file ...: No space left on device"
# Server shutting down, crash recovery, too many connections: the server will be back.
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def sqlstate(exc: DBAPIError) -> str:
    return getattr(exc.orig, "sqlstate", None) or ""


def is_disconnect(exc: DBAPIError) -> bool:
    """Did this error come from a lost or refused connection (server restart, failover)?"""
    code = sqlstate(exc)
    return bool(
        exc.connection_invalidated
        or isinstance(exc, OperationalError | InterfaceError)
        or code.startswith("08")
        or code in UNAVAILABLE_SQLSTATES
    )


def translate(exc: BaseException) -> DatabaseError:
    """The crawler's error for an error of the driver (a DBAPIError or a CONNECTION_ERROR)."""
    if isinstance(exc, DBAPIError):
        code = sqlstate(exc)
        if code == DISK_FULL:
            return DatabaseFull(f"the database's disk is full ({describe(exc)})")
        if not is_disconnect(exc):
            return DatabaseRefused(describe(exc))
    return DatabaseUnavailable(f"lost the database: {describe(exc)}")


def libpq_parts(url: str) -> tuple[str, str | None]:
    """A libpq URL (postgresql://) without its password, and the password."""
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    password = unquote(parts.password) if parts.password is not None else None
    netloc = parts.netloc.rsplit("@", 1)
    if len(netloc) == 2:
        user = netloc[0].split(":", 1)[0]
        parts = parts._replace(netloc=f"{user}@{netloc[1]}")
    return urlunsplit(parts), password


def redact(url: str) -> str:
    """The URL with any password replaced, for messages."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


def describe(exc: BaseException) -> str:
    """One line for a database error, without credentials or the driver's class names."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        # SQLAlchemy's adapter of asyncpg's error; the error itself is its cause.
        exc = exc.orig.__cause__ or exc.orig
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return redact(message)


class Database:
    """One AsyncEngine and its two sessionmakers (`expire_on_commit=False`) for the process."""

    def __init__(self, url: str, *, pool_size: int = 10, application_name: str = "crawler") -> None:
        self.url = url
        self.application_name = application_name
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=4,
            pool_recycle=1800,
            connect_args={
                "server_settings": {
                    "application_name": application_name,
                    # A commit need not wait for its WAL flush: an OS crash can lose the
                    # last fraction of a second of pages, never consistency (those tasks
                    # are simply crawled again). It makes each page write much cheaper on
                    # slow disks.
                    "synchronous_commit": "off",
                },
                "timeout": 10,
            },
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # Single-statement units of work (a page write, a claim) need no BEGIN/COMMIT round
        # trips: one statement is atomic on its own. Same pool, autocommit connections.
        self.autocommit_sessionmaker = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )
        # The statements of the crawl; those of opening the database (`uncounted`) are not.
        self.statements = 0
        self.uncounted = self.engine.execution_options(**{UNCOUNTED: True})
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._count)
        event.listen(self.engine.sync_engine, "connect", _widen_send_buffer)

    def _count(self, conn: Any, *args: Any) -> None:
        if not conn.get_execution_options().get(UNCOUNTED):
            self.statements += 1

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A short-lived session in one transaction; errors translated (`translate`)."""
        try:
            async with self.sessionmaker() as session, session.begin():
                yield session
        except DB_ERRORS as exc:
            raise translate(exc) from None

    async def first(self, statement: Executable, params: dict[str, Any]) -> Row[Any] | None:
        """`execute`, and the first row, if any."""
        rows = await self.execute(statement, params)
        return rows[0] if rows else None

    async def execute(self, statement: Executable, params: dict[str, Any]) -> list[Row[Any]]:
        """Run one statement as its own transaction (a short autocommit session: one round
        trip) and return its rows. A deadlock or serialization failure rolled the statement
        back whole, so it is run again; other errors are translated (`translate`)."""
        for attempt in range(RETRIES):
            try:
                async with self.autocommit_sessionmaker() as session:
                    result = await session.execute(statement, params)
                    return list(result.all()) if result.returns_rows else []  # type: ignore[attr-defined]
            except DBAPIError as exc:
                if sqlstate(exc) in RETRY_SQLSTATES and attempt < RETRIES - 1:
                    await asyncio.sleep(0.01 * (attempt + 1))
                    continue
                raise translate(exc) from None
            except CONNECTION_ERRORS as exc:
                raise translate(exc) from None
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


def _widen_send_buffer(dbapi_connection: Any, _record: Any) -> None:
    """A larger send buffer for a connection over a Unix socket (the embedded server's).

    A batch statement carries its pages' text, often more than a Unix socket's default
    buffer holds. asyncio then sends the rest only once the server has read the first part
    and the loop comes round to it again, one or two turns of a busy loop later: a tenth of
    each batch's time, and the single writer is the crawl's bottleneck. Asking for more
    than net.core.wmem_max gets wmem_max, doubled: twice the default buffer even on an
    untuned system. TCP connections are left to the kernel's own send-buffer autotuning,
    which setting a size would turn off. asyncpg keeps its transport private: if that ever
    changes, nothing is done.
    """
    transport = getattr(getattr(dbapi_connection, "driver_connection", None), "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family != socket.AF_UNIX:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
