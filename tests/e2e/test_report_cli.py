"""`crawler report` as a user runs it, on its mistakes: one line on stderr, exit 2, no file
(the report itself is tested in a browser: test_report_browser.py)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.db

CHILD_TIMEOUT = 60.0


async def _report(*args: str, db_url: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "crawler",
        "report",
        *args,
        "--database-url",
        db_url,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), CHILD_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, err.decode()


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
