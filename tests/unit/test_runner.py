"""The task runner (crawler.runner), one decision a test, against the in-memory store.

Each test claims tasks from a `MemoryRun`, runs them, and reads what the store was asked to
do and what the stats counted: one store call and one stats update a task.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crawler.config import Settings
from crawler.config_sources import load_settings
from crawler.errors import DatabaseFull, DatabaseRefused
from crawler.hosts import Hosts
from crawler.kinds import ErrorKind, RunOutcome
from crawler.known import KnownUrls
from crawler.outage import DatabaseOutage
from crawler.parse_workers import InlineParser
from crawler.records import CrawlTask, FetchResult, RunStats
from crawler.runner import TaskRunner
from crawler.scope import Scope
from tests.unit.memory_store import MapFetcher, MemoryRun, html
from tests.unit.pool_fakes import make_pool

SITE = "http://a.example"
PAGE = f"<html><title>T</title><a href='{SITE}/b'>b</a><a href='http://other.example/'>o</a>"


class Harness:
    def __init__(self, fetcher: Any, **flags: Any) -> None:
        self.settings: Settings = load_settings(
            {"seeds": (SITE + "/",), "ignore_robots": True, "retries": 1, **flags}
        )
        self.run = MemoryRun()
        self.stats = RunStats()
        self.known = KnownUrls()
        self.stops = 0
        self.outage = DatabaseOutage(self.settings.database_wait, self._stop)
        self.fetcher = fetcher
        self.hosts = Hosts(self.settings, fetcher)
        self.runner = TaskRunner(
            self.settings,
            Scope.from_settings(self.settings, self.settings.seeds),
            self.hosts,
            InlineParser(None),
            self.run,
            self.outage,
            self.stats,
            self.known,
        )

    def _stop(self) -> None:
        self.stops += 1

    async def one(self, url: str, **task: Any) -> CrawlTask:
        """Claim `url` and run it (with the task fields given)."""
        self.run.add(url)
        (booking,) = await self.run.claim(1)
        claimed = booking.task
        if task:
            claimed = CrawlTask(claimed.frontier_id, claimed.url, claimed.depth, **task)
        await self.runner.run(claimed)
        return claimed


async def test_an_html_page_is_parsed_stored_and_its_in_scope_links_queued() -> None:
    h = Harness(MapFetcher({SITE + "/": html(SITE + "/", PAGE)}))
    await h.one(SITE + "/")
    (record,) = h.run.completed
    assert record.page is not None and record.page.title == "T"
    assert record.enqueue == (SITE + "/b",)
    assert h.run.state(SITE + "/b") == "queued"
    assert SITE + "/b" in h.known
    assert (h.stats.pages, h.stats.fetched, h.stats.queued) == (1, 1, 1)


async def test_a_body_that_is_not_html_is_recorded_without_a_page() -> None:
    png = FetchResult(SITE + "/i.png", SITE + "/i.png", 200, "image/png", (), b"\x89PNG")
    h = Harness(MapFetcher({SITE + "/i.png": png}))
    await h.one(SITE + "/i.png")
    (record,) = h.run.completed
    assert record.page is None and record.fetch is png
    assert (h.stats.pages, h.stats.fetched, h.stats.errors) == (0, 1, 0)


async def test_an_http_error_is_recorded_with_its_kind() -> None:
    h = Harness(MapFetcher())
    await h.one(SITE + "/missing")
    (record,) = h.run.completed
    assert record.fetch.error_kind is ErrorKind.HTTP_STATUS
    assert h.stats.error_kinds == {ErrorKind.HTTP_STATUS: 1}


async def test_a_redirect_queues_its_target_at_the_same_depth() -> None:
    moved = html(SITE + "/old", PAGE, final_url=SITE + "/new", redirects=(SITE + "/old",))
    h = Harness(MapFetcher({SITE + "/old": moved}))
    await h.one(SITE + "/old")
    (record,) = h.run.completed
    assert record.page is None
    assert (record.enqueue, record.enqueue_depth) == ((SITE + "/new",), 0)


async def test_not_modified_keeps_the_page_and_follows_its_stored_links() -> None:
    unchanged = FetchResult(SITE + "/", SITE + "/", 304, None)
    fetcher = MapFetcher({SITE + "/": unchanged})
    h = Harness(fetcher)
    h.run.links[SITE + "/"] = [(SITE + "/kept", False), (SITE + "/nofollow", True)]
    await h.one(SITE + "/", etag='"v1"')
    assert fetcher.asked == [(SITE + "/", {"If-None-Match": '"v1"'})]
    (record,) = h.run.completed
    assert record.not_modified and record.enqueue == (SITE + "/kept",)
    assert (h.stats.not_modified, h.stats.pages) == (1, 1)


async def test_a_retryable_failure_goes_back_with_a_delay() -> None:
    busy = FetchResult(SITE + "/", SITE + "/", 503, None, (("retry-after", "1"),), retryable=True)
    h = Harness(MapFetcher({SITE + "/": busy}))
    await h.one(SITE + "/")
    ((_, attempt, delay),) = h.run.retried
    assert attempt is busy and delay == 1.0
    assert h.run.completed == [] and h.run.state(SITE + "/") == "queued"
    assert (h.stats.retries, h.stats.fetched) == (1, 0)


async def test_a_page_not_due_is_skipped_and_its_stored_links_followed() -> None:
    fetcher = MapFetcher()
    h = Harness(fetcher, revisit_after=3600)
    h.run.links[SITE + "/"] = [(SITE + "/c", False)]
    await h.one(SITE + "/", age=60.0)
    assert fetcher.asked == []
    assert [t.url for t in h.run.skipped] == [SITE + "/"]
    assert h.run.state(SITE + "/c") == "queued"
    assert h.stats.skipped == 1


async def test_a_host_that_asked_us_to_wait_gets_its_tasks_postponed() -> None:
    slow = FetchResult(SITE + "/", SITE + "/", 429, None, (("retry-after", "20"),))
    fetcher = MapFetcher({SITE + "/": slow})
    h = Harness(fetcher, retries=0)
    await h.one(SITE + "/")  # recorded (no retries left); the host's clock is blocked
    await h.one(SITE + "/next")
    assert [url for url, _ in fetcher.asked] == [SITE + "/"]
    ((task, delay),) = h.run.postponed
    assert task.url == SITE + "/next" and 10 < delay <= 20
    assert h.run.state(SITE + "/next") == "queued"


async def test_a_host_asking_for_more_than_max_crawl_delay_is_left_for_the_next_run() -> None:
    """503 with Retry-After: 7200 (over --max-crawl-delay 30): the URL fails at once, and so
    do the host's other URLs, without a request, robots.txt included; nothing waits."""
    later = FetchResult(
        SITE + "/", SITE + "/", 503, None, (("retry-after", "7200"),), retryable=True
    )
    fetcher = MapFetcher({SITE + "/": later})
    h = Harness(fetcher, retries=2, ignore_robots=False)
    await h.one(SITE + "/")
    await h.one(SITE + "/next")
    assert [url for url, _ in fetcher.asked] == [SITE + "/robots.txt", SITE + "/"]
    assert h.run.retried == [] and h.run.postponed == []
    first, other = h.run.completed
    assert first.fetch.status == 503 and first.fetch.error_kind is ErrorKind.HTTP_STATUS
    assert other.fetch.error_kind is ErrorKind.HTTP_STATUS and other.fetch.status is None
    assert other.fetch.error == first.fetch.error and "next run" in (other.fetch.error or "")
    assert h.hosts.wait(SITE + "/next") == 0.0
    assert h.stats.errors == 2


async def test_robots_txt_refusals_are_recorded_without_a_fetch() -> None:
    robots = FetchResult(
        SITE + "/robots.txt",
        SITE + "/robots.txt",
        200,
        "text/plain",
        (),
        b"User-agent: *\nDisallow: /private\n",
    )
    fetcher = MapFetcher({SITE + "/robots.txt": robots})
    h = Harness(fetcher, ignore_robots=False)
    await h.one(SITE + "/private/x")
    assert [url for url, _ in fetcher.asked] == [SITE + "/robots.txt"]
    (record,) = h.run.completed
    assert record.fetch.error_kind is ErrorKind.ROBOTS


async def test_a_host_over_its_page_budget_is_not_fetched() -> None:
    fetcher = MapFetcher()
    h = Harness(fetcher, max_pages_per_host=1)
    await h.one(SITE + "/1")
    await h.one(SITE + "/2")
    assert [url for url, _ in fetcher.asked] == [SITE + "/1"]
    assert h.run.completed[1].fetch.error_kind is ErrorKind.HOST_BUDGET


class Broken(MapFetcher):
    async def fetch(self, url: str, **kw: Any) -> FetchResult:
        raise RuntimeError("a bug\nsecond line")


async def test_a_bug_is_recorded_as_an_internal_failure_and_the_crawl_goes_on() -> None:
    h = Harness(Broken())
    await h.one(SITE + "/")
    (record,) = h.run.completed
    assert record.fetch.error_kind is ErrorKind.INTERNAL
    assert record.fetch.error == "RuntimeError: a bug"
    assert h.outage.fatal is None


async def test_a_database_that_refuses_even_the_failure_record_ends_the_run() -> None:
    h = Harness(MapFetcher())
    h.run.refuse = DatabaseRefused('relation "fetches" does not exist')
    await h.one(SITE + "/")
    assert isinstance(h.outage.fatal, DatabaseRefused)
    assert 'relation "fetches" does not exist' in str(h.outage.fatal)
    assert h.stops == 1
    assert h.run.writes == 2  # the record, then the record of its failure


async def test_a_full_disk_ends_the_run_at_once_without_a_failure_record() -> None:
    h = Harness(MapFetcher())
    h.run.refuse = DatabaseFull("the database's disk is full (No space left on device)")
    await h.one(SITE + "/")
    await h.one(SITE + "/again")
    assert isinstance(h.outage.fatal, DatabaseFull)
    assert h.stops == 1
    assert h.run.writes == 2  # one a task: no record of a failure attempted


async def test_the_pool_stops_claiming_on_a_full_disk(caplog: pytest.LogCaptureFixture) -> None:
    """DATABASE_FULL: the pool stops claiming, says nothing per URL, and raises nothing (the
    run prints its summary and exits 3)."""
    settings = load_settings(
        {"seeds": (SITE + "/",), "ignore_robots": True, "concurrency": 1, "retries": 0}
    )
    run = MemoryRun()
    for n in range(50):
        run.add(f"{SITE}/{n}")
    run.refuse = DatabaseFull("the database's disk is full (No space left on device)")
    pool = make_pool(settings, run, MapFetcher(), run)
    assert await asyncio.wait_for(pool.run(), 30) is RunOutcome.DATABASE_FULL
    claimed = sum(row.attempts for row in run.rows.values())
    assert claimed < 50
    assert run.writes <= 2  # the workers' tasks in flight, no more
    assert not [r for r in caplog.records if SITE in r.getMessage()]
    # The claimed tasks not started are handed back; those whose write failed keep their
    # lease until it expires (the frontier's update needs disk space too).
    leased = [row for row in run.rows.values() if row.state == "leased"]
    assert len(leased) == run.writes
