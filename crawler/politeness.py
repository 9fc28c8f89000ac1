"""When may a host be fetched next: minimum delay, crawl-delay, Retry-After and backoff.

Pure: the clock is passed in. One `HostClock` per host; the pool asks `reserve(now)` for how
long to wait before its next request, and reports throttling answers with `block_until`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(slots=True)
class HostClock:
    delay: float = 0.0
    next_at: float = 0.0

    def reserve(self, now: float) -> float:
        """Book the next request slot; return the seconds to wait for it."""
        start = max(now, self.next_at)
        self.next_at = start + self.delay
        return start - now

    def block_until(self, when: float) -> None:
        self.next_at = max(self.next_at, when)


def backoff(
    attempt: int, *, base: float = 1.0, cap: float = 60.0, rng: random.Random | None = None
) -> float:
    """Exponential backoff with full jitter for the `attempt`-th retry (1-based)."""
    rand: float = (rng or random).random()
    return min(cap, base * 2.0 ** max(attempt - 1, 0)) * (0.5 + rand / 2)
