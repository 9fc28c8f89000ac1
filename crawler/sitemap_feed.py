"""Sitemaps into the frontier: the seeds' sites' sitemaps, read once at the start of a run.

`SitemapFeed.run` finds each origin's sitemaps (robots.txt `Sitemap:` lines, else
/sitemap.xml if robots.txt allows it; none from an origin whose robots.txt disallows all,
or could not be read, which RFC 9309 reads as the same), fetches them through `Hosts`
(politely, like any page), follows sitemap indexes (at most MAX_SITEMAPS documents), and
queues the in-scope URLs with their lastmod, which makes a page due before --revisit-after.
Sitemaps are a hint: a failure is logged and
the crawl goes on.

A sitemap may list 50,000 URLs, so it is parsed and decided on in slices, with turns of the
loop in between, never holding the loop for long. (Parsed in a thread, it held the
interpreter lock for the whole document, and the loop waited for it.)
"""

from __future__ import annotations

import asyncio
import functools
import logging

from crawler.config import Settings
from crawler.errors import DatabaseFull, DatabaseUnavailable
from crawler.hosts import Hosts
from crawler.known import KnownUrls
from crawler.outage import DatabaseOutage
from crawler.records import RunStats
from crawler.scope import Scope
from crawler.seams import Store
from crawler.sitemap import SitemapReader, inflate
from crawler.urls import canonicalize

log = logging.getLogger("crawler")
MAX_SITEMAPS = 50
SITEMAP_SLICE = 200  # sitemap URLs decided on between two turns of the loop
SITEMAP_READERS = 8  # sitemaps read at once
ROBOTS_WAIT = 10.0  # seconds to wait for an origin's robots.txt as its tasks read it


class SitemapFeed:
    def __init__(
        self,
        settings: Settings,
        scope: Scope,
        hosts: Hosts,
        store: Store,
        outage: DatabaseOutage,
        stats: RunStats,
        known: KnownUrls,
        origins: tuple[str, ...],
        progress: asyncio.Event,
    ) -> None:
        self.settings = settings
        self.scope = scope
        self.hosts = hosts
        self.store = store
        self.outage = outage
        self.stats = stats
        self.known = known
        self.origins = origins
        self.progress = progress  # set when URLs were queued: the feeder may claim them
        self.done = not origins
        self.stopping = False

    async def run(self) -> None:
        try:
            await self._read()
        except (DatabaseUnavailable, DatabaseFull):
            pass  # the outage has given the run up
        except Exception as exc:  # sitemaps are a hint: never fail the crawl over one
            log.warning("could not read sitemaps: %s", exc)
        finally:
            self.done = True
            self.progress.set()

    async def _read(self) -> None:
        todo: list[str] = []
        for origin_url in self.origins:
            guess = origin_url + "/sitemap.xml"
            if self.settings.ignore_robots:
                todo.append(guess)
                continue
            # Its seed's task reads it, with a booking; a read of our own would have to wait
            # for a turn of the host that the task's booking holds.
            policy = await self.hosts.robots_soon(origin_url + "/", ROBOTS_WAIT)
            if policy.sitemaps:
                todo.extend(policy.sitemaps)
            elif policy.allowed(guess) and self.hosts.deferred(guess) is None:
                todo.append(guess)
        seen: set[str] = set()
        # Several at once: each waits for a turn of its host, which is busy with its pages.
        readers = [self._reader(todo, seen) for _ in range(SITEMAP_READERS)]
        await asyncio.gather(*readers)

    async def _reader(self, todo: list[str], seen: set[str]) -> None:
        """Read sitemaps from `todo` (indexes add theirs to it) until it is empty."""
        while todo and len(seen) < MAX_SITEMAPS and not self.stopping:
            url = todo.pop(0)
            if url in seen or not self.scope.hosts_allow(url):
                continue
            seen.add(url)
            result = await self.hosts.fetch(url)
            if result.error_kind is not None or result.status != 200:
                continue
            data = await asyncio.to_thread(inflate, result.body)  # zlib lets the lock go
            reader = SitemapReader()
            for _ in reader.feed_in_slices(data):
                await asyncio.sleep(0)
            sitemap = reader.close()
            todo.extend(sitemap.sitemaps)
            entries = []
            for n, (loc, lastmod) in enumerate(sitemap.urls, 1):
                if n % SITEMAP_SLICE == 0:
                    await asyncio.sleep(0)
                canonical = canonicalize(loc)
                if canonical is not None and self.scope.decide(canonical, 1).follow:
                    entries.append((canonical, lastmod))
            if entries:
                queued = await self.outage(functools.partial(self.store.enqueue_listed, entries, 1))
                self.stats.queued += queued
                # Every entry has its frontier row now (new or not): links to them need not
                # go to the database again. In slices, as above.
                for start in range(0, len(entries), SITEMAP_SLICE):
                    await asyncio.sleep(0)
                    self.known.update(url for url, _ in entries[start : start + SITEMAP_SLICE])
                self.progress.set()
