"""Reporting commands of the `crawler` CLI: runs, changes, export (registered by cli.py).

Thin like cli.py: build Settings, open the existing crawl database (`crawler.db.access`,
which refuses a data dir without one), call a named read operation of
`crawler.db.reports`, print. Tables and progress are for people at a terminal; `--json` and
exports are for machines (stdout carries only the data; progress goes to stderr, and only
when stderr is a terminal). An unknown crawl or run is a ConfigError: one line, exit 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import json
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer

from crawler.cli_options import ConfigOpt, DatabaseUrlOpt, DataDirOpt, settings_from
from crawler.cli_sql import started_hint
from crawler.errors import ConfigError

if TYPE_CHECKING:
    from crawler.db import reports

NameOpt = Annotated[
    str | None, typer.Option("--name", help="Crawl name (default: the most recently run crawl).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


class Table(enum.StrEnum):
    pages = "pages"
    links = "links"
    fetches = "fetches"


class Format(enum.StrEnum):
    jsonl = "jsonl"
    csv = "csv"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _print_json(value: Any) -> None:
    json.dump(value, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


def _print_runs(rows: list[reports.RunRow]) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    table = RichTable("run", "crawl", "status", "started", "finished", "pages", "errors")
    for heading in ("new", "changed", "unchanged", "gone"):
        table.add_column(heading, justify="right")
    for column in table.columns[5:7]:
        column.justify = "right"
    for r in rows:
        table.add_row(
            str(r.id),
            r.crawl,
            r.status,
            f"{r.started_at:%Y-%m-%d %H:%M:%S}",
            "" if r.finished_at is None else f"{r.finished_at:%Y-%m-%d %H:%M:%S}",
            *(str(n) for n in (r.pages, r.errors, r.new, r.changed, r.unchanged, r.gone)),
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def _print_changes(changes: reports.Changes) -> None:
    from crawler.db.reports import OUTCOMES

    counts = ", ".join(f"{len(getattr(changes, o))} {o}" for o in OUTCOMES)
    print(f"crawl {changes.crawl}, run {changes.run_id}: {counts}")
    for outcome, mark in (("new", "+"), ("changed", "~"), ("gone", "-")):
        for url in getattr(changes, outcome):
            print(f"{mark} {url}")


@contextlib.contextmanager
def _progress(
    table: str, show: bool
) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """(set_total, advance_to) for a rich progress bar on stderr, or no-ops."""
    if not show:
        yield (lambda _n: None), (lambda _n: None)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        f"exporting {table}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(table, total=None)
        yield (
            lambda n: bar.update(task, total=n),
            lambda n: bar.update(task, completed=n),
        )


@contextlib.contextmanager
def _output(out: Path | None) -> Iterator[BinaryIO]:
    if out is None:
        yield sys.stdout.buffer
        return
    try:
        stream = out.open("wb")
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror or exc}") from None
    with stream:
        yield stream


def register(app: typer.Typer) -> None:
    """Add the reporting commands to the app."""

    @app.command()
    def runs(
        name: Annotated[
            str | None, typer.Option("--name", help="Crawl name (default: every crawl).")
        ] = None,
        json_out: JsonOpt = False,
        config: ConfigOpt = None,
        database_url: DatabaseUrlOpt = None,
        data_dir: DataDirOpt = None,
    ) -> None:
        """List the runs of a crawl (of every crawl without --name): start, end, status,
        pages, errors and page changes."""
        settings = settings_from(config, database_url=database_url, data_dir=data_dir)

        from crawler.db import reports
        from crawler.db.access import open_existing

        async def go() -> list[reports.RunRow]:
            async with open_existing(settings, on_started=started_hint) as db:
                return await reports.list_runs(db, name)

        rows = asyncio.run(go())
        if json_out:
            _print_json(
                [
                    {
                        **dataclasses.asdict(r),
                        "started_at": _iso(r.started_at),
                        "finished_at": _iso(r.finished_at),
                    }
                    for r in rows
                ]
            )
        elif rows:
            _print_runs(rows)
        else:
            print("no runs yet", file=sys.stderr)

    @app.command()
    def changes(
        name: NameOpt = None,
        run: Annotated[
            int | None, typer.Option("--run", help="Run id (default: the crawl's latest run).")
        ] = None,
        json_out: JsonOpt = False,
        config: ConfigOpt = None,
        database_url: DatabaseUrlOpt = None,
        data_dir: DataDirOpt = None,
    ) -> None:
        """Show what a run found: new, changed, unchanged and gone pages."""
        settings = settings_from(config, database_url=database_url, data_dir=data_dir)

        from crawler.db import reports
        from crawler.db.access import open_existing

        async def go() -> reports.Changes:
            async with open_existing(settings, on_started=started_hint) as db:
                return await reports.changes(db, name, run)

        found = asyncio.run(go())
        if json_out:
            _print_json(found.to_json())
        else:
            _print_changes(found)

    @app.command()
    def export(
        fmt: Annotated[Format, typer.Option("--format", help="Output format.")],
        name: NameOpt = None,
        run: Annotated[
            int | None,
            typer.Option(
                "--run",
                help="Run whose fetches to export (default: the latest); pages and links "
                "are always the crawl's latest state.",
            ),
        ] = None,
        table: Annotated[Table, typer.Option("--table", help="What to export.")] = Table.pages,
        out: Annotated[
            Path | None, typer.Option("--out", help="Write to FILE (default: stdout).")
        ] = None,
        batch: Annotated[
            int, typer.Option("--batch", min=1, help="Rows per round trip, at most.")
        ] = 1000,
        config: ConfigOpt = None,
        database_url: DatabaseUrlOpt = None,
        data_dir: DataDirOpt = None,
    ) -> None:
        """Stream pages, links or fetches as JSON Lines or CSV, in bounded memory."""
        from crawler import export as exporter
        from crawler.db import reports
        from crawler.db.access import open_existing

        settings = settings_from(config, database_url=database_url, data_dir=data_dir)

        # A bar on the terminal, unless the data goes to that same terminal.
        show = sys.stderr.isatty() and (out is not None or not sys.stdout.isatty())

        async def go() -> int:
            async with open_existing(settings, on_started=started_hint) as db:
                target = await reports.resolve(db, name, run)
                with _progress(table.value, show) as (set_total, advance), _output(out) as stream:
                    if show:
                        set_total(await reports.count_rows(db, table.value, target.crawl, run))
                    rows = reports.export_rows(db, table.value, target.crawl, run, batch)
                    async with contextlib.aclosing(rows):
                        return await exporter.write(
                            fmt.value,
                            rows,
                            stream,
                            reports.columns(table.value),
                            progress=advance,
                        )

        count = asyncio.run(go())
        if show:
            print(f"exported {count} {table.value}", file=sys.stderr)
