"""What the workers learn of hosts, held until the pool's feeder tells the frontier.

A booked request that finished frees its host's slot and sets the host's next start
(`HostDone`); a Retry-After blocks the host for every process of the run; robots.txt's
Crawl-delay puts a floor under its delay. Workers note these without waiting for the
database (`done`, `block`, `min_delay`); the feeder writes them all (`flush`) just before
its next claim, so the claim sees the slots they freed, and one statement carries many.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from crawler.records import HostDone
from crawler.seams import Frontier


class HostPacer:
    """`wake` is called when a slot is freed: the feeder may claim for it at once, before
    the task's page is even written."""

    def __init__(self, wake: Callable[[], None] | None = None) -> None:
        self.wake = wake
        self.finished: list[HostDone] = []
        self.blocks: dict[int, float] = {}  # host id -> blocked until (monotonic)
        self.floors: dict[str, float] = {}  # host -> Crawl-delay

    def done(self, done: HostDone) -> None:
        self.finished.append(done)
        if self.wake is not None:
            self.wake()

    def block(self, host_id: int, seconds: float) -> None:
        until = time.monotonic() + seconds
        self.blocks[host_id] = max(until, self.blocks.get(host_id, until))

    def min_delay(self, host: str, seconds: float) -> None:
        self.floors[host] = seconds

    async def flush(self, book: Frontier) -> None:
        """Write what was noted; what a failed write did not take is noted again."""
        floors, self.floors = self.floors, {}
        blocks, self.blocks = self.blocks, {}
        finished, self.finished = self.finished, []
        try:
            for host, seconds in floors.items():
                await book.set_min_delay(host, seconds)
            now = time.monotonic()
            for host_id, until in blocks.items():
                if until > now:
                    await book.block(host_id, until - now)
            await book.finish(finished)
        except BaseException:
            self.floors = {**floors, **self.floors}
            self.blocks = {**blocks, **self.blocks}
            self.finished = finished + self.finished
            raise
