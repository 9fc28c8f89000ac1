"""Wiring and the run lifecycle: database (embedded or given), migrations, run, pool, summary.

The one module that knows the concrete classes: it plugs `PgHostFrontier`, `PgStore`
and `HttpFetcher` (inside the `RenderingFetcher` of --render) into the pool's
seams (crawler.seams). The database, the HTTP client, the parser and the browser are async
context managers opened here and closed in reverse order on any exit; the run's lock is held
for the whole crawl.

A resumed or repeated run takes the crawl's stored settings where defaults would be; settings
given now win and are stored. --max-pages counts this invocation's fetches. Seeds that cannot
be fetched are failed before the pool starts, so no run is left unfinishable; the rest of the
run's start and end (its status, what stderr says) is decided in lifecycle.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from crawler.config import Settings, normalise_database_url
from crawler.db import embedded, migrate, runs
from crawler.db.database import Database
from crawler.db.embedded_early import EarlyStart
from crawler.db.host_frontier import PgHostFrontier
from crawler.db.query import other_clients
from crawler.db.store import PgStore
from crawler.errors import ConfigError, DatabaseError, DatabaseFull, RunLocked
from crawler.extract import CompiledRules, compile_rules
from crawler.fetch import HttpFetcher
from crawler.guard import private_hosts
from crawler.hosts import Hosts
from crawler.kinds import RunOutcome, RunStatus, TaskOutcome
from crawler.lifecycle import (
    UNFETCHABLE_KIND,
    end_status,
    error_rate_news,
    no_seed_news,
    seeds_news,
    settings_news,
    why_unfetchable,
)
from crawler.loop_health import peak_rss_mb
from crawler.parse_workers import parser_for
from crawler.pool import Pool
from crawler.records import FetchResult, RunStats
from crawler.render.contract import RenderOptions
from crawler.render.fetcher import RenderingFetcher, RenderMode
from crawler.render.guard import BrowserRules
from crawler.scope import Scope
from crawler.stored import with_stored
from crawler.summary import Summary
from crawler.throttle import PaceMode, Throttle
from crawler.urls import origin

log = logging.getLogger("crawler")

LOCK_CHECK_SECONDS = 0.5
# Who this process is, to PostgreSQL: its sessions' application_name and its leases' owner,
# so leases of processes that are gone can be told apart (at most 63 characters).
PROCESS_ID = f"crawler-{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

EXIT_OK = 0
EXIT_FAILED = 1  # more fetches failed than --fail-on-error-rate allows, or no seed answered
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


@asynccontextmanager
async def open_database(
    settings: Settings, *, migrate_schema: bool = True, early: EarlyStart | None = None
) -> AsyncIterator[Database]:
    """The crawl database, migrated: the given server, or the embedded one (started if needed,
    or taken from `early`, the start `crawler crawl` began while it imported this module).

    On the way out the embedded server is stopped unless `crawler db start` asked to keep it
    running or another client is still connected, whoever started it: a server left behind
    by a killed process goes with the next normal exit."""
    server = None
    if settings.database_url:
        url = settings.database_url
    else:
        if early is not None:
            server = await early.take()
        else:
            server = await asyncio.to_thread(embedded.start, embedded.data_dir_of(settings))
        url = normalise_database_url(server.url)
    db = Database(url, pool_size=settings.concurrency + 2, application_name=PROCESS_ID)
    try:
        await db.check()
        if migrate_schema:  # at head, checked on the connection check() opened
            await migrate.upgrade(url, engine=db.uncounted)
        yield db
    finally:
        others = 0
        if server is not None:
            with contextlib.suppress(Exception):
                others = await other_clients(db)
        await db.dispose()
        if server is not None and others == 0 and not embedded.kept_running(server.data_dir):
            await asyncio.to_thread(embedded.stop, server.data_dir)


async def crawl(
    settings: Settings,
    *,
    new_run: bool = False,
    join: bool = False,
    watch: Callable[[Pool], AbstractAsyncContextManager[None]] | None = None,
    given: Mapping[str, str] | None = None,
    early: EarlyStart | None = None,
) -> Summary:
    """Run (or resume, or join) the crawl that `settings` describe, to the end or a signal.

    `given` names the settings given explicitly, each with where it came from (None: all of
    them, as flags); for the others, an existing crawl's stored settings take the place of
    the defaults. `early`: the embedded server's start, begun by the caller."""
    name = settings.crawl_name
    if settings.extract:
        compile_rules(settings.extract)  # bad CSS: exit 2 before the database is opened
    async with open_database(settings, early=early) as db:
        crawl_info = await runs.find_crawl(db, name)
        existed = crawl_info is not None
        changed: dict[str, tuple[Any, Any]] = {}
        if crawl_info is None:
            if not settings.seeds:
                raise ConfigError(f"there is no crawl named {name!r}; give seed URLs to start one")
            crawl_info = await runs.ensure_crawl(db, name, settings.seeds, settings.to_json())
        else:
            explicit: Collection[str] = frozenset(settings.to_json()) if given is None else given
            settings, changed = with_stored(settings, crawl_info.config, explicit)
        rules = compile_rules(settings.extract) if settings.extract else None
        lock = runs.CrawlLock(db, crawl_info.id)
        try:
            if join:
                run = await _join_run(db, crawl_info)
            else:
                if not await lock.acquire():
                    raise RunLocked(
                        f"crawl {name!r} is already running in another process "
                        "(use --join to add workers to it)"
                    )
                if existed:
                    for news in (
                        seeds_news(name, crawl_info.seeds, settings.seeds),
                        settings_news(name, changed, given or {}),
                    ):
                        if news:
                            log.info("%s", news)
                # The crawl is ours now: record the seeds and settings given now.
                crawl_info = await runs.ensure_crawl(db, name, settings.seeds, settings.to_json())
                run = await _open_run(db, settings, crawl_info, new_run=new_run)
            keeper = None if join else asyncio.create_task(_keep_lock(lock, crawl_info.name))
            try:
                budget = (given or {}).get("max_pages", "--max-pages")
                return await _crawl_run(db, settings, crawl_info, run, watch, rules, budget)
            finally:
                if keeper is not None:
                    keeper.cancel()
        finally:
            with contextlib.suppress(Exception):
                await lock.release()


async def _keep_lock(lock: runs.CrawlLock, name: str) -> None:
    """Hold the crawl's lock through database restarts (a restart ends its connection)."""
    warned = False
    while True:
        await asyncio.sleep(LOCK_CHECK_SECONDS)
        try:
            held = await lock.keep()
        except Exception:  # the server is still away: try again shortly
            continue
        if not held and not warned:
            warned = True
            log.warning(
                "another process took crawl %s's lock while the database was away; "
                "going on as a joined worker",
                name,
            )


async def _join_run(db: Database, crawl_info: runs.CrawlInfo) -> runs.RunInfo:
    run = await runs.join_run(db, crawl_info)
    if run is None:
        raise ConfigError(f"crawl {crawl_info.name!r} has no run in progress to --join")
    log.info("joining run %d of crawl %s", run.id, crawl_info.name)
    return run


async def _open_run(
    db: Database, settings: Settings, crawl_info: runs.CrawlInfo, *, new_run: bool
) -> runs.RunInfo:
    throttle = Throttle.from_delay(settings.delay)
    pace = runs.HostPace(
        settings.host_concurrency, throttle.first, fixed=throttle.mode is PaceMode.FIXED
    )
    run = await runs.open_run(db, crawl_info, new_run=new_run, seeds=settings.seeds, pace=pace)
    if run.resumed:
        # Leases of processes that died (kill -9, exit 3) need not wait out their time.
        freed = await runs.free_dead_leases(db, run.id)
        if freed:
            log.info("took back %d URLs leased by processes that are gone", freed)
        left = await runs.open_in_run(db, run.id)
        log.info("resuming run %d of crawl %s: %d URLs left", run.id, crawl_info.name, left)
    return run


async def _fail_unfetchable(db: Database, run_id: int, stats: RunStats) -> None:
    """Complete as failed the run's seeds that cannot be fetched at all (stored before seeds
    were checked as they are now): leased again and again, they would keep the run from
    ending. Counted in `stats` as the pool counts a failed URL."""
    for url in await runs.fail_unfetchable(db, run_id, UNFETCHABLE_KIND, why_unfetchable):
        why = why_unfetchable(url)
        log.warning("seed %s cannot be fetched: %s", url, why)
        failed = FetchResult(url, url, None, None, error_kind=UNFETCHABLE_KIND, error=why)
        stats.record(TaskOutcome.RECORDED, failed)


async def _crawl_run(
    db: Database,
    settings: Settings,
    crawl_info: runs.CrawlInfo,
    run: runs.RunInfo,
    watch: Callable[[Pool], AbstractAsyncContextManager[None]] | None,
    rules: CompiledRules | None,
    max_pages_from: str = "--max-pages",
) -> Summary:
    owner = PROCESS_ID
    frontier = PgHostFrontier(db, crawl_info.id, run.id, owner, settings.lease_seconds)
    store = PgStore(db, crawl_info.id, run.id, owner)
    # Seeds that cannot be fetched were completed as failed (_open_run): no host of theirs.
    seeds = tuple(s for s in crawl_info.seeds if why_unfetchable(s) is None)
    scope = Scope.from_settings(settings, seeds)
    # A seed's own host may be on a private or loopback address (an intranet, a local test
    # server); other hosts only with --allow-private.
    seed_hosts = (
        frozenset()
        if settings.allow_private
        else await private_hosts(seeds, dns_seconds=settings.connect_timeout)
    )
    fetcher_ = HttpFetcher(
        settings, allow_private=settings.allow_private, allowed_private_hosts=seed_hosts
    )
    parser = parser_for(settings, rules)
    pool: Pool | None = None
    async with fetcher_ as plain, contextlib.AsyncExitStack() as cleanup:
        cleanup.push_async_callback(parser.aclose)
        # Closed first on the way out, whatever ends the run: the browser goes with it.
        fetcher = await cleanup.enter_async_context(
            _rendering(settings, plain, lambda: None if pool is None else pool.hosts)
        )
        origins = () if run.resumed else tuple(dict.fromkeys(origin(s) for s in seeds))
        pool = Pool(
            settings,
            scope,
            frontier,
            fetcher,
            store,
            sitemap_origins=origins,
            parser=parser,
        )
        await _fail_unfetchable(db, run.id, pool.stats)
        exit_code = EXIT_OK
        watching = watch(pool) if watch is not None else contextlib.nullcontext()
        with _signals(pool) as received:
            try:
                async with watching:
                    outcome = await pool.run()
            finally:
                await store.close()
            if received:
                exit_code = EXIT_SIGTERM if received[0] == signal.SIGTERM else EXIT_SIGINT
    # Finished only with an empty frontier. Stopped by a signal, with a budget spent
    # (--max-duration, --max-pages) or by a full disk, the run stays open, to be resumed.
    stats = pool.stats
    if outcome is RunOutcome.DATABASE_FULL:
        status = RunStatus.INTERRUPTED
        exit_code = DatabaseFull.exit_code
        log.error(
            "%s: free space on the database's disk, then resume with: crawler crawl --name %s",
            pool.outage.fatal,
            crawl_info.name,
        )
    else:
        left = await runs.open_in_run(db, run.id)
        status = end_status(left)
        if outcome is RunOutcome.LIMIT and left:
            log.info(
                "%s %d reached: run %d of crawl %s is resumable, %d URLs left "
                "(crawler crawl --name %s)",
                max_pages_from,
                settings.max_pages,
                run.id,
                crawl_info.name,
                left,
                crawl_info.name,
            )
    too_many = error_rate_news(stats.error_kinds, stats.fetched, settings.fail_on_error_rate)
    if exit_code == EXIT_OK and too_many:
        exit_code = EXIT_FAILED
        log.error("%s", too_many)
    if exit_code == EXIT_OK:
        no_seed = await runs.failed_seeds(db, run.id, crawl_info.seeds)
        if no_seed:
            exit_code = EXIT_FAILED
            log.error("%s", no_seed_news(no_seed))
    # The run's totals over its whole life (this invocation's are in `stats`).
    totals = None
    try:
        totals = await runs.run_totals(db, run.id)
    except DatabaseError:
        if outcome is not RunOutcome.DATABASE_FULL:
            raise
    summary = Summary(
        crawl=crawl_info.name,
        run_id=run.id,
        status=status,
        resumed=run.resumed,
        stats=stats,
        db_statements=db.statements,
        db_batches=store.writer.batches,
        peak_rss_mb=peak_rss_mb(),
        exit_code=exit_code,
        ignore_robots=settings.ignore_robots,
        run=totals,
    )
    if outcome is RunOutcome.DATABASE_FULL:
        # Said once above; recording the summary needs disk space too.
        with contextlib.suppress(DatabaseError):
            await runs.finish_run(db, run.id, status, summary.to_json())
        return summary
    await runs.finish_run(db, run.id, status, summary.to_json())
    return summary


def _rendering(
    settings: Settings, plain: HttpFetcher, hosts: Callable[[], Hosts | None]
) -> RenderingFetcher:
    """The pool's fetcher: `plain`, with the pages --render picks rendered in a browser
    (started on the first such page). The browser's requests obey the fetcher's address
    policy and, on the page's own host, the run's robots.txt; they are capped per page
    (`RenderOptions.max_subrequests`) and made while the page holds its host's slot."""
    robots = None
    if not settings.ignore_robots:

        async def robots(url: str) -> bool:
            run_hosts = hosts()
            return run_hosts is None or (await run_hosts.robots(url)).allowed(url)

    rules = BrowserRules(plain.address_policy, robots=robots)
    options = RenderOptions.from_settings(settings)
    return RenderingFetcher(plain, RenderMode(settings.render), options, rules)


@contextlib.contextmanager
def _signals(pool: Pool) -> Any:
    """SIGINT/SIGTERM stop the pool gracefully; a second SIGINT exits at once."""
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def handle(signum: int) -> None:
        if received and signum == signal.SIGINT:
            os._exit(EXIT_SIGINT)
        received.append(signum)
        pool.stop()

    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, handle, signum)
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    try:
        yield received
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
