"""Starting the system's Chromium so that nothing of it outlives the crawler.

Owns the browser's private working folder and the launch recipe; knows nothing of Playwright.

- `find_browser`: the executable, given (`--browser-path`) or found on PATH.
- `chromium_args`: the flags; `--no-sandbox` only as root (the sandbox needs an unprivileged
  user), no remote-debugging port (Playwright talks to the browser over a pipe).
- `Workdir`: a 0700 folder per process (`crawler-render-<pid>-*` in `temp_root()`) that
  holds the profile Playwright makes and a launcher script. The launcher asks the kernel to
  SIGKILL Chromium when its parent, Playwright's driver, dies (`PR_SET_PDEATHSIG`), then
  execs Chromium: when the crawler is killed with SIGKILL, the driver sees its stdin close
  and exits, and Chromium goes with it. `Workdir.close` removes the folder; folders left by
  processes that no longer exist are removed by the next start (`sweep_stale`).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import psutil

__all__ = [
    "CHROMIUM_FLAGS",
    "Workdir",
    "as_root",
    "chromium_args",
    "find_browser",
    "sweep_stale",
    "temp_root",
]

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--disable-breakpad",
    "--no-default-browser-check",
    "--mute-audio",
    # WebRTC would reach addresses that no request rule sees.
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
)
PREFIX = "crawler-render-"
MAX_ROOT = 40
# Python, in the launcher: die with the parent (the driver), unless it is already gone.
_LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(1)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def find_browser(path: str | None) -> str | None:
    """The Chromium executable to launch: `path` if it is one, else the first on PATH."""
    if path is not None:
        found = shutil.which(path)
        return found if found is not None else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found is not None:
            return found
    return None


def as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def chromium_args() -> list[str]:
    """Chromium's flags beyond Playwright's own (which add --remote-debugging-pipe)."""
    return list(CHROMIUM_FLAGS)


def sweep_stale(tmp: Path) -> None:
    """Remove the working folders of crawler processes that no longer exist."""
    with contextlib.suppress(OSError):
        for entry in tmp.iterdir():
            if not entry.name.startswith(PREFIX):
                continue
            pid = entry.name[len(PREFIX) :].split("-", 1)[0]
            try:
                mine = entry.is_dir() and entry.stat().st_uid == os.getuid()
            except OSError:
                continue
            if mine and pid.isdigit() and not psutil.pid_exists(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)


def temp_root() -> Path:
    """Where working folders go: the temp folder, or /tmp when its path is too long for the
    browser's sockets (a Unix socket path has at most 107 bytes; Chromium puts one three
    levels below)."""
    tmp = Path(tempfile.gettempdir())
    if len(str(tmp)) > MAX_ROOT and Path("/tmp").is_dir():
        return Path("/tmp")
    return tmp


class Workdir:
    """The browser's private folder: 0700, removed at close."""

    def __init__(self) -> None:
        tmp = temp_root()
        sweep_stale(tmp)
        self.path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=tmp))
        os.chmod(self.path, 0o700)

    def launcher(self, executable: str) -> str:
        """A script that starts `executable` so it dies with its parent; its path."""
        script = self.path / "chromium"
        if sys.platform != "linux":
            return executable
        script.write_text(
            "#!/bin/sh\n"
            f"exec {shlex.quote(sys.executable)} -I -S -c {shlex.quote(_LAUNCHER)} "
            f'"$PPID" {shlex.quote(executable)} "$@"\n',
            encoding="utf-8",
        )
        script.chmod(0o700)
        return str(script)

    def processes(self) -> list[psutil.Process]:
        """Live processes whose command line names this folder (the browser's)."""
        marker = str(self.path)
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info.get("cmdline") or []
            if any(marker in part for part in cmdline):
                found.append(proc)
        return found

    def close(self) -> None:
        """Kill what is left of the browser (it should be gone), then remove the folder."""
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                proc.kill()
        shutil.rmtree(self.path, ignore_errors=True)
