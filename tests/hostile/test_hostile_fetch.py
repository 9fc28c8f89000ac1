"""Every hostile endpoint, fetched: the expected error_kind or status, within seconds, no raise.

All endpoints are fetched at once, through one HttpFetcher, by a module fixture (the servers run
in a child process, see tests/hostile/server.py); each endpoint's test then checks its own
outcome. Small timeouts and caps keep the whole module to a few seconds.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest

from crawler.config import Settings
from crawler.fetch import HttpFetcher
from crawler.parse import parse_html
from crawler.records import FetchResult
from crawler.urls import canonicalize
from tests.decoded import html_text, text_of
from tests.hostile import server
from tests.hostile.server import ENDPOINTS, Endpoint, serve_in_subprocess

KIB = 1024
MIB = 1024 * KIB

SETTINGS = Settings(
    concurrency=200,
    host_concurrency=200,
    # Connecting to loopback is instant, but the connect timeout also covers the wait for a
    # pooled connection and fires late in a busy loop: give it room. Nothing here hangs there.
    connect_timeout=5.0,
    read_timeout=0.5,
    total_timeout=3.0,
    max_body_bytes=8 * MIB,
    max_header_bytes=8 * KIB,
    max_redirects=5,
)
# Slack over the total timeout for a loaded loop: every fetch is this fast or a bug.
MAX_SECONDS = SETTINGS.total_timeout + 2.0
LOOPBACK = frozenset({"127.0.0.1"})


@dataclass(frozen=True)
class Outcome:
    result: FetchResult | None
    raised: BaseException | None
    seconds: float


@dataclass(frozen=True)
class Batch:
    outcomes: dict[Endpoint, Outcome]
    index: FetchResult
    seconds: float


async def _fetch_all() -> Batch:
    async with (
        serve_in_subprocess() as hostile,
        HttpFetcher(SETTINGS, allowed_private_hosts=LOOPBACK) as fetcher,
    ):

        async def one(endpoint: Endpoint) -> Outcome:
            started = time.monotonic()
            try:
                result = await fetcher.fetch(hostile.url(endpoint))
            except BaseException as exc:  # the test reports it; fetch must never raise
                return Outcome(None, exc, time.monotonic() - started)
            return Outcome(result, None, time.monotonic() - started)

        started = time.monotonic()
        outcomes = await asyncio.gather(*(one(e) for e in ENDPOINTS))
        seconds = time.monotonic() - started
        index = await fetcher.fetch(hostile.index)
    return Batch(dict(zip(ENDPOINTS, outcomes, strict=True)), index, seconds)


@pytest.fixture(scope="module")
def batch() -> Batch:
    # A sync fixture with its own loop: the servers, the fetcher and every fetch share it.
    return asyncio.run(_fetch_all())


def test_there_are_more_than_thirty_behaviours() -> None:
    assert len(ENDPOINTS) > 30
    assert len({(e.server, e.path) for e in ENDPOINTS}) == len(ENDPOINTS)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.server}{e.path}")
def test_endpoint(batch: Batch, endpoint: Endpoint) -> None:
    outcome = batch.outcomes[endpoint]
    assert outcome.raised is None, f"fetch raised {outcome.raised!r}"
    result = outcome.result
    assert result is not None
    assert outcome.seconds < MAX_SECONDS, f"took {outcome.seconds:.1f}s"
    assert result.error_kind == endpoint.kind, result.error
    if endpoint.status is not None:
        assert result.status == endpoint.status
    if result.error_kind is None:
        assert result.error is None
        assert len(result.body) <= SETTINGS.max_body_bytes
    else:
        assert result.error and "\n" not in result.error and len(result.error) <= 300
        assert result.body == b""
    assert len(result.redirects) <= SETTINGS.max_redirects


def test_all_at_once_finish_together(batch: Batch) -> None:
    assert batch.seconds < MAX_SECONDS + 1.0


def test_retryable_hints(batch: Batch) -> None:
    retryable = {e.path for e, o in batch.outcomes.items() if o.result and o.result.retryable}
    for path in ("/slow-body", "/trickle", "/drop-mid-body", "/status/500", "/429", "/503-until"):
        assert path in retryable
    for path in ("/gzip-bomb", "/redirect-loop", "/redirect-private", "/status/404", "/ok"):
        assert path not in retryable


def test_retry_after_is_kept(batch: Batch) -> None:
    by_path = {e.path: o.result for e, o in batch.outcomes.items()}
    too_many = by_path["/429"]
    unavailable = by_path["/503-until"]
    assert too_many is not None and too_many.header("retry-after") == "1"
    assert unavailable is not None
    assert (unavailable.header("retry-after") or "").endswith(" GMT")


def test_decoded_text_of_bad_encodings(batch: Batch) -> None:
    by_path = {e.path: o.result for e, o in batch.outcomes.items()}
    wrong = by_path["/wrong-charset"]
    assert wrong is not None and text_of(wrong) is not None and "\ufffd" in html_text(wrong)
    nul = by_path["/nul-bytes"]
    assert nul is not None and text_of(nul) is not None and "\x00" in html_text(nul)
    for path in ("/undecodable", "/utf16-no-bom", "/bytes-codec-label", "/binary-html"):
        result = by_path[path]
        assert result is not None and isinstance(text_of(result), str), path


def test_index_links_every_endpoint(batch: Batch) -> None:
    assert batch.index.error_kind is None and text_of(batch.index) is not None
    page = parse_html(html_text(batch.index), batch.index.final_url)
    linked = {url for url, _text, _nofollow in page.links}
    web = batch.index.final_url.rstrip("/")
    for endpoint in ENDPOINTS:
        if endpoint.server == "web":
            assert web + endpoint.path in linked, endpoint.path
    # One link per endpoint on other servers too (raw server and robots sites).
    assert len(linked) >= len(ENDPOINTS)


@pytest.mark.parametrize(
    "body",
    [
        server.deep_nesting().decode(),
        server.many_links().decode(),
        server.PNG.decode("utf-8", "replace"),
        server.GARBAGE.decode("utf-8", "replace"),
        "<html><title>n\x00ul</title><body>a\x00b<a href='/ok\x00x'>l</a></body>",
        "<a href=" * 10_000,
    ],
    ids=["deep-nesting", "many-links", "png", "garbage", "nul", "unclosed"],
)
def test_parser_survives_hostile_bodies(body: str) -> None:
    page = parse_html(body, "http://127.0.0.1/")
    for url, _text, _nofollow in page.links:
        assert canonicalize(url) == url
