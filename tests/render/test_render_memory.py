"""2,000 renders with the browser's memory staying bounded (contexts are recycled).

Slow (minutes: every render waits for the network to be idle for 500 ms), so it runs only
with CRAWLER_SLOW_TESTS=1. It prints the figures: the summed RSS of the driver and every
browser process after the warm-up and at its peak.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os

import psutil
import pytest

from crawler.config import Settings
from crawler.fetch import Fetcher
from crawler.render.browser import BrowserRenderer
from tests.render.conftest import options, rules_for
from tests.render.site import Site

RENDERS = 2_000
WARM_UP = 200
CONCURRENCY = 4

pytestmark = [
    pytest.mark.timeout(1800),
    pytest.mark.skipif(
        os.environ.get("CRAWLER_SLOW_TESTS") != "1", reason="slow: set CRAWLER_SLOW_TESTS=1"
    ),
]


def _browser_rss() -> int:
    """Summed RSS of every process below this one (Playwright's driver and the browser)."""
    total = 0
    for proc in psutil.Process().children(recursive=True):
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


async def test_two_thousand_renders_keep_the_browser_bounded(
    chromium: str, site: tuple[Site, str]
) -> None:
    _, base = site
    async with Fetcher(Settings(seeds=(base + "/spa",))) as fetcher:
        static = await fetcher.fetch(base + "/spa")
    opts = dataclasses.replace(options(chromium), concurrency=CONCURRENCY)
    samples: list[int] = []
    failed = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(RENDERS):
        queue.put_nowait(n)

    async with BrowserRenderer(opts, rules_for()) as renderer:

        async def worker() -> None:
            nonlocal failed
            while True:
                try:
                    n = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                result = await renderer.render(static)
                failed += result.error_kind is not None
                if n % 100 == 99:
                    samples.append(_browser_rss())

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        assert renderer.renders == RENDERS
    warm = samples[WARM_UP // 100 - 1]
    peak = max(samples[WARM_UP // 100 :])
    mib = 1024 * 1024
    print(
        f"\nrenders={RENDERS} failed={failed} rss_after_{WARM_UP}={warm / mib:.0f} MiB "
        f"peak_after={peak / mib:.0f} MiB last={samples[-1] / mib:.0f} MiB"
    )
    assert failed == 0
    assert peak <= warm * 1.5 + 150 * mib, [s // mib for s in samples]
