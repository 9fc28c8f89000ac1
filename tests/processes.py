"""Child processes of the tests: wait for one, and never leave it behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal


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
