"""The peak RSS a crawl reports (`loop_health.peak_rss_mb`): the process's own high-water mark,
at least its RSS now, and not the memory of the process that started it."""

from __future__ import annotations

import subprocess
import sys

import psutil

from crawler.loop_health import peak_rss_mb

PARENT_MB = 300


def test_the_peak_is_at_least_the_rss_now() -> None:
    now = psutil.Process().memory_info().rss / 2**20
    assert peak_rss_mb() >= now * 0.99


def test_a_child_does_not_report_its_parents_peak() -> None:
    ballast = bytearray(PARENT_MB * 2**20)
    ballast[:: 2**12] = b"\x01" * len(ballast[:: 2**12])  # touch every page: resident
    code = "from crawler.loop_health import peak_rss_mb; print(peak_rss_mb())"
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert psutil.Process().memory_info().rss / 2**20 > PARENT_MB
    assert 0 < float(child.stdout) < PARENT_MB / 2
    del ballast
