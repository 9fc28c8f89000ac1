"""The process's health during a crawl: the event loop's lag, measured, the collector,
tuned, and the peak RSS, as the kernel keeps it (`peak_rss_mb`).

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
import resource
import sys
from collections import deque
from collections.abc import Iterator

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


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB: the kernel's high-water mark, so
    nothing between samples is missed. On Linux that is VmHWM (/proc/self/status), not
    getrusage's ru_maxrss, which Linux carries over from the process that started this one
    (a 400 MB parent's child says 400 MB); elsewhere ru_maxrss (bytes on macOS)."""
    with contextlib.suppress(OSError), open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024
