"""The `crawler` command: thin typer commands that build Settings, call run, and print.

Exit codes: 0 finished; 1 no seed could be fetched, or too many fetches failed; 2 usage,
configuration or SQL error; 3 database unavailable or its schema damaged; 75 another run holds
the crawl's lock; 130/143 interrupted by SIGINT/SIGTERM (resumable).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Annotated, Any

import typer

from crawler import (
    __version__,
    cli_help,
    cli_maintenance,
    cli_report,
    cli_reports,
    cli_search,
    cli_sql,
    collector,
)
from crawler.cli_options import ConfigOpt, DatabaseUrlOpt, DataDirOpt, exit_with, settings_from
from crawler.db import embedded
from crawler.db.embedded_early import EarlyStart
from crawler.errors import ConfigError, CrawlerError
from crawler.stored import given_settings

# The crawl machinery (aiohttp, SQLAlchemy, Alembic, selectolax) is imported inside the
# commands that use it, so --help, user mistakes and `db start/stop/url` answer at once.

EXIT_CODES = """Exit codes: 0 finished (or a budget spent: resumable); 1 no seed could be
fetched, or too many fetches failed; 2 usage, configuration or SQL error; 3 database
unavailable, or its schema damaged; 75 another run of the crawl is in progress; 130/143
interrupted (resumable)."""

app = typer.Typer(
    help="Crawl websites into PostgreSQL.\n\n" + EXIT_CODES,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Manage the database (the embedded one, or --database-url).")
app.add_typer(db_app, name="db")


def _tty() -> bool:
    return sys.stdout.isatty()


@app.command(epilog=EXIT_CODES)
def crawl(
    seeds: Annotated[
        list[str] | None, typer.Argument(help="Seed URLs.", show_default=False)
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="Crawl name (default: first seed's host, with its port if not 80/443)."),
    ] = None,
    config: ConfigOpt = None,
    database_url: DatabaseUrlOpt = None,
    data_dir_: DataDirOpt = None,
    concurrency: Annotated[int | None, typer.Option(help="Concurrent requests.")] = None,
    max_pages: Annotated[
        int | None, typer.Option(help="Stop after N fetches (0: no limit).")
    ] = None,
    max_depth: Annotated[int | None, typer.Option(help="Follow links N levels deep.")] = None,
    allow_host: Annotated[
        list[str] | None, typer.Option(help="Host to crawl (repeatable; default: the seeds').")
    ] = None,
    include: Annotated[
        list[str] | None, typer.Option(help="Follow only URLs matching REGEX (repeatable).")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option(help="Never follow URLs matching REGEX (repeatable).")
    ] = None,
    user_agent: Annotated[str | None, typer.Option(help="User-Agent header.")] = None,
    host_concurrency: Annotated[
        int | None, typer.Option(help="Concurrent requests per host.")
    ] = None,
    delay: Annotated[float | None, typer.Option(help="Seconds between requests to a host.")] = None,
    ignore_robots: Annotated[
        bool | None, typer.Option(help="Do not obey robots.txt.", show_default=False)
    ] = None,
    retries: Annotated[int | None, typer.Option(help="Retries of transient failures.")] = None,
    allow_private: Annotated[
        bool | None,
        typer.Option(
            help="Allow URLs on private, loopback and link-local addresses.", show_default=False
        ),
    ] = None,
    store_body: Annotated[
        bool | None,
        typer.Option(
            help="Keep compressed response bodies (for crawler reparse).", show_default=False
        ),
    ] = None,
    parse_processes: Annotated[
        int | None,
        typer.Option(help="Processes that parse pages beside the crawl (0: parse in it)."),
    ] = None,
    revisit_after: Annotated[
        str | None,
        typer.Option(help="Do not refetch pages fetched more recently than this (e.g. 6h, 2d)."),
    ] = None,
    max_duration: Annotated[
        str | None,
        typer.Option(
            help="Stop claiming work after this long (e.g. 50m); the run stays resumable."
        ),
    ] = None,
    fail_on_error_rate: Annotated[
        float | None,
        typer.Option(help="Exit 1 when more than this share of fetches failed (0 to 1)."),
    ] = None,
    database_wait: Annotated[
        str | None,
        typer.Option(help="How long to wait for a database that went away before exit 3."),
    ] = None,
    render: Annotated[
        str | None,
        typer.Option(
            help="Render pages in headless Chromium: never, auto (pages that look "
            "client-rendered, learnt per host) or always."
        ),
    ] = None,
    render_concurrency: Annotated[
        int | None, typer.Option(help="Pages rendered at once (browser tabs).")
    ] = None,
    browser_path: Annotated[
        str | None, typer.Option(help="Chromium to render with (default: found on PATH).")
    ] = None,
    browser_cdp_url: Annotated[
        str | None, typer.Option(help="Render in a running Chromium, reached over CDP.")
    ] = None,
    new_run: Annotated[
        bool, typer.Option(help="Start a fresh run even if the last one is unfinished.")
    ] = False,
    join: Annotated[
        bool, typer.Option(help="Add workers to the crawl's run in progress (any machine).")
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON summary object on stdout.")
    ] = False,
    quiet: Annotated[bool, typer.Option(help="Print only errors.")] = False,
    log_format: Annotated[
        str | None, typer.Option(help="Progress log format: text or json.")
    ] = None,
) -> None:
    """Crawl SEED URLs (or resume the crawl --name) into PostgreSQL."""
    flags: dict[str, Any] = dict(
        seeds=tuple(seeds or ()),
        name=name,
        database_url=database_url,
        data_dir=data_dir_,
        concurrency=concurrency,
        max_pages=max_pages,
        max_depth=max_depth,
        allow_hosts=tuple(allow_host or ()),
        include=tuple(include or ()),
        exclude=tuple(exclude or ()),
        user_agent=user_agent,
        host_concurrency=host_concurrency,
        delay=delay,
        ignore_robots=ignore_robots,
        retries=retries,
        allow_private=allow_private,
        store_body=store_body,
        parse_processes=parse_processes,
        revisit_after=revisit_after,
        max_duration=max_duration,
        fail_on_error_rate=fail_on_error_rate,
        database_wait=database_wait,
        render=render,
        render_concurrency=render_concurrency,
        browser_path=browser_path,
        browser_cdp_url=browser_cdp_url,
        json=True if json_out else None,
        quiet=True if quiet else None,
        log_format=log_format,
    )
    settings = settings_from(config, **flags)
    # Crawl settings given now win over the crawl's stored ones, which replace the defaults.
    given = given_settings(flags, environ=os.environ, config_file=config)
    if not settings.seeds and not settings.name:
        raise ConfigError("give at least one seed URL, or --name of a crawl to resume")
    # The embedded server starts while the crawl's modules load (crawler.db.embedded_early).
    early = None if settings.database_url else EarlyStart(embedded.data_dir_of(settings))
    try:
        with collector.loading():
            from crawler.display import print_json, print_summary, progress, setup_logging
            from crawler.run import crawl as run_crawl

        tty = _tty() and not settings.json
        setup_logging(quiet=settings.quiet, json_format=settings.log_format == "json")

        def watch(pool: Any) -> Any:
            return progress(pool, tty=tty, quiet=settings.quiet)

        summary = asyncio.run(
            run_crawl(settings, new_run=new_run, join=join, watch=watch, given=given, early=early)
        )
    finally:
        if early is not None:
            early.close()
    if settings.json:
        print_json(summary.to_json(), sys.stdout)
    elif not settings.quiet:
        print_summary(summary, tty=tty, out=sys.stdout)
    exit_with(summary.exit_code)


@app.command()
def psql(
    config: ConfigOpt = None,
    database_url: DatabaseUrlOpt = None,
    data_dir_: DataDirOpt = None,
) -> None:
    """Open the bundled psql on the crawl database."""
    settings = settings_from(config, database_url=database_url, data_dir=data_dir_)
    if settings.database_url:
        from crawler.db.database import Database, libpq_parts

        async def check() -> None:
            db = Database(settings.database_url or "")
            try:
                await db.check()
            finally:
                await db.dispose()

        asyncio.run(check())
        # The password goes to psql in its environment, never on a command line (ps shows it).
        url, password = libpq_parts(settings.database_url)
        env = {**os.environ, "PGPASSWORD": password} if password else None
        exit_with(subprocess.call([embedded.psql_path(), url], env=env))
        return
    folder = embedded.data_dir_of(settings)
    from crawler.db.access import require_crawl_database

    require_crawl_database(folder)  # a mistyped --data-dir is not a new empty database
    server = embedded.start(folder)
    try:
        exit_with(subprocess.call(embedded.psql_command(server)))
    finally:
        if server.started_here and not embedded.kept_running(folder):
            embedded.stop(folder)


@db_app.command("start")
def db_start(config: ConfigOpt = None, data_dir_: DataDirOpt = None) -> None:
    """Start the embedded PostgreSQL and keep it running; print its URL."""
    folder = embedded.data_dir_of(settings_from(config, data_dir=data_dir_))
    server = embedded.start(folder)
    embedded.keep_running(folder, True)
    print(server.url)


@db_app.command("stop")
def db_stop(config: ConfigOpt = None, data_dir_: DataDirOpt = None) -> None:
    """Stop the embedded PostgreSQL."""
    folder = embedded.data_dir_of(settings_from(config, data_dir=data_dir_))
    embedded.keep_running(folder, False)
    stopped = embedded.stop(folder)
    print("stopped" if stopped else "not running", file=sys.stderr)


@db_app.command("url")
def db_url(config: ConfigOpt = None, data_dir_: DataDirOpt = None) -> None:
    """Print the URL of the running embedded PostgreSQL."""
    folder = embedded.data_dir_of(settings_from(config, data_dir=data_dir_))
    server = embedded.status(folder)
    if server is None:
        raise ConfigError(f"the embedded PostgreSQL in {folder} is not running (crawler db start)")
    print(server.url)


@db_app.command("upgrade")
def db_upgrade(
    config: ConfigOpt = None, database_url: DatabaseUrlOpt = None, data_dir_: DataDirOpt = None
) -> None:
    """Apply the schema migrations (to the embedded database or --database-url)."""
    from crawler.db import migrate
    from crawler.run import open_database

    settings = settings_from(config, database_url=database_url, data_dir=data_dir_)

    async def go() -> None:
        async with open_database(settings, migrate_schema=False) as db:
            await migrate.upgrade(db.url)

    asyncio.run(go())
    print("database is at the latest schema", file=sys.stderr)


cli_sql.register(app)
cli_reports.register(app)
cli_report.register(app)
cli_maintenance.register(app)
cli_search.register(app, db_app)


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


def main(argv: list[str] | None = None) -> None:
    """Entry point: one clear line on stderr for every user mistake, never a traceback.

    Typer (standalone mode) reports usage errors itself, with exit code 2; our own errors
    come out of the commands as CrawlerError and are printed here."""
    collector.frozen_at_exit()
    command = typer.main.get_command(app)
    cli_help.plain_help(command)
    try:
        command(args=argv, prog_name="crawler")
    except CrawlerError as exc:
        print(f"crawler: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("crawler: interrupted", file=sys.stderr)
        sys.exit(130)
