"""2,000 renders with the browser's memory staying bounded (contexts are recycled).

Slow (minutes: 2,000 renders, each waiting for its page to settle), so it runs only
with CRAWLER_SLOW_TESTS=1. It prints the figures: the summed PSS of the driver and every
browser process after the warm-up, at its peak and at the end (and the peak RSS sum).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os

import psutil
import pytest

from crawler.config import Settings
from crawler.fetch import HttpFetcher
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


def _browser_memory() -> tuple[int, int]:
    """Summed RSS and PSS of every process below this one (Playwright's driver and the
    browser). RSS counts the pages Chromium's processes share once per process; PSS divides
    them among the sharers, so its sum is the memory the browser really holds."""
    rss = pss = 0
    for proc in psutil.Process().children(recursive=True):
        try:
            info = proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss, pss


async def test_two_thousand_renders_keep_the_browser_bounded(
    chromium: str, site: tuple[Site, str]
) -> None:
    _, base = site
    async with HttpFetcher(Settings(seeds=(base + "/spa",))) as fetcher:
        static = await fetcher.fetch(base + "/spa")
    opts = dataclasses.replace(options(chromium), concurrency=CONCURRENCY)
    samples: list[tuple[int, int]] = []
    failed: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(RENDERS):
        queue.put_nowait(n)

    async with BrowserRenderer(opts, rules_for()) as renderer:

        async def worker() -> None:
            while True:
                try:
                    n = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                result = await renderer.render(static)
                if result.error_kind is not None:
                    failed.append(result.error_kind)
                if n % 100 == 99:
                    samples.append(_browser_memory())

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        assert renderer.renders == RENDERS
    mib = 1024 * 1024
    pss = [p for _, p in samples]
    warm, peak = pss[WARM_UP // 100 - 1], max(pss[WARM_UP // 100 :])
    print(
        f"\nrenders={RENDERS} failed={failed} "
        f"pss_after_{WARM_UP}={warm / mib:.0f} MiB pss_peak_after={peak / mib:.0f} MiB "
        f"pss_last={pss[-1] / mib:.0f} MiB rss_sum_peak={max(r for r, _ in samples) / mib:.0f} MiB"
    )
    # A loaded machine may time a few renders out; more than 1% is a fault.
    assert len(failed) <= RENDERS // 100, failed
    assert peak <= warm * 1.5 + 150 * mib, [p // mib for p in pss]
