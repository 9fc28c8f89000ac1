"""The crawl's policy for one task, as pure functions that take facts and return decisions.

Before a fetch, `admit` (a host left for the next run, robots.txt, --revisit-after) and then
`schedule` (the host's page budget, how long its host asks us to wait) say what to do with a
claimed task:

- `Retry`      robots.txt answered 5xx/429: record the attempt, try again later
- `Failed`     refused (robots.txt, the host's page budget), or its host is unreachable
               (robots.txt got no answer: the real kind, `connect`, `timeout` ...) or left
               for the next run (a Retry-After over --max-crawl-delay): recorded, not fetched
- `Skip`       not due (--revisit-after): marked done, its stored links followed
- `Postpone`   its host asked us to stay away for longer than POSTPONE_AFTER: given back
- `Fetch`      fetch it, with the conditional headers of the last fetch

After a fetch, `judge` says what its result means:

- `Retry`      a retryable failure with attempts left: again after a delay (a timeout
               only once: the time limits, not the retries, bound a URL's time)
- `NotModified` a 304 to our conditional request: the stored page stands
- `Failed`     a failure of the network or the server (HTTP 4xx/5xx included); a 429/5xx
               whose Retry-After is over --max-crawl-delay at once (`deferral`)
- `Redirected` the final URL differs: the target is crawled under its own URL
- `NotHtml`    recorded without parsing
- `Parse`      parse it and store the page

Decisions without fields are singletons, so the usual path allocates nothing. The runner
(crawler.runner) applies each one; nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

from crawler.config import Settings
from crawler.kinds import ErrorKind
from crawler.politeness import backoff, retry_after
from crawler.records import CrawlTask, FetchResult
from crawler.robots import RobotsPolicy
from crawler.scope import Decision as ScopeDecision
from crawler.urls import canonicalize

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
THROTTLE_STATUSES = frozenset({429, 503})  # "too many requests": the host sets the pace
POSTPONE_AFTER = 2.0  # seconds a host may keep a worker waiting before its task goes back
# Seconds before a task whose robots.txt answered 5xx/429 is tried again (--retries times):
# with the defaults a one-URL crawl of such a site ends in well under two minutes.
ROBOTS_RETRY_DELAY = 10.0
# robots.txt that got no answer at all: the host is down (RFC 9309: assume disallowed). Its
# URLs fail at once with the real kind, counted as errors, none of them fetched.
UNREACHABLE_KINDS = frozenset({ErrorKind.DNS, ErrorKind.CONNECT, ErrorKind.TIMEOUT, ErrorKind.TLS})
# A request that timed out is tried again only this many times (within --retries): each
# try may take the whole total_timeout, and retries must not multiply that.
TIMEOUT_RETRIES = 1


@dataclass(frozen=True, slots=True)
class Fetch:
    headers: dict[str, str] | None = None  # If-None-Match / If-Modified-Since


@dataclass(frozen=True, slots=True)
class Skip:
    pass


@dataclass(frozen=True, slots=True)
class Postpone:
    delay: float


@dataclass(frozen=True, slots=True)
class Retry:
    result: FetchResult  # the attempt, as recorded in `fetches`
    delay: float


@dataclass(frozen=True, slots=True)
class Failed:
    result: FetchResult  # with its error_kind


@dataclass(frozen=True, slots=True)
class NotModified:
    pass


@dataclass(frozen=True, slots=True)
class Redirected:
    target: str  # the canonical final URL


@dataclass(frozen=True, slots=True)
class NotHtml:
    pass


@dataclass(frozen=True, slots=True)
class Parse:
    pass


FETCH = Fetch()
SKIP = Skip()
NOT_MODIFIED = NotModified()
NOT_HTML = NotHtml()
PARSE = Parse()

Admission = Retry | Failed | Skip
Schedule = Failed | Postpone | Fetch
Verdict = Retry | NotModified | Failed | Redirected | NotHtml | Parse


def admit(
    task: CrawlTask,
    settings: Settings,
    robots: RobotsPolicy | None,
    deferred: str | None = None,
) -> Admission | None:
    """May the task go on to `schedule`? None if so. `robots` is its origin's policy (None
    with --ignore-robots); `deferred` why its host is left for the next run (`deferral`), if
    it is. Disallowed: recorded once. robots.txt unavailable means disallowed (RFC 9309): if
    it got no answer (the host is down) the task fails with that kind (`connect`, `timeout`
    ...); while it answers 5xx/429 the task is retried later, then fails as `robots`."""
    if deferred is not None:
        return Failed(refused(task, ErrorKind.HTTP_STATUS, deferred))
    if robots is not None and not robots.allowed(task.url):
        if not robots.temporary:
            return Failed(refused(task, ErrorKind.ROBOTS, "disallowed by robots.txt"))
        if robots.failure in UNREACHABLE_KINDS:
            assert robots.failure is not None
            return Failed(refused(task, robots.failure, robots.reason))
        result = refused(task, ErrorKind.ROBOTS, robots.reason)
        if task.attempts <= settings.retries:
            return Retry(result, ROBOTS_RETRY_DELAY)
        return Failed(result)
    if not due(task, settings.revisit_after):
        return SKIP
    return None


def schedule(task: CrawlTask, budget: ScopeDecision | None, host_wait: float) -> Schedule:
    """Fetch now? `budget` is the host's page budget's answer on the task's first attempt
    (None on later ones: it was charged then), `host_wait` the seconds its host asks us to
    wait (Retry-After, backoff): beyond POSTPONE_AFTER the task goes back for later rather
    than hold a worker that other hosts could use meanwhile."""
    if budget is not None and not budget.follow:
        return Failed(refused(task, ErrorKind.HOST_BUDGET, budget.reason))
    if host_wait > POSTPONE_AFTER:
        return Postpone(host_wait)
    headers = validators(task)
    return FETCH if headers is None else Fetch(headers)


def judge(
    task: CrawlTask,
    result: FetchResult,
    settings: Settings,
    host_wait: float,
    rng: random.Random | None = None,
) -> Verdict:
    """What a fetch's result means for the task (`host_wait`: as for `schedule`)."""
    reason = deferral(result, settings)
    if reason is not None:
        return Failed(dataclasses.replace(result, error_kind=ErrorKind.HTTP_STATUS, error=reason))
    if result.retryable and task.attempts <= retries_of(result, settings):
        return Retry(result, retry_delay(result, task.attempts, host_wait, settings, rng))
    if result.error_kind is not None:
        return Failed(result)
    status = result.status or 0
    if status == 304 and (task.etag or task.last_modified):
        # Unchanged since the last run: the page stays as stored, and so do its links.
        return NOT_MODIFIED
    if status >= 400 or status < 200:
        return Failed(
            dataclasses.replace(result, error_kind=ErrorKind.HTTP_STATUS, error=f"HTTP {status}")
        )
    final = canonicalize(result.final_url) or task.url
    if final != task.url:
        return Redirected(final)
    if result.encoding is None or not is_html(result.content_type):
        return NOT_HTML
    return PARSE


def due(task: CrawlTask, revisit_after: float | None) -> bool:
    """Fetch now? Not when --revisit-after says the last fetch is recent enough, unless a
    sitemap's lastmod says the page changed since."""
    if not revisit_after or task.age is None or task.sitemap_newer:
        return True
    return task.age >= revisit_after


def validators(task: CrawlTask) -> dict[str, str] | None:
    """Conditional request headers from what the last fetch of the page stored."""
    if not (task.etag or task.last_modified):
        return None
    headers = {}
    if task.etag:
        headers["If-None-Match"] = task.etag
    if task.last_modified:
        headers["If-Modified-Since"] = task.last_modified
    return headers


def retries_of(result: FetchResult, settings: Settings) -> int:
    """How many retries a failure of this kind gets: --retries, a timeout TIMEOUT_RETRIES."""
    if result.error_kind is ErrorKind.TIMEOUT:
        return min(settings.retries, TIMEOUT_RETRIES)
    return settings.retries


def asked_wait(result: FetchResult, settings: Settings) -> float | None:
    """The one Retry-After rule: the seconds the response asks us to wait, up to
    --max-crawl-delay (the longest pause a host may set, as for Crawl-delay; a longer one
    leaves the host for the next run: `deferral`); None when it names no (readable) pause."""
    seconds = retry_after(result.header("retry-after"))
    if seconds is None:
        return None
    return min(seconds, settings.max_crawl_delay)


def deferral(result: FetchResult, settings: Settings) -> str | None:
    """Why the host of a 429/5xx answer is left for the next run: its Retry-After asks for a
    longer pause than --max-crawl-delay. Waiting hours would hold the run (a new run fetches
    the host's URLs again); None for any other answer."""
    if result.error_kind is not None or not result.retryable:
        return None
    seconds = retry_after(result.header("retry-after"))
    if seconds is None or seconds <= settings.max_crawl_delay:
        return None
    return (
        f"HTTP {result.status} with Retry-After {seconds:.0f}s, over --max-crawl-delay "
        f"{settings.max_crawl_delay:g}s: the host's URLs are left for the next run"
    )


def retry_delay(
    result: FetchResult,
    attempt: int,
    host_wait: float,
    settings: Settings,
    rng: random.Random | None = None,
) -> float:
    """Seconds before the `attempt`-th retry: what Retry-After asks; for a 429/503 without
    one, the backoff or the host's own wait, whichever is longer; else the backoff."""
    seconds = asked_wait(result, settings)
    if seconds is not None:
        return seconds
    if result.status in THROTTLE_STATUSES:
        return max(backoff(attempt, rng=rng), host_wait)
    return backoff(attempt, rng=rng)


def refused(task: CrawlTask, kind: ErrorKind, reason: str) -> FetchResult:
    """The record of a task that was not fetched, and why."""
    return FetchResult(task.url, task.url, None, None, error_kind=kind, error=reason)


def is_html(content_type: str | None) -> bool:
    return content_type is None or content_type.split(";")[0].strip().lower() in HTML_TYPES
