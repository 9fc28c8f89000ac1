"""When may a host be fetched next: minimum delay, crawl-delay, Retry-After and backoff.

Pure: the clock is passed in. One `HostClock` per host; `Hosts` (crawler.hosts) asks
`reserve(now)` for how long to wait before its next request, and reports throttling
answers: `block_until` for a Retry-After (read by the one rule, `decide.asked_wait`),
`throttled` for a 429/503 without one (the host's delay doubles, with jitter, up to a cap),
and the delay relaxes back to its base after a quiet period. `backoff` is the retry delay's
jitter; `retry_after` reads the header's two forms.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

THROTTLE_FLOOR = 1.0  # seconds: the first backoff step of a host that never had a delay
THROTTLE_CAP = 60.0
QUIET_PERIOD = 60.0  # seconds without throttling before the delay relaxes one step


@dataclass(slots=True)
class HostClock:
    delay: float = 0.0
    next_at: float = 0.0
    base_delay: float | None = None
    throttled_at: float = 0.0

    def reserve(self, now: float) -> float:
        """Book the next request slot; return the seconds to wait for it."""
        self._relax(now)
        start = max(now, self.next_at)
        self.next_at = start + self.delay
        return start - now

    def waiting(self, now: float) -> float:
        """Seconds until the host may be asked again (without booking)."""
        return max(self.next_at - now, 0.0)

    def block_until(self, when: float) -> None:
        self.next_at = max(self.next_at, when)

    def throttled(self, now: float, rng: random.Random | None = None) -> None:
        """The host said 'too many' without saying how long: back off exponentially."""
        if self.base_delay is None:
            self.base_delay = self.delay
        rand: float = (rng or random).random()
        step = max(self.delay * 2, THROTTLE_FLOOR) * (0.75 + rand / 2)
        self.delay = min(step, THROTTLE_CAP)
        self.throttled_at = now
        self.block_until(now + self.delay)

    def _relax(self, now: float) -> None:
        if self.base_delay is not None and now - self.throttled_at > QUIET_PERIOD:
            self.delay = max(self.base_delay, self.delay / 2)
            self.throttled_at = now
            if self.delay <= self.base_delay:
                self.base_delay = None


def backoff(
    attempt: int, *, base: float = 1.0, cap: float = 60.0, rng: random.Random | None = None
) -> float:
    """Exponential backoff with full jitter for the `attempt`-th retry (1-based)."""
    rand: float = (rng or random).random()
    return min(cap, base * 2.0 ** max(attempt - 1, 0)) * (0.5 + rand / 2)


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date; `now` is the epoch
    time, the current one unless given)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)
