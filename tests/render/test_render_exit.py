"""No Chromium outlives the crawler: after SIGINT, SIGTERM or SIGKILL of the process that
renders, every process below it is gone (checked in the process list), and its private
folder is removed (at once on a clean exit; after kill -9, by the next start's sweep)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from crawler.render.chromium import sweep_stale
from tests.processes import wait_or_kill
from tests.render.site import Site

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).parents[2]


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _marked(marker: str) -> list[int]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        named = any(marker in part for part in proc.info.get("cmdline") or [])
        with contextlib.suppress(psutil.NoSuchProcess):
            if named and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
    return found


async def _until_gone(pids: list[int], marker: str, seconds: float = 30.0) -> None:
    """Poll the process list (bounded) until none of `pids` and no process naming `marker`
    is alive: there is no event to wait for when another process's children exit."""
    async with asyncio.timeout(seconds):
        while _alive(pids) or _marked(marker):  # noqa: ASYNC110
            await asyncio.sleep(0.2)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temp folder with a short path (the browser's socket paths must stay short)."""
    path = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _exists(path: str) -> bool:
    return Path(path).exists()


def _browser(pids: list[int]) -> int:
    """The browser's main process among `pids` (the one Playwright talks to over a pipe)."""
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            cmdline = psutil.Process(pid).cmdline()
            if "--remote-debugging-pipe" in cmdline and not any(
                a.startswith("--type=") for a in cmdline
            ):
                return pid
    raise AssertionError("no browser process found")


def _kill_left(pids: list[int], marker: str) -> None:
    """After a failure: end what this test started and left (by pid)."""
    for pid in {*_alive(pids), *_marked(marker)}:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    ("sig", "with_driver"),
    [
        (signal.SIGINT, False),
        (signal.SIGTERM, False),
        (signal.SIGKILL, False),
        # The driver killed too, and the browser stopped so that it cannot notice its pipe
        # closing: only its parent-death signal (chromium.py's launcher) ends it.
        (signal.SIGKILL, True),
    ],
    ids=["SIGINT", "SIGTERM", "SIGKILL", "SIGKILL-driver-too-browser-stopped"],
)
async def test_no_browser_process_outlives_the_crawler(
    chromium: str,
    site: tuple[Site, str],
    short_tmp: Path,
    sig: signal.Signals,
    with_driver: bool,
) -> None:
    _, base = site
    env = {**os.environ, "TMPDIR": str(short_tmp)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.render.render_child",
        base,
        chromium,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(90):
            line = await proc.stdout.readline()
        started = json.loads(line)
        workdir, pids = started["workdir"], started["pids"]
        assert Path(workdir).parent == short_tmp and _marked(workdir)
        assert len(pids) >= 3  # the driver, Chromium and its helpers
        if with_driver:
            os.kill(_browser(pids), signal.SIGSTOP)
        os.kill(proc.pid, sig)
        if with_driver:
            for pid in started["driver"]:
                os.kill(pid, signal.SIGKILL)
        code = await wait_or_kill(proc, 60)
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    assert code != 0
    try:
        await _until_gone(pids, workdir)
    except TimeoutError:
        _kill_left(pids, workdir)
        raise AssertionError(f"left behind: {_alive(pids)}") from None
    if sig is signal.SIGKILL:
        sweep_stale(short_tmp)  # what the next start does
    assert not _exists(workdir)
