"""What a run's start and end decide and say: pure functions, no I/O.

Which seeds cannot be fetched at all, what stderr says when seeds or settings are given for a
crawl that exists, and how a run ends: `finished` only when its frontier is empty, else
`interrupted` (resumable); and the line that says why a run exits 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from crawler.config import seed_problem
from crawler.kinds import ErrorKind, RunStatus
from crawler.stored import describe_change
from crawler.urls import origin

# The README's error kind for "the URL itself cannot be fetched".
UNFETCHABLE_KIND = ErrorKind.BAD_SCHEME


def why_unfetchable(url: str) -> str | None:
    """Why `url` cannot be fetched at all (not http(s), no host, a bad port), or None."""
    problem = seed_problem(url)
    if problem is None:
        try:
            origin(url)
        except ValueError:
            problem = "is not an http(s) URL with a host"
    return None if problem is None else f"the URL {problem}"


def end_status(open_rows: int) -> RunStatus:
    """How a run ends, from its frontier rows still open (queued, or leased by any process):
    finished only with none; else (a budget spent, a signal) interrupted, to be resumed."""
    return RunStatus.FINISHED if open_rows == 0 else RunStatus.INTERRUPTED


def seeds_news(name: str, stored: tuple[str, ...], given: tuple[str, ...]) -> str | None:
    """What seeds given for the existing crawl `name` (whose seeds are `stored`) do."""
    if not given:
        return None
    if set(given) == set(stored):
        return f"the seeds are those of the existing crawl {name}"
    return (
        f"the seeds join the existing crawl {name}: they replace its seeds "
        f"{' '.join(stored) or '(none)'} (a new run also revisits the pages it knows; "
        "--name NAME starts another crawl)"
    )


def settings_news(
    name: str,
    changed: Mapping[str, tuple[Any, Any]],
    sources: Mapping[str, str] = MappingProxyType({}),
) -> str | None:
    """Which stored settings of the crawl `name` the settings given now change, each named by
    where its new value came from (`sources`: a flag, a CRAWLER_* variable, a config file key;
    a flag when unknown)."""
    if not changed:
        return None
    changes = "; ".join(
        describe_change(key, old, new, sources.get(key)) for key, (old, new) in changed.items()
    )
    return f"crawl {name}: settings changed from the stored ones: {changes}"


def no_seed_news(failures: Iterable[tuple[str, str, str]]) -> str:
    """The one line for a run in which no seed got a response: (url, error_kind, error)."""
    reasons = "; ".join(f"{url}: {kind} ({error})" for url, kind, error in failures)
    return f"no seed could be fetched: {reasons}"


def error_rate_news(error_kinds: Mapping[ErrorKind, int], fetched: int, limit: float) -> str | None:
    """Why the run exits 1, when more of its fetches failed than `--fail-on-error-rate`
    allows (robots refusals are not failures of the site); None when they did not."""
    failed = sum(n for kind, n in error_kinds.items() if kind != ErrorKind.ROBOTS)
    if not fetched or failed / fetched <= limit:
        return None
    return (
        f"{failed} of {fetched} fetches failed ({100 * failed / fetched:.0f}%), more than "
        f"--fail-on-error-rate {limit:g} allows (robots refusals not counted)"
    )
