"""The cyclic garbage collector at the process's start and end: two pauses it need not make.

Loading the crawl's modules (SQLAlchemy, aiohttp, typer) allocates some 150,000 objects
that live as long as the process, and the collector walks them again and again while they
load; paused meanwhile (`paused`), a crawl starts sooner. At exit the interpreter collects
once more over the whole heap just before the process ends; frozen first (`frozen_at_exit`),
that walk is skipped: nothing is left that needs it (atexit handlers still run, and
refcounting still frees what it frees). Together about 0.15 s of every `crawler crawl`
(README, "Performance"; tests/benchmarks/bench_fixed.py).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No collection inside the block (meant for imports); as before after it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def frozen_at_exit() -> None:
    """Freeze the heap when the interpreter exits, before its last collection (once, however
    often this is called)."""
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
