"""Issue 20: no Chromium outlives `crawler crawl`. A crawl with `--render always` is stopped
while a page is being rendered (SIGINT, SIGTERM, kill -9); then no process of its browser is
left, checked in the process list.

Only this crawl's processes are looked at: those below the crawler when it was stopped, and
those whose command line names its browser's private folder (`crawler-render-<its pid>-`);
other Chromium processes on the machine are never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import psutil
import pytest

from tests.processes import wait_or_kill
from tests.render.conftest import need_browser
from tests.render.crawl_site import serve_app_site
from tests.speed import FAST_ENV

pytestmark = [pytest.mark.db, pytest.mark.timeout(180)]

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


def _live(pids: list[int], marker: str) -> list[int]:
    """Of `pids`, and of the processes whose command line names `marker`, those alive."""
    alive = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        named = any(marker in part for part in proc.info.get("cmdline") or [])
        if (proc.pid in pids or named) and proc.info.get("status") != psutil.STATUS_ZOMBIE:
            alive.append(proc.pid)
    return alive


async def _until_gone(pids: list[int], marker: str, seconds: float = 30.0) -> None:
    """Poll the process list (bounded): there is no event to wait for when another process's
    children exit."""
    async with asyncio.timeout(seconds):
        while _live(pids, marker):  # noqa: ASYNC110
            await asyncio.sleep(0.2)


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"]
)
async def test_no_chromium_outlives_a_stopped_crawl(
    db_url: str, tmp_path: Path, signum: signal.Signals
) -> None:
    browser = need_browser()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")} | FAST_ENV
    async with serve_app_site() as (site, base):
        with (tmp_path / "out").open("wb") as out, (tmp_path / "err").open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "crawler",
                "crawl",
                base + "/busy",
                "--render",
                "always",
                "--browser-path",
                browser,
                "--database-url",
                db_url,
                "--parse-processes",
                "0",
                "--json",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                cwd=tmp_path,
                start_new_session=True,
            )
        try:
            marker = f"crawler-render-{proc.pid}-"
            async with asyncio.timeout(90):
                await site.polled.wait()  # the page's script runs: the render is under way
            below = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
            assert any(pid in below for pid in _live([], marker)), "no browser below the crawl"
            os.kill(proc.pid, signum)
            if signum in EXIT_CODES:
                code = await wait_or_kill(proc, 60)
                errors = (tmp_path / "err").read_text(errors="replace")
                assert code == EXIT_CODES[signum], errors
                assert "Traceback" not in errors, errors
            else:
                await wait_or_kill(proc, 30)
            await _until_gone(below, marker)
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
