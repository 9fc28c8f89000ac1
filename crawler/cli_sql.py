"""The `crawler sql` command (registered by cli.py): one statement, printed as a table sized to
the terminal, as CSV or as JSON Lines.

Read-only unless `--write`; a write prints its command tag with the row count (`UPDATE 3`),
on stdout after a table, on stderr with `--csv` / `--json` (stdout carries only data). Values
are shown by `crawler.cells`. When the command had to start the embedded server itself, one
line on stderr says that `crawler db start` makes the next command faster.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crawler import cells
from crawler.cli_options import ConfigOpt, DatabaseUrlOpt, DataDirOpt, settings_from
from crawler.errors import ConfigError

if TYPE_CHECKING:
    from crawler.db.query import SqlResult

MAX_PIPE_WIDTH = 100_000
NUMERIC_TYPES = frozenset({"int2", "int4", "int8", "float4", "float8", "numeric", "oid", "money"})


def started_hint(folder: Path) -> None:
    """Tell the user how to skip the embedded server's start next time (stderr, one line)."""
    print(
        f"crawler: started the embedded PostgreSQL in {folder} for this command only; "
        "`crawler db start` keeps it running, so the next commands answer faster",
        file=sys.stderr,
    )


def _print_table(result: SqlResult) -> None:
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table
    from rich.text import Text

    table = Table()
    for name, kind in zip(result.columns, result.types, strict=True):
        table.add_column(name, justify="right" if kind in NUMERIC_TYPES else "left")
    for row in result.rows:
        table.add_row(*(Text(cells.text(v, t)) for v, t in zip(row, result.types, strict=True)))
    # At a terminal (or with COLUMNS set), rich fits the table to that width; into a pipe or
    # a file nothing is wrapped: the table gets the width its values need.
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        wide = console.options.update_width(MAX_PIPE_WIDTH)
        console.width = Measurement.get(console, wide, table).maximum
    console.print(table)
    print(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")


def _print_csv(result: SqlResult) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow([cells.text(v, t) for v, t in zip(row, result.types, strict=True)])


def _print_json_lines(result: SqlResult) -> None:
    for row in result.rows:
        line = {
            name: cells.json_value(v, t)
            for name, v, t in zip(result.columns, row, result.types, strict=True)
        }
        sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")


def register(app: typer.Typer) -> None:
    """Add `crawler sql` to the app."""

    @app.command()
    def sql(
        query: Annotated[str, typer.Argument(help="One SQL statement.", metavar="STATEMENT")],
        csv_out: Annotated[
            bool, typer.Option("--csv", help="Print CSV instead of a table.")
        ] = False,
        json_out: Annotated[
            bool, typer.Option("--json", help="Print JSON Lines: one object a row.")
        ] = False,
        write: Annotated[
            bool,
            typer.Option(
                "--write", help="Allow the statement to change the database (default: read-only)."
            ),
        ] = False,
        config: ConfigOpt = None,
        database_url: DatabaseUrlOpt = None,
        data_dir_: DataDirOpt = None,
    ) -> None:
        """Run one SQL statement on the crawl database and print the result (read-only
        unless --write). With the embedded database, `crawler db start` first makes
        repeated calls fast."""
        if csv_out and json_out:
            raise ConfigError("give --csv or --json, not both")
        settings = settings_from(config, database_url=database_url, data_dir=data_dir_)
        from crawler.db.access import APPLICATION_NAME, crawl_database_url
        from crawler.db.query import run_sql

        async def go() -> SqlResult:
            # No migration and no schema check: sql must work on a damaged schema too.
            async with crawl_database_url(settings, on_started=started_hint) as url:
                return await run_sql(url, query, write=write, application_name=APPLICATION_NAME)

        result = asyncio.run(go())
        if csv_out:
            _print_csv(result)
        elif json_out:
            _print_json_lines(result)
        elif result.columns:
            _print_table(result)
        is_select = result.status.split(" ")[0] in ("SELECT", "SHOW", "VALUES", "EXPLAIN")
        if result.status and not is_select:
            print(result.status, file=sys.stdout if not (csv_out or json_out) else sys.stderr)
