"""Riding out a database outage: one `DatabaseOutage` for the whole pool, shared by every
part of it that talks to the database (feeder, runner, hosts, sitemaps).

`await outage(operation)` runs a database operation. While the server is away
(`DatabaseUnavailable`) it waits and tries again, saying so on stderr after a few seconds,
up to settings.database_wait; then it gives the run up: the run stays resumable (leases
expire, nothing done is lost). A refusal (`DatabaseRefused`) is not waited for: it goes to
the caller, except a full disk (`DatabaseFull`), which ends the run at once, since no write
can succeed until someone frees space. Giving up records the error as `fatal` and calls
`on_fatal` (the pool's stop) once; `Pool.run` then raises it, or returns DATABASE_FULL.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from crawler.errors import DatabaseError, DatabaseFull, DatabaseUnavailable

log = logging.getLogger("crawler")
T = TypeVar("T")
WARN_AFTER = 3.0  # seconds of outage before it is reported
RETRY_EVERY = 0.5


class DatabaseOutage:
    def __init__(self, wait: float, on_fatal: Callable[[], None]) -> None:
        self.wait = wait
        self.on_fatal = on_fatal
        self.down_since: float | None = None
        self.warned = False
        self.fatal: DatabaseError | None = None

    async def __call__(self, operation: Callable[[], Awaitable[T]]) -> T:
        while True:
            try:
                result = await operation()
            except DatabaseUnavailable as exc:
                await self._wait_out(exc)
                continue
            except DatabaseFull as exc:
                self.give_up(exc)
                raise
            if self.down_since is not None:
                if self.warned:
                    log.warning("database is back; crawling on")
                self.down_since = None
                self.warned = False
            return result

    def give_up(self, error: DatabaseError) -> None:
        """End the run over `error` (the first one given wins)."""
        if self.fatal is None:
            self.fatal = error
            self.on_fatal()

    async def _wait_out(self, exc: DatabaseUnavailable) -> None:
        now = time.monotonic()
        if self.down_since is None:
            self.down_since = now
        down = now - self.down_since
        if self.fatal is not None:  # the run is ending anyway
            raise exc
        if down > self.wait:
            log.error("database unavailable for %.0f s, giving up: %s", down, exc)
            self.give_up(
                DatabaseUnavailable(
                    f"the database was unavailable for {down:.0f} s ({exc}); the run is resumable"
                )
            )
            raise exc
        if down > WARN_AFTER and not self.warned:
            self.warned = True
            log.warning("database unavailable (%s); waiting for it (up to %.0f s)", exc, self.wait)
        await asyncio.sleep(RETRY_EVERY)
