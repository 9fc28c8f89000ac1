"""The adaptive-delay rule (crawler.throttle): table-driven cases, and a host on a simulated
clock whose latency rises mid-crawl, paced as the host-aware frontier paces it."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from crawler.throttle import MAX_DELAY, MIN_DELAY, PaceMode, PaceReason, Throttle

ADAPTIVE = Throttle.from_delay(None)
FIXED_1 = Throttle.from_delay(1.0)
FIXED_0 = Throttle.from_delay(0.0)


def test_the_mode_follows_whether_the_user_gave_a_delay() -> None:
    assert ADAPTIVE.mode is PaceMode.ADAPTIVE
    assert ADAPTIVE.first == 1.0
    assert FIXED_1.mode is PaceMode.FIXED and FIXED_1.first == 1.0
    assert FIXED_0.first == 0.0
    assert Throttle.from_delay(120.0).max_delay == 120.0


@pytest.mark.parametrize(
    ("throttle", "delay", "latency", "status", "expected", "reason"),
    [
        # --delay N: N whatever the host does
        (FIXED_1, 1.0, 0.05, 200, 1.0, PaceReason.FIXED),
        (FIXED_1, 1.0, 5.0, 200, 1.0, PaceReason.FIXED),
        (FIXED_1, 1.0, 0.05, 500, 1.0, PaceReason.FIXED),
        (FIXED_0, 0.0, 0.5, 200, 0.0, PaceReason.FIXED),
        # ... except 429/503, which back off and then relax back to N
        (FIXED_1, 1.0, 0.05, 429, 2.0, PaceReason.BACKOFF),
        (FIXED_0, 0.0, 0.05, 503, 1.0, PaceReason.BACKOFF),
        (FIXED_1, 2.0, 0.05, 200, 1.5, PaceReason.RELAX),
        (FIXED_1, 2.0, 0.05, 500, 2.0, PaceReason.HELD),
        (FIXED_1, 1.01, 0.05, 200, 1.0, PaceReason.FIXED),
        (FIXED_0, 0.015, 0.05, 200, 0.0, PaceReason.FIXED),
        # adaptive: halfway toward latency / 0.5, within [0.5, 60]
        (ADAPTIVE, 1.0, 0.05, 200, 0.75, PaceReason.LATENCY),
        (ADAPTIVE, 0.5, 0.05, 200, 0.5, PaceReason.LATENCY),
        (ADAPTIVE, 0.5, 1.0, 200, 1.25, PaceReason.LATENCY),
        (ADAPTIVE, 2.0, 1.0, 200, 2.0, PaceReason.LATENCY),
        (ADAPTIVE, 0.5, 100.0, 200, 30.25, PaceReason.LATENCY),
        (ADAPTIVE, 60.0, 100.0, 200, 60.0, PaceReason.LATENCY),
        (ADAPTIVE, 1.0, 0.05, 304, 0.75, PaceReason.LATENCY),
        # an error answer may raise the delay, never lower it
        (ADAPTIVE, 1.0, 0.01, 500, 1.0, PaceReason.HELD),
        (ADAPTIVE, 1.0, 0.01, None, 1.0, PaceReason.HELD),
        (ADAPTIVE, 1.0, 3.0, 500, 3.5, PaceReason.LATENCY),
        # 429/503: double, at least 1 s, at most 60 s
        (ADAPTIVE, 0.5, 0.05, 429, 1.0, PaceReason.BACKOFF),
        (ADAPTIVE, 2.0, 0.05, 503, 4.0, PaceReason.BACKOFF),
        (ADAPTIVE, 40.0, 0.05, 429, 60.0, PaceReason.BACKOFF),
        (ADAPTIVE, 4.0, 0.05, 200, 2.25, PaceReason.LATENCY),  # and relaxes by smoothing
    ],
)
def test_after_an_answer(
    throttle: Throttle,
    delay: float,
    latency: float,
    status: int | None,
    expected: float,
    reason: PaceReason,
) -> None:
    pace = throttle.after(delay, latency, status)
    assert pace.delay == pytest.approx(expected)
    assert pace.reason is reason


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 1.5), (0.5, 2.0), (0.999, 2.499)])
def test_a_backoff_is_jittered_by_a_quarter(rand: float, expected: float) -> None:
    assert FIXED_1.after(1.0, 0.1, 429, rand=rand).delay == pytest.approx(expected)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"target_concurrency": 0.0},
        {"min_delay": 2.0, "max_delay": 1.0},
        {"min_delay": -1.0},
        {"start_delay": -1.0},
        {"delay": -0.5},
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        Throttle(PaceMode.ADAPTIVE, **kwargs)


def simulate(
    throttle: Throttle, latency: Callable[[float], float], until: float
) -> list[tuple[float, float]]:
    """One host, one request slot, on a simulated clock, paced as the frontier paces it: a
    claim books the next start at start + delay, and the answer moves it to start + the
    throttle's new delay if that is later; the slot is free once the answer came. Returns
    (start, delay booked after it) per request."""
    delay, next_at, free_at = throttle.first, 0.0, 0.0
    starts: list[tuple[float, float]] = []
    for _ in range(10_000):
        start = max(next_at, free_at)
        if start >= until:
            break
        took = latency(start)
        booked = start + delay
        starts.append((start, delay))
        delay = throttle.after(delay, took, 200).delay
        next_at, free_at = max(booked, start + delay), start + took
    return starts


def slow_after_60s(t: float) -> float:
    return 0.05 if t < 60.0 else 1.0


def rate(starts: list[tuple[float, float]], begin: float, end: float) -> float:
    return sum(1 for s, _ in starts if begin <= s < end) / (end - begin)


def test_a_host_that_slows_down_gets_fewer_requests_from_then_on() -> None:
    starts = simulate(ADAPTIVE, slow_after_60s, until=180.0)
    before = rate(starts, 30.0, 60.0)
    assert before == pytest.approx(1 / MIN_DELAY, rel=0.05)  # settled at the floor
    first_slow = next(i for i, (s, _) in enumerate(starts) if s >= 60.0)
    gaps_after = [b[0] - a[0] for a, b in itertools.pairwise(starts[first_slow:])]
    assert min(gaps_after) >= 1.0  # from the first slow answer on: below the old rate
    assert rate(starts, 60.0, 180.0) < before / 2
    assert rate(starts, 120.0, 180.0) == pytest.approx(1 / 2.0, rel=0.05)  # latency / 0.5
    for (start, delay), (next_start, _) in itertools.pairwise(starts):
        assert next_start - start >= max(delay, MIN_DELAY) - 1e-9
    assert all(delay <= MAX_DELAY for _, delay in starts)


def test_a_fixed_delay_is_exact_and_never_adapts() -> None:
    starts = simulate(FIXED_1, slow_after_60s, until=120.0)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(starts)]
    assert all(gap == pytest.approx(1.0) for gap in gaps)
    assert len(starts) == 120
    raw = simulate(FIXED_0, slow_after_60s, until=120.0)
    assert rate(raw, 0.0, 60.0) == pytest.approx(20.0, rel=0.01)  # as fast as it answers
