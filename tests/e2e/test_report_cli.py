"""`crawler report` as a user runs it, on its mistakes: one line on stderr, exit 2, no file
(the report itself is tested in a browser: test_report_browser.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.processes import crawler_cli

pytestmark = pytest.mark.db

CHILD_TIMEOUT = 60.0


async def _report(*args: str, db_url: str) -> tuple[int, str]:
    done = await crawler_cli("report", *args, db_url=db_url, seconds=CHILD_TIMEOUT)
    return done.code, done.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "crawler: there is no crawl in this database yet\n"),
        (("--name", "nope"), "crawler: there is no crawl named 'nope'\n"),
        (("--run", "7"), "crawler: there is no run 7\n"),
    ],
)
async def test_nothing_to_report(db_url: str, tmp_path: Path, args, message) -> None:
    out = tmp_path / "report.html"
    code, err = await _report("--out", str(out), *args, db_url=db_url)
    assert (code, err) == (2, message)
    assert os.listdir(tmp_path) == []


async def test_a_folder_that_is_not_there(db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "missing" / "report.html"
    code, err = await _report("--out", str(out), db_url=db_url)
    assert code == 2
    assert err == f"crawler: cannot write {out}: there is no folder {out.parent}\n"
