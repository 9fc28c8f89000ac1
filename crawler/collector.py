"""The cyclic garbage collector at the process's start and end: walks it need not make.

Loading the crawl's modules (SQLAlchemy, aiohttp) allocates some 150,000 objects that live
as long as the process, and the collector walks them again and again while they load, then
in every full collection after. `loading` pauses it meanwhile and then freezes what was
loaded out of its walks (as `loop_health.tuned_gc` freezes the heap for the crawl, and
unfreezes it after). At exit the interpreter collects once more over the whole heap just
before the process ends; frozen first (`frozen_at_exit`), that walk is skipped: nothing is
left that needs it (atexit handlers still run, and refcounting still frees what it frees).
Together about 0.2 s of every `crawler crawl` (README, "Performance").
"""

from __future__ import annotations

import atexit
import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def loading() -> Iterator[None]:
    """No collection inside the block (imports), and what is alive after it frozen."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def frozen_at_exit() -> None:
    """Freeze the heap when the interpreter exits, before its last collection (once, however
    often this is called)."""
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
