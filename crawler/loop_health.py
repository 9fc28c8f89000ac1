"""The process's health during a crawl: the event loop's lag, measured, the collector,
tuned, and the peak RSS, sampled (`PeakRss`).

`LagMeter.run` wakes every LAG_INTERVAL and records how late it woke: the crawl reports the
p50, p99 and max (`loop_lag_ms` in the summary). `tuned_gc` is held around a crawl: what
the process built to get there (modules, the CLI, SQLAlchemy's and aiohttp's setup) lives
as long as the crawl, so it is frozen out of the collector's walks, and the young
generation is collected every GC_YOUNG allocations instead of 700: most of a page's objects
die young anyway, and each full collection of the unfrozen heap held the loop for tens of
milliseconds (README, "Performance").
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections import deque
from collections.abc import Iterator
from typing import Any

import psutil

LAG_INTERVAL = 0.05
GC_YOUNG = 10_000  # allocations between collections of the young generation, while crawling


class LagMeter:
    def __init__(self) -> None:
        self.lags: deque[float] = deque(maxlen=200_000)  # milliseconds late, a wake-up

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_INTERVAL)
            self.lags.append(max(loop.time() - before - LAG_INTERVAL, 0.0) * 1000)

    def summary(self) -> dict[str, float]:
        if not self.lags:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0}
        ordered = sorted(self.lags)

        def pick(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

        return {"p50": pick(0.5), "p99": pick(0.99), "max": round(ordered[-1], 2)}


@contextlib.contextmanager
def tuned_gc() -> Iterator[None]:
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(GC_YOUNG, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


class PeakRss:
    """Samples this process's RSS every half second (and once at the end)."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak_mb = 0.0

    def sample(self) -> None:
        self.peak_mb = max(self.peak_mb, self.process.memory_info().rss / 2**20)

    @contextlib.contextmanager
    def sampling(self) -> Any:
        async def loop() -> None:
            while True:
                self.sample()
                await asyncio.sleep(0.5)

        task = asyncio.create_task(loop())
        try:
            yield self
        finally:
            task.cancel()
            self.sample()
