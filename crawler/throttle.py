"""Adaptive politeness: the gap between a host's request starts, from its answers.

Pure: values in, values out. A host's pace is one number, its delay (seconds between the
starts of two requests to it); after each answer, `Throttle.after` gives the next one with
the reason. Two modes:

- fixed (the user gave `--delay N`): the delay is N whatever the host's answers, so
  `--delay 0` measures raw speed and `--delay 1` gives exactly one second;
- adaptive (no `--delay`, the default), AutoThrottle's rule (Scrapy): after an answer that
  took `latency`, the target delay is `latency / target_concurrency`, and the next delay is
  the mean of the current one and the target (smoothing); an error or an error status may
  not lower it (errors are often fast); it stays within [min_delay, max_delay].
  A new host starts at `start_delay`, before anything is known of it.

In both modes a 429 or 503 answer backs off: the delay doubles (at least to
BACKOFF_FLOOR, jittered by the `rand` passed in, at most max_delay), and each later good
answer halves what is left above the target (in adaptive mode that is the smoothing
itself). Retry-After and robots.txt's
Crawl-delay are not decided here: the frontier blocks the host for a Retry-After and keeps
the Crawl-delay as a floor under whatever delay this module chooses.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# The defaults of adaptive mode: a host answering in 50 ms gets two requests a second, one
# answering in 1 s one every 2 s, one answering in 10 s one every 20 s.
START_DELAY = 1.0  # seconds: a host's first gap, before any answer is known
TARGET_CONCURRENCY = 0.5  # a host spends at most about half its time answering us
MIN_DELAY = 0.5  # seconds: at most two requests a second to the fastest host
MAX_DELAY = 60.0  # seconds (AutoThrottle's default): a request a minute at the slowest
BACKOFF_FLOOR = 1.0  # seconds: the first backoff step of a host that had no delay
THROTTLED = frozenset({429, 503})
SNAP = 0.01  # seconds: a relaxing delay this close to its fixed value takes it


class PaceMode(StrEnum):
    FIXED = "fixed"
    ADAPTIVE = "adaptive"


class PaceReason(StrEnum):
    FIXED = "fixed"  # --delay given: the delay is the user's
    LATENCY = "latency"  # moved toward latency / target_concurrency
    HELD = "held"  # an error answer, which may not lower the delay
    BACKOFF = "backoff"  # 429/503: the delay doubled
    RELAX = "relax"  # fixed mode after a backoff: halfway back toward the delay


@dataclass(frozen=True, slots=True)
class Pace:
    delay: float
    reason: PaceReason


@dataclass(frozen=True, slots=True)
class Throttle:
    """The pacing rule of a run, built once from the settings."""

    mode: PaceMode
    delay: float = 0.0  # fixed mode: the delay
    start_delay: float = START_DELAY
    target_concurrency: float = TARGET_CONCURRENCY
    min_delay: float = MIN_DELAY
    max_delay: float = MAX_DELAY

    def __post_init__(self) -> None:
        if self.target_concurrency <= 0:
            raise ValueError("target concurrency must be positive")
        if not 0 <= self.min_delay <= self.max_delay:
            raise ValueError("delays must satisfy 0 <= min_delay <= max_delay")
        if self.delay < 0 or self.start_delay < 0:
            raise ValueError("delays must not be negative")

    @classmethod
    def from_delay(cls, delay: float | None) -> Throttle:
        """Fixed at `delay` when the user gave one, else adaptive with the defaults."""
        if delay is None:
            return cls(PaceMode.ADAPTIVE)
        return cls(PaceMode.FIXED, delay=delay, max_delay=max(MAX_DELAY, delay))

    @property
    def first(self) -> float:
        """The delay of a host nothing is known of yet."""
        if self.mode is PaceMode.FIXED:
            return self.delay
        return self._bounded(self.start_delay)

    def after(self, delay: float, latency: float, status: int | None, *, rand: float = 0.5) -> Pace:
        """The host's next delay, given its current one and an answer that took `latency`
        seconds with `status` (None: no answer, a network error). `rand` in [0, 1) jitters
        a backoff step by up to a quarter either way."""
        if status in THROTTLED:
            step = max(delay * 2, BACKOFF_FLOOR) * (0.75 + rand / 2)
            return Pace(min(step, self.max_delay), PaceReason.BACKOFF)
        if self.mode is PaceMode.FIXED:
            if delay <= self.delay:
                return Pace(self.delay, PaceReason.FIXED)
            if not _good(status):
                return Pace(delay, PaceReason.HELD)
            relaxed = (delay + self.delay) / 2
            if relaxed - self.delay < SNAP:
                return Pace(self.delay, PaceReason.FIXED)
            return Pace(relaxed, PaceReason.RELAX)
        target = self._bounded(max(latency, 0.0) / self.target_concurrency)
        smoothed = self._bounded((delay + target) / 2)
        if smoothed < delay and not _good(status):
            return Pace(delay, PaceReason.HELD)
        return Pace(smoothed, PaceReason.LATENCY)

    def _bounded(self, delay: float) -> float:
        return min(max(delay, self.min_delay), self.max_delay)


def _good(status: int | None) -> bool:
    return status is not None and status < 400
