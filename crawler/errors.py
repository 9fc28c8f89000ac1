"""The crawler's exception tree; third-party errors are translated into it at the boundary.

CrawlerError                 base: a clear one-line message, safe to show a user
├── ConfigError              bad flag, value or config file         -> exit 2
├── DatabaseUnavailable      cannot reach or keep PostgreSQL        -> exit 3
├── RunLocked                another process runs this crawl        -> exit 75
└── FetchError               one HTTP exchange failed; `kind` names the error_kind
                             and `retryable` says whether trying again may help
"""

from __future__ import annotations


class CrawlerError(Exception):
    """Base of every error the crawler raises on purpose."""

    exit_code = 1


class ConfigError(CrawlerError):
    """A user mistake in flags, environment or config file."""

    exit_code = 2


class DatabaseUnavailable(CrawlerError):
    """PostgreSQL cannot be reached (or the embedded one cannot be started)."""

    exit_code = 3


class RunLocked(CrawlerError):
    """Another process holds this crawl's run lock."""

    exit_code = 75


class FetchError(CrawlerError):
    """One HTTP exchange failed; `kind` is the documented error_kind."""

    def __init__(self, kind: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
