"""The crawl's policy for one task (crawler.decide), branch by branch, without I/O."""

from __future__ import annotations

import random

import pytest

from crawler import decide
from crawler.config import Settings
from crawler.decide import (
    FETCH,
    NOT_HTML,
    NOT_MODIFIED,
    PARSE,
    SKIP,
    Failed,
    Fetch,
    Postpone,
    Redirected,
    Retry,
)
from crawler.kinds import ErrorKind
from crawler.records import CrawlTask, FetchResult
from crawler.robots import RobotsPolicy
from crawler.scope import FOLLOW
from crawler.scope import Decision as ScopeDecision

URL = "http://a.example/p"
SETTINGS = Settings(retries=2, revisit_after=3600.0, max_crawl_delay=30.0)
ALLOW = RobotsPolicy.from_response(404, b"", "crawler")
DISALLOW = RobotsPolicy.from_response(200, b"User-agent: *\nDisallow: /\n", "crawler")
UNREACHABLE = RobotsPolicy.from_response(503, b"", "crawler")


def task(**kw: object) -> CrawlTask:
    return CrawlTask(7, URL, 1, **kw)  # type: ignore[arg-type]


def answer(status: int | None, **kw: object) -> FetchResult:
    defaults: dict[str, object] = {"content_type": "text/html", "encoding": "utf-8"}
    defaults.update(kw)
    return FetchResult(URL, str(defaults.pop("final_url", URL)), status, **defaults)  # type: ignore[arg-type]


# -- before a fetch --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "the_task", "robots", "expected"),
    [
        ("ignore robots, new page", task(), None, None),
        ("allowed, new page", task(), ALLOW, None),
        ("due: old enough", task(age=7200.0), ALLOW, None),
        ("due: sitemap says changed", task(age=10.0, sitemap_newer=True), ALLOW, None),
        ("not due", task(age=10.0), ALLOW, SKIP),
        ("not due, robots ignored", task(age=10.0), None, SKIP),
    ],
)
def test_admit(
    name: str, the_task: CrawlTask, robots: RobotsPolicy | None, expected: object
) -> None:
    assert decide.admit(the_task, SETTINGS, robots) == expected, name


def test_admit_refuses_what_robots_disallow_once() -> None:
    decision = decide.admit(task(), SETTINGS, DISALLOW)
    assert isinstance(decision, Failed)
    assert decision.result.error_kind is ErrorKind.ROBOTS
    assert decision.result.error == "disallowed by robots.txt"
    assert decision.result.status is None


@pytest.mark.parametrize(
    "kind", [ErrorKind.CONNECT, ErrorKind.TIMEOUT, ErrorKind.DNS, ErrorKind.TLS]
)
def test_admit_fails_the_urls_of_a_host_whose_robots_got_no_answer_with_its_kind(
    kind: ErrorKind,
) -> None:
    """RFC 9309: unreachable means disallowed, so nothing is fetched; but the site is down,
    not refusing us: the URL fails at once with the real kind (an error, not a refusal)."""
    down = RobotsPolicy.from_response(None, b"", "crawler", failure=kind, error="no answer")
    assert not down.allowed(URL) and down.failure is kind
    decision = decide.admit(task(), SETTINGS, down)
    assert isinstance(decision, Failed)
    assert decision.result.error_kind is kind
    assert decision.result.error == f"robots.txt unreachable ({kind}: no answer): " + (
        "disallow all until it can be fetched"
    )


def test_admit_retries_while_robots_is_unavailable_then_fails() -> None:
    early = decide.admit(task(attempts=2), SETTINGS, UNREACHABLE)
    assert isinstance(early, Retry)
    assert early.delay == decide.ROBOTS_RETRY_DELAY
    assert early.result.error_kind is ErrorKind.ROBOTS
    late = decide.admit(task(attempts=3), SETTINGS, UNREACHABLE)
    assert isinstance(late, Failed)
    assert late.result.error == UNREACHABLE.reason


@pytest.mark.parametrize(
    ("name", "the_task", "budget", "wait", "expected"),
    [
        ("plain", task(), FOLLOW, 0.0, FETCH),
        ("later attempt: no budget asked", task(attempts=2), None, 0.0, FETCH),
        ("short wait is waited", task(), FOLLOW, decide.POSTPONE_AFTER, FETCH),
        ("long wait postpones", task(), FOLLOW, 5.0, Postpone(5.0)),
        ("etag", task(etag='"e"'), FOLLOW, 0.0, Fetch({"If-None-Match": '"e"'})),
        (
            "both validators",
            task(etag='"e"', last_modified="Mon"),
            None,
            0.0,
            Fetch({"If-None-Match": '"e"', "If-Modified-Since": "Mon"}),
        ),
    ],
)
def test_schedule(
    name: str, the_task: CrawlTask, budget: ScopeDecision | None, wait: float, expected: object
) -> None:
    assert decide.schedule(the_task, budget, wait) == expected, name


def test_schedule_refuses_a_spent_host_budget_before_waiting() -> None:
    decision = decide.schedule(task(), ScopeDecision(False, "max pages per host (3)"), 60.0)
    assert isinstance(decision, Failed)
    assert decision.result.error_kind is ErrorKind.HOST_BUDGET
    assert decision.result.error == "max pages per host (3)"


# -- after a fetch ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "the_task", "result", "expected"),
    [
        ("html", task(), answer(200), PARSE),
        ("html without type", task(), answer(200, content_type=None), PARSE),
        ("xhtml", task(), answer(200, content_type="application/xhtml+xml"), PARSE),
        ("not html", task(), answer(200, content_type="image/png", encoding=None), NOT_HTML),
        ("html type, no encoding", task(), answer(200, encoding=None), NOT_HTML),
        ("304 to our validators", task(etag='"e"'), answer(304), NOT_MODIFIED),
        ("304 we did not ask for: what came", task(), answer(304), PARSE),
        ("redirected", task(), answer(200, final_url="http://a.example/q"), None),
        ("same url after canonicalisation", task(), answer(200, final_url=URL + "#x"), PARSE),
    ],
)
def test_judge(name: str, the_task: CrawlTask, result: FetchResult, expected: object) -> None:
    verdict = decide.judge(the_task, result, SETTINGS, 0.0)
    if expected is None:
        assert verdict == Redirected("http://a.example/q"), name
    else:
        assert verdict == expected, name


@pytest.mark.parametrize(
    ("name", "the_task", "status"),
    [
        ("404", task(), 404),
        ("500 out of attempts", task(attempts=3), 500),
        ("1xx", task(), 101),
    ],
)
def test_judge_http_failures(name: str, the_task: CrawlTask, status: int) -> None:
    result = answer(status, retryable=status >= 500)
    verdict = decide.judge(the_task, result, SETTINGS, 0.0)
    assert isinstance(verdict, Failed), name
    assert verdict.result.error_kind is ErrorKind.HTTP_STATUS
    assert verdict.result.error == f"HTTP {status}"


def test_judge_keeps_a_fetch_error_as_it_came() -> None:
    result = answer(None, error_kind=ErrorKind.DNS, error="no such host")
    assert decide.judge(task(), result, SETTINGS, 0.0) == Failed(result)


def test_judge_retries_what_may_help_while_attempts_last() -> None:
    result = answer(None, error_kind=ErrorKind.CONNECT, error="refused", retryable=True)
    verdict = decide.judge(task(attempts=2), result, SETTINGS, 0.0, random.Random(1))
    assert isinstance(verdict, Retry)
    assert verdict.result is result
    assert 1.0 <= verdict.delay <= 2.0  # backoff of the second attempt, with jitter
    assert isinstance(decide.judge(task(attempts=3), result, SETTINGS, 0.0), Failed)


def test_judge_retries_a_timeout_once_whatever_the_retries() -> None:
    """Each attempt may take the whole total_timeout: --retries must not multiply that."""
    result = answer(None, error_kind=ErrorKind.TIMEOUT, error="slow", retryable=True)
    many = Settings(retries=5)
    assert isinstance(decide.judge(task(attempts=1), result, many, 0.0), Retry)
    assert decide.judge(task(attempts=2), result, many, 0.0) == Failed(result)
    assert decide.judge(task(attempts=1), result, Settings(retries=0), 0.0) == Failed(result)


@pytest.mark.parametrize("status", [429, 503, 500])
def test_a_retry_after_over_max_crawl_delay_fails_at_once_and_defers_the_host(
    status: int,
) -> None:
    result = answer(status, headers=(("Retry-After", "7200"),), retryable=True)
    verdict = decide.judge(task(), result, SETTINGS, 0.0)
    assert isinstance(verdict, Failed)
    assert verdict.result.error_kind is ErrorKind.HTTP_STATUS
    assert verdict.result.status == status
    reason = decide.deferral(result, SETTINGS)
    assert reason is not None and verdict.result.error == reason
    assert f"HTTP {status} with Retry-After 7200s" in reason and "next run" in reason
    # The host's other URLs: refused before any fetch, before robots.txt is even asked.
    other = decide.admit(task(), SETTINGS, UNREACHABLE, reason)
    assert isinstance(other, Failed)
    assert other.result.error_kind is ErrorKind.HTTP_STATUS and other.result.error == reason


def test_a_retry_after_up_to_max_crawl_delay_is_waited() -> None:
    result = answer(503, headers=(("Retry-After", "30"),), retryable=True)
    assert decide.deferral(result, SETTINGS) is None
    verdict = decide.judge(task(), result, SETTINGS, 0.0)
    assert verdict == Retry(result, 30.0)
    # A Retry-After on an answer that is not retried names no deferral.
    assert decide.deferral(answer(404, headers=(("Retry-After", "7200"),)), SETTINGS) is None


# -- the one Retry-After rule ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "retry_after", "host_wait", "low", "high"),
    [
        ("Retry-After seconds", 503, "12", 0.0, 12.0, 12.0),
        ("Retry-After capped", 429, "86400", 0.0, 30.0, 30.0),
        ("429 without: the host's longer wait", 429, None, 40.0, 40.0, 40.0),
        ("429 without: backoff", 429, None, 0.0, 0.5, 1.0),
        ("500 without: backoff", 500, None, 40.0, 0.5, 1.0),
        ("unreadable Retry-After: backoff", 503, "soon", 0.0, 0.5, 1.0),
    ],
)
def test_retry_delay(
    name: str,
    status: int,
    retry_after: str | None,
    host_wait: float,
    low: float,
    high: float,
) -> None:
    headers = () if retry_after is None else (("retry-after", retry_after),)
    result = answer(status, headers=headers, retryable=True)
    delay = decide.retry_delay(result, 1, host_wait, SETTINGS, random.Random(2))
    assert low <= delay <= high, name


def test_asked_wait_is_the_capped_retry_after() -> None:
    assert decide.asked_wait(answer(503, headers=(("Retry-After", "7"),)), SETTINGS) == 7.0
    assert decide.asked_wait(answer(503, headers=(("retry-after", "99999"),)), SETTINGS) == 30.0
    assert decide.asked_wait(answer(503), SETTINGS) is None


def test_decisions_without_fields_are_shared() -> None:
    """The usual path allocates no decision: fetch without validators, then parse."""
    assert decide.schedule(task(), FOLLOW, 0.0) is FETCH
    assert decide.judge(task(), answer(200), SETTINGS, 0.0) is PARSE
