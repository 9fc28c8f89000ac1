"""What a run's start and end decide and say (crawler/lifecycle.py)."""

from __future__ import annotations

import pytest

from crawler.kinds import ErrorKind, RunStatus
from crawler.lifecycle import (
    end_status,
    error_rate_news,
    no_seed_news,
    seeds_news,
    settings_news,
    why_unfetchable,
)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8080/", None),
        ("https://example.com/a?b", None),
        ("http://127.0.0.1:99999/", "the URL has no valid port (1 to 65535)"),
        ("http://h:0/", "the URL has no valid port (1 to 65535)"),
        ("ftp://h/", "the URL is not an http(s) URL with a host"),
        ("http:///path", "the URL is not an http(s) URL with a host"),
    ],
)
def test_why_unfetchable(url: str, why: str | None) -> None:
    assert why_unfetchable(url) == why


def test_a_run_is_finished_only_with_an_empty_frontier() -> None:
    assert end_status(0) == RunStatus.FINISHED
    assert end_status(1103) == RunStatus.INTERRUPTED
    assert [str(s) for s in RunStatus] == ["running", "finished", "interrupted"]


def test_news_for_an_existing_crawl() -> None:
    assert seeds_news("x", ("http://a/",), ()) is None
    assert seeds_news("x", ("http://a/",), ("http://a/",)) == (
        "the seeds are those of the existing crawl x"
    )
    joined = seeds_news("x", ("http://a/",), ("http://b/",))
    assert joined is not None
    assert joined.startswith(
        "the seeds join the existing crawl x: they replace its seeds http://a/"
    )
    assert settings_news("x", {}) is None
    assert settings_news("x", {"delay": (0.2, 0.0)}) == (
        "crawl x: settings changed from the stored ones: --delay 0.2 -> 0.0"
    )
    from_env = settings_news("x", {"delay": (0.2, 0.0)}, {"delay": "CRAWLER_DELAY"})
    assert from_env == "crawl x: settings changed from the stored ones: CRAWLER_DELAY 0.2 -> 0.0"
    assert no_seed_news([("http://a/", "connect", "refused")]) == (
        "no seed could be fetched: http://a/: connect (refused)"
    )


def test_error_rate_news_says_why_the_run_exits_1() -> None:
    kinds = {ErrorKind.HTTP_STATUS: 1, ErrorKind.ROBOTS: 5}
    assert error_rate_news(kinds, 4, 0.1) == (
        "1 of 4 fetches failed (25%), more than --fail-on-error-rate 0.1 allows "
        "(robots refusals not counted)"
    )
    assert error_rate_news(kinds, 4, 0.25) is None  # at the limit is within it
    assert error_rate_news({ErrorKind.ROBOTS: 4}, 4, 0.0) is None
    assert error_rate_news({}, 0, 0.0) is None
