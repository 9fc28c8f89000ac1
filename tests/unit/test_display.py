"""The live display (issue 21, point 8): its counts mean what the summary's mean, and its last
frame does not stay on screen above the summary."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from crawler.display import _progress_table, progress
from crawler.records import RunStats


def _pool() -> Any:
    """What the display reads of a pool: 140 URLs claimed, 16 requests under way."""
    return SimpleNamespace(
        stats=RunStats(fetched=5, errors=1),
        in_flight=set(range(140)),
        hosts=SimpleNamespace(requests_in_flight=16),
    )


def test_in_flight_is_requests_not_claimed_urls() -> None:
    console = Console(record=True, width=120)
    console.print(_progress_table(_pool(), 1.0))
    header, values = console.export_text().splitlines()[:2]
    column = header.split().index("flight") - 1  # "in flight" is two words
    assert values.split()[column] == "16", (header, values)


async def test_the_last_frame_is_cleared(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # a terminal, as far as rich can tell
    async with progress(_pool(), tty=True, quiet=False):
        await asyncio.sleep(0)
    err = capsys.readouterr().err
    assert "in flight" in err
    # After the live display stops (the cursor shown again), its two lines are erased.
    after = err.rsplit("\x1b[?25h", 1)[1]
    assert after.count("\x1b[2K") >= 2, repr(err[-200:])
