"""The one error contract of the database layer: `translate` (crawler.db.database)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from crawler.db.database import describe, translate
from crawler.errors import DatabaseFull, DatabaseRefused, DatabaseUnavailable


class DriverError(Exception):
    """What asyncpg raises (it carries the SQLSTATE)."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class AdaptedError(Exception):
    """SQLAlchemy's adapter of a driver error: its text names the driver's class."""

    def __init__(self, cause: DriverError) -> None:
        super().__init__(f"<class 'asyncpg.exceptions.{type(cause).__name__}'>: {cause}")
        self.sqlstate = cause.sqlstate
        self.__cause__ = cause


def dbapi(message: str, sqlstate: str, kind: type[DBAPIError] = DBAPIError) -> DBAPIError:
    return kind("INSERT …", {}, AdaptedError(DriverError(message, sqlstate)))


DISK_FULL = 'could not extend file "base/16384/2619": No space left on device'


@pytest.mark.parametrize(
    ("name", "error", "expected"),
    [
        ("disk full", dbapi(DISK_FULL, "53100"), DatabaseFull),
        ("missing table", dbapi('relation "fetches" does not exist', "42P01"), DatabaseRefused),
        ("no rights", dbapi("permission denied for table pages", "42501"), DatabaseRefused),
        ("admin shutdown", dbapi("terminating connection", "57P01"), DatabaseUnavailable),
        ("too many clients", dbapi("sorry, too many clients", "53300"), DatabaseUnavailable),
        ("connection lost", dbapi("connection is closed", "08003"), DatabaseUnavailable),
        ("operational", dbapi("server closed", "", OperationalError), DatabaseUnavailable),
        ("socket", ConnectionRefusedError(111, "Connection refused"), DatabaseUnavailable),
        ("timeout", TimeoutError(), DatabaseUnavailable),
    ],
)
def test_translate(name: str, error: BaseException, expected: type[Exception]) -> None:
    assert type(translate(error)) is expected, name


def test_a_full_disk_says_so_in_the_servers_words_without_class_names() -> None:
    message = str(translate(dbapi(DISK_FULL, "53100")))
    assert message == f"the database's disk is full ({DISK_FULL})"
    assert "asyncpg" not in message and "class" not in message


def test_describe_gives_the_servers_line_only() -> None:
    assert describe(dbapi('relation "x" does not exist', "42P01")) == 'relation "x" does not exist'
