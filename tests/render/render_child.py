"""A crawler stand-in for test_render_exit: starts the browser, then renders a page that
never goes idle until a signal ends it. SIGTERM cancels the main task, as the crawler does.

Usage: python -m tests.render.render_child BASE_URL CHROMIUM
Prints one JSON line once the browser runs: its private folder, the ids of the processes
below it and of its own children (Playwright's driver).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import psutil

from crawler.config import Settings
from crawler.fetch import HttpFetcher
from crawler.render.browser import BrowserRenderer
from crawler.render.contract import RenderOptions
from tests.render.conftest import rules_for


async def main(base: str, chromium: str) -> None:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    options = RenderOptions(browser_path=chromium, navigation_timeout=60, settle_timeout=600)
    async with HttpFetcher(Settings(seeds=(base + "/",))) as fetcher:
        spa = await fetcher.fetch(base + "/spa")
        busy = await fetcher.fetch(base + "/busy")
    async with BrowserRenderer(options, rules_for()) as renderer:
        await renderer.render(spa)
        assert renderer.workdir is not None
        me = psutil.Process()
        below = [p.pid for p in me.children(recursive=True)]
        driver = [p.pid for p in me.children()]
        line = {"workdir": str(renderer.workdir.path), "pids": below, "driver": driver}
        print(json.dumps(line), flush=True)
        await renderer.render(busy)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
