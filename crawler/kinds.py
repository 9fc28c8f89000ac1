"""The crawl's closed sets, as StrEnums: how a fetch failed, how a task ended, how a run
ended and what its status is.

A typo in one of these is a type error, and the README's tables are checked against them
(tests/unit/test_kinds.py). Being `str`s, the members are stored and printed as their values.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    """Why a fetch failed (`fetches.error_kind`; README "Error kinds")."""

    HTTP_STATUS = "http_status"
    ROBOTS = "robots"
    BLOCKED_ADDRESS = "blocked_address"
    HOST_BUDGET = "host_budget"
    DNS = "dns"
    CONNECT = "connect"
    TIMEOUT = "timeout"
    TLS = "tls"
    TOO_LARGE = "too_large"
    HEADER_TOO_LARGE = "header_too_large"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    BAD_REDIRECT = "bad_redirect"
    BAD_SCHEME = "bad_scheme"
    URL_TOO_LONG = "url_too_long"
    BAD_RESPONSE = "bad_response"
    BAD_CONTENT = "bad_content"
    INTERNAL = "internal"
    RENDER_TIMEOUT = "render_timeout"  # the browser did not settle within its caps
    RENDER_FAILED = "render_failed"  # the browser or the page crashed or refused


class TaskOutcome(StrEnum):
    """How one claimed task ended in this process (what `RunStats.record` counts)."""

    PAGE = "page"  # an HTML page fetched, parsed and stored
    RECORDED = "recorded"  # a fetch recorded without a page: a failure, a redirect, not HTML
    NOT_MODIFIED = "not_modified"  # answered 304: the stored page stands
    RETRIED = "retried"  # the attempt is recorded and the task queued again for later
    SKIPPED = "skipped"  # not due (--revisit-after): marked done without a fetch
    POSTPONED = "postponed"  # its host asked us to wait: given back, nothing recorded


class RunStatus(StrEnum):
    """A run's status (`crawl_runs.status`)."""

    RUNNING = "running"
    FINISHED = "finished"  # the frontier was emptied
    INTERRUPTED = "interrupted"  # a signal, a budget spent, a full disk: resumable


class RunOutcome(StrEnum):
    """Why `Pool.run` returned."""

    FINISHED = "finished"  # the frontier holds no open row
    LIMIT = "limit"  # the page budget (--max-pages) is spent
    TIMEOUT = "timeout"  # --max-duration passed; in-flight tasks finished
    STOPPED = "stopped"  # stop() (a signal); in-flight tasks had a grace period
    DATABASE_FULL = "database_full"  # the database's disk is full: claiming stopped
