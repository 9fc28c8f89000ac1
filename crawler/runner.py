"""One claimed task, from its decisions to its one store call: `TaskRunner.run(task)`.

The policy lives in crawler.decide as pure functions; the runner gathers the facts they
need (robots.txt and host waits from `Hosts`, which makes the task's request in its
`Booking`, the page budget from `Scope`), asks them, and applies each decision with one
`match`: one call of the `Store` (through the pool's `DatabaseOutage`) and one
`RunStats.record`. It owns the hosts, the parser, the store, the scope and the stats, and
keeps the known-URL cache up to date with what it queues.

Failures: a bug met on one task is recorded as an `internal` failure of that task and the
crawl goes on. A database that refuses even that record (a damaged schema, missing rights)
ends the run: crawling on would redo the same tasks forever as their leases expire.
"""

from __future__ import annotations

import logging

from crawler import decide
from crawler.config import Settings
from crawler.decide import (
    Failed,
    Fetch,
    NotHtml,
    NotModified,
    Parse,
    Postpone,
    Redirected,
    Retry,
    Skip,
)
from crawler.errors import DatabaseFull, DatabaseRefused, DatabaseUnavailable
from crawler.hosts import Hosts
from crawler.kinds import ErrorKind, TaskOutcome
from crawler.known import KnownUrls
from crawler.outage import DatabaseOutage
from crawler.parse import content_hash, stored_page
from crawler.parse_workers import Parser
from crawler.records import Booking, CrawlTask, FetchResult, PageRecord, RunStats
from crawler.render.contract import RenderedResult
from crawler.scope import Scope
from crawler.seams import Store

log = logging.getLogger("crawler")
GIVE_WAY = 1.0  # seconds a task gives a robots.txt read without a booking (see Hosts)
Decision = decide.Admission | decide.Schedule | decide.Verdict


class TaskRunner:
    def __init__(
        self,
        settings: Settings,
        scope: Scope,
        hosts: Hosts,
        parser: Parser,
        store: Store,
        outage: DatabaseOutage,
        stats: RunStats,
        known: KnownUrls,
    ) -> None:
        self.settings = settings
        self.scope = scope
        self.hosts = hosts
        self.parser = parser
        self.store = store
        self.outage = outage
        self.stats = stats
        self.known = known

    async def run(self, task: CrawlTask, booking: Booking | None = None) -> bool:
        """Take the task to its end, its request in its `booking` (the host's slot and start
        from the frontier); never raises but for cancellation. True: the task went back to
        the queue untried, its booking spent on the host's robots.txt."""
        try:
            return await self._run(task, booking)
        except (DatabaseUnavailable, DatabaseFull):
            pass  # the outage has given the run up; the task's lease expires, it is redone
        except Exception as exc:  # a bug, or one record the database refuses
            await self._failed(task, exc)
        finally:
            if booking is not None:
                self.hosts.settle(booking)
        return False

    async def _run(self, task: CrawlTask, booking: Booking | None) -> bool:
        settings = self.settings
        robots = None
        if settings.ignore_robots:
            pass
        elif booking is None:
            robots = await self.hosts.robots(task.url)
        else:
            robots = await self.hosts.robots_for(task.url, booking)
            if robots is None or task.frontier_id in self.hosts.spent:
                # Reading robots.txt took the booking (the page waits for a booking of its
                # own), or a read without a booking waits for the host (the page gives it
                # a moment, or its next booking would take the slot again).
                delay = GIVE_WAY if robots is None else 0.0
                await self.outage(lambda: self.store.postpone(task, delay))
                return True
        deferred = self.hosts.deferred(task.url)
        decision: Decision | None = decide.admit(task, settings, robots, deferred)
        result: FetchResult | None = None
        if decision is None:
            budget = self.scope.charge(task.url) if task.attempts == 1 else None
            decision = decide.schedule(task, budget, self.hosts.wait(task.url))
            if type(decision) is Fetch:
                result = await self.hosts.fetch(task.url, decision.headers, booking=booking)
                wait = self.hosts.wait(task.url) if result.retryable else 0.0
                decision = decide.judge(task, result, settings, wait)
        match decision:
            case Parse():
                assert result is not None
                await self._complete(await self._parsed(task, result), TaskOutcome.PAGE)
            case NotHtml():
                assert result is not None
                await self._complete(PageRecord(task, result, None, None), TaskOutcome.RECORDED)
            case Failed(failure):
                await self._complete(PageRecord(task, failure, None, None), TaskOutcome.RECORDED)
            case Redirected(target):
                # The target is crawled under its own URL, if in scope.
                assert result is not None
                follow = tuple(self.scope.filter([target], task.depth))
                record = PageRecord(task, result, None, None, follow, task.depth)
                await self._complete(record, TaskOutcome.RECORDED)
            case NotModified():
                assert result is not None
                follow = await self._stored_follow(task)
                record = PageRecord(
                    task, result, None, None, follow, task.depth + 1, not_modified=True
                )
                await self._complete(record, TaskOutcome.NOT_MODIFIED)
            case Retry(attempt, delay):
                await self.outage(lambda: self.store.retry_later(task, attempt, delay))
                self.stats.record(TaskOutcome.RETRIED)
            case Skip():
                follow = await self._stored_follow(task)
                await self.outage(lambda: self.store.skip(task, follow, task.depth + 1))
                self.known.update(follow)
                self.stats.record(TaskOutcome.SKIPPED)
            case Postpone(delay):
                await self.outage(lambda: self.store.postpone(task, delay))
                self.stats.record(TaskOutcome.POSTPONED)
            case Fetch():  # pragma: no cover - replaced by the fetch's verdict above
                raise AssertionError("a Fetch decision is never applied")
        return False

    async def _parsed(self, task: CrawlTask, result: FetchResult) -> PageRecord:
        """The record of an HTML page: parsed, with its new in-scope links to queue."""
        assert result.encoding is not None
        page, digest = await self.parser.parse(result.body, result.encoding, result.final_url)
        follow: tuple[str, ...] = ()
        obey = self.settings.obey_meta_robots
        if not (obey and page.nofollow):
            known = self.known.urls  # the dict itself: no method call per link
            candidates = {url for url, _text, nofollow in page.links if not (obey and nofollow)}
            fresh = [url for url in candidates if url not in known]
            follow = tuple(self.scope.filter(fresh, task.depth + 1))
        page = stored_page(page, obey_meta_robots=obey)
        keep = self.settings.store_body
        body = result.body if keep else None
        if not isinstance(result, RenderedResult):
            return PageRecord(task, result, page, digest, follow, task.depth + 1, body=body)
        # Rendered: the DOM was parsed; the server's HTML is named, and kept beside it.
        static = result.static_body
        return PageRecord(
            task,
            result,
            page,
            digest,
            follow,
            task.depth + 1,
            body=body,
            static_hash=content_hash(static),
            static_body=static if keep else None,
        )

    async def _stored_follow(self, task: CrawlTask) -> tuple[str, ...]:
        """The in-scope links stored for the page, not yet known to be queued."""
        links = await self.outage(lambda: self.store.stored_links(task.url))
        fresh = [url for url, nofollow in links if not nofollow and url not in self.known]
        return tuple(self.scope.filter(fresh, task.depth + 1))

    async def _complete(self, record: PageRecord, outcome: TaskOutcome) -> None:
        queued = await self.outage(lambda: self.store.complete(record))
        self.known.update(record.enqueue)
        self.stats.record(outcome, record.fetch, queued)

    async def _failed(self, task: CrawlTask, exc: Exception) -> None:
        """Record an unexpected failure of one task; its lease expires if even that fails."""
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        if isinstance(exc, DatabaseRefused):
            message = str(exc)
        log.warning("task %s failed: %s", task.url, message)
        failure = decide.refused(task, ErrorKind.INTERNAL, message)
        try:
            await self._complete(PageRecord(task, failure, None, None), TaskOutcome.RECORDED)
        except (DatabaseUnavailable, DatabaseFull):
            return  # the outage has given the run up
        except Exception as again:
            # Not even the record of a failure, written on its own (the store writes a
            # refused batch record by record), could be stored: the database refuses our
            # writes (a table that is not as we made it, rights we lack).
            log.warning("could not record the failure of %s: %s", task.url, again)
            self.outage.give_up(
                DatabaseRefused(
                    f"the database refused to store {task.url} and the record of its failure "
                    f"({again}); the run is resumable"
                )
            )
