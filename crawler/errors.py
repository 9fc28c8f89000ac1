"""The crawler's exception tree; third-party errors are translated into it at the boundary.

CrawlerError                 base: a clear one-line message, safe to show a user
├── ConfigError              bad flag, value or config file             -> exit 2
├── DatabaseError            the database cannot do what the run needs  -> exit 3
│   ├── DatabaseUnavailable  cannot reach PostgreSQL (or start the embedded one): wait, retry
│   └── DatabaseRefused      the server refused a statement (a bug, a damaged schema, missing
│       │                    rights): report it, waiting will not help
│       └── DatabaseFull     the server's disk is full (SQLSTATE 53100): stop, free space
└── RunLocked                another process runs this crawl            -> exit 75

A fetch never raises for what the other side does: its failures are values
(`FetchResult.error_kind`, a `crawler.kinds.ErrorKind`). Database errors are translated in
one place, `crawler.db.database.translate`.
"""

from __future__ import annotations


class CrawlerError(Exception):
    """Base of every error the crawler raises on purpose."""

    exit_code = 1


class ConfigError(CrawlerError):
    """A user mistake in flags, environment or config file."""

    exit_code = 2


class DatabaseError(CrawlerError):
    """The database cannot do what the run needs; the run stays resumable."""

    exit_code = 3


class DatabaseUnavailable(DatabaseError):
    """PostgreSQL cannot be reached (or the embedded one cannot be started): worth waiting."""


class DatabaseRefused(DatabaseError):
    """The server refused a statement: not worth waiting for, report it."""


class DatabaseFull(DatabaseRefused):
    """The database server's disk is full: no write can succeed until space is freed."""


class RunLocked(CrawlerError):
    """Another process holds this crawl's run lock."""

    exit_code = 75
