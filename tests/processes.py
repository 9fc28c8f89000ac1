"""Child processes of the tests: run the CLI against a database, wait for one, and never
leave it behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass

from tests.speed import FAST_ENV


async def wait_or_kill(proc: asyncio.subprocess.Process, seconds: float) -> int:
    """Wait up to `seconds` for `proc` (started with start_new_session=True); on timeout or
    any error, kill its whole process group. Returns the exit code."""
    try:
        async with asyncio.timeout(seconds):
            await proc.wait()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str


async def crawler_cli(*args: str, db_url: str, seconds: float = 60.0) -> Done:
    """Run `python -m crawler ARGS --database-url DB` without CRAWLER_* from our environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")} | FAST_ENV
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "crawler",
        *args,
        "--database-url",
        db_url,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Done(process.returncode, out.decode(), err.decode())
