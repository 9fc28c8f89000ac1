"""The embedded server started in a thread while the crawl's modules load.

A crawl with no database URL needs the embedded server, and its start (initdb too, the first
time) takes about as long as importing the crawl's modules (aiohttp, SQLAlchemy): they are
processes of their own and one Python thread, so `crawler crawl` begins the start before
those imports and both run at once. The crawl takes the server when it opens its database
(`take`), and from then on stops it as it stops a server it started itself. A command that
ends before that (an error, Ctrl-C) waits for the start and stops the server if this start
launched it (`close`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import Future
from pathlib import Path

from crawler.db import embedded
from crawler.errors import CrawlerError


class EarlyStart:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.taken = False
        self._server: Future[embedded.EmbeddedServer] = Future()
        # Running from the start: cancelling the crawl's wait (Ctrl-C) cannot cancel it, so
        # the thread's result always lands and `close` finds it.
        self._server.set_running_or_notify_cancel()
        threading.Thread(target=self._start, name="embedded-start").start()

    def _start(self) -> None:
        try:
            self._server.set_result(embedded.start(self.data_dir))
        except BaseException as exc:  # handed to whoever waits: `take` raises it
            self._server.set_exception(exc)

    async def take(self) -> embedded.EmbeddedServer:
        """The started server (or the start's error); the caller stops it from now on."""
        server = await asyncio.wrap_future(self._server)
        self.taken = True
        return server

    def close(self) -> None:
        """Unless the crawl took the server: wait for the start, then stop the server if
        this start launched it and `crawler db start` does not keep it running."""
        if self.taken:
            return
        self.taken = True
        try:
            server = self._server.result()
        except Exception:
            return  # the command's own error is the one reported, not the start's
        if server.started_here and not embedded.kept_running(server.data_dir):
            with contextlib.suppress(CrawlerError, OSError):
                embedded.stop(server.data_dir)
