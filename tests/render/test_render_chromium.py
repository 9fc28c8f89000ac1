"""The browser's launch recipe and private folder (chromium.py), without starting a browser."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from crawler.render import chromium
from crawler.render.chromium import PREFIX, Workdir, chromium_args, find_browser, sweep_stale


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_folders_of_dead_processes_are_swept(tmp_path: Path) -> None:
    dead = tmp_path / f"{PREFIX}{_dead_pid()}-abc"
    alive = tmp_path / f"{PREFIX}{os.getpid()}-abc"
    other = tmp_path / "someone-elses"
    for folder in (dead, alive, other):
        (folder / "profile").mkdir(parents=True)
    sweep_stale(tmp_path)
    assert not dead.exists()
    assert alive.exists() and other.exists()


def test_workdir_is_private_and_removed() -> None:
    workdir = Workdir()
    assert workdir.path.name.startswith(f"{PREFIX}{os.getpid()}-")
    assert stat.S_IMODE(workdir.path.stat().st_mode) == 0o700
    launcher = Path(workdir.launcher("/usr/bin/chromium"))
    if sys.platform == "linux":
        assert launcher.parent == workdir.path
        assert stat.S_IMODE(launcher.stat().st_mode) == 0o700
        assert "PR_SET_PDEATHSIG" in launcher.read_text(encoding="utf-8")
    workdir.close()
    assert not workdir.path.exists()


def test_a_long_temp_folder_falls_back_to_tmp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", "/" + "x" * 80)
    assert chromium.temp_root() == Path("/tmp")


def test_the_launcher_runs_the_program_with_its_arguments(tmp_path: Path) -> None:
    if sys.platform != "linux":
        pytest.skip("the parent-death signal is Linux's")
    workdir = Workdir()
    try:
        echo = subprocess.run(
            [workdir.launcher("/bin/echo"), "hello", "world"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    finally:
        workdir.close()
    assert echo.stdout == "hello world\n"


def test_flags_and_lookup() -> None:
    args = chromium_args()
    assert "--disable-quic" in args and "--no-first-run" in args
    assert not any(a.startswith("--remote-debugging-port") for a in args)
    assert "--no-sandbox" not in args  # Playwright adds it, only as root (chromium_sandbox)
    assert find_browser("/nonexistent/chromium") is None
