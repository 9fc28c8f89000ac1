"""The live display (issue 21, point 8): its counts mean what the summary's mean, and its last
frame does not stay on screen above the summary."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from crawler.display import _progress_table, print_summary, progress, summary_line
from crawler.kinds import RunStatus
from crawler.records import RunStats
from crawler.summary import RunTotals, Summary


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


# -- the summary: this invocation and the run's totals, each labelled (issue 21, point 8) ----


def _summary(*, resumed: bool, duration: float, run: RunTotals | None) -> Summary:
    stats = RunStats(pages=870, fetched=900, errors=3, retries=2, started_at=100.0)
    stats.finished_at = 100.0 + duration
    return Summary("pgres", 22, RunStatus.FINISHED, resumed, stats, run=run)


def test_a_resumed_runs_summary_shows_both_counts_labelled() -> None:
    summary = _summary(resumed=True, duration=12.0, run=RunTotals(1170, 1210, 5))
    line = summary_line(summary)
    assert line.startswith("crawl pgres run 22 resumed and finished: "), line
    assert "run totals 1170 pages, 1210 fetched, 5 errors; " in line, line
    assert "this invocation 870 pages, 900 fetched, 3 errors, 2 retries in 12.0s" in line, line
    out = io.StringIO()
    print_summary(summary, tty=True, out=out)
    text = out.getvalue()
    assert "this invocation" in text and "run total" in text, text
    pages = next(row for row in text.splitlines() if row.strip().startswith("pages stored"))
    assert pages.split()[-2:] == ["870", "1170"], text
    # --json and crawl_runs.stats: pages, fetched, errors are the run's; invocation this one's.
    obj = summary.to_json()
    assert (obj["pages"], obj["fetched"], obj["errors"]) == (1170, 1210, 5), obj
    assert obj["invocation"] == {"pages": 870, "fetched": 900, "errors": 3}, obj


def test_a_run_of_one_invocation_shows_one_set_of_counts() -> None:
    summary = _summary(resumed=False, duration=12.0, run=RunTotals(870, 900, 3))
    line = summary_line(summary)
    assert "run totals" not in line and "invocation" not in line, line
    assert ": 870 pages, 900 fetched, 3 errors, 2 retries in 12.0s (75.0 pages/s);" in line
    out = io.StringIO()
    print_summary(summary, tty=True, out=out)
    assert "run total" not in out.getvalue(), out.getvalue()


def test_a_tiny_runs_rate_is_not_shown() -> None:
    """`in 0.0s (83.3 pages/s)` said nothing: a run under a second shows its duration only."""
    summary = _summary(resumed=False, duration=0.012, run=RunTotals(870, 900, 3))
    line = summary_line(summary)
    assert "in 0.01s;" in line and "pages/s" not in line, line
    out = io.StringIO()
    print_summary(summary, tty=True, out=out)
    assert "pages/s" not in out.getvalue() and "0.01 s" in out.getvalue(), out.getvalue()


def test_every_json_key_is_in_the_readme() -> None:
    """The README's table of the --json object names every key (`queued` was missing)."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme.split("The `--json` object", 1)[1].split("\n\n", 2)[1]
    documented = {
        name for row in table.splitlines()[2:] for name in re.findall(r"`(\w+)`", row.split("|")[1])
    }
    keys = set(_summary(resumed=True, duration=1.0, run=RunTotals(1, 1, 0)).to_json())
    assert keys == documented, (keys - documented, documented - keys)
