"""Maintenance commands of the `crawler` CLI: reparse (registered by cli.py).

Thin like cli.py: build Settings (the config file's extraction rules included), check the
rules before touching the database, call `crawler.reparse`, print one summary line (or one
JSON object with `--json`). A bad selector or an unknown crawl is a ConfigError: exit 2.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from crawler.cli_options import ConfigOpt, DatabaseUrlOpt, DataDirOpt, settings_from
from crawler.cli_sql import started_hint

if TYPE_CHECKING:
    from crawler.reparse import ReparseResult


def _summary(result: ReparseResult) -> str:
    line = (
        f"reparsed {result.reparsed} page{'s' if result.reparsed != 1 else ''} of crawl "
        f"{result.crawl!r} ({result.changed} changed); "
        f"{result.missing} had no stored body"
    )
    if result.missing and not result.reparsed:
        line += " (crawl with --store-body to keep bodies)"
    return line


def _show_progress(result: ReparseResult) -> None:
    print(f"\r{result.pages} pages read, {result.reparsed} reparsed", end="", file=sys.stderr)


def register(app: typer.Typer) -> None:
    """Add the maintenance commands to the app."""

    @app.command("reparse")
    def reparse_command(
        name: Annotated[str, typer.Option("--name", help="The crawl to reparse.")],
        config: ConfigOpt = None,
        database_url: DatabaseUrlOpt = None,
        data_dir: DataDirOpt = None,
        json_out: Annotated[
            bool, typer.Option("--json", help="Print one JSON object on stdout.")
        ] = False,
    ) -> None:
        """Parse the crawl's stored bodies again (kept by crawl --store-body), without
        fetching: updates the pages' parsed columns and, with extraction rules in the
        config, pages.data (which becomes exactly those rules' fields). Links are kept."""
        settings = settings_from(config, name=name, database_url=database_url, data_dir=data_dir)
        from crawler.db.access import open_existing
        from crawler.extract import compile_rules
        from crawler.reparse import reparse

        rules = compile_rules(settings.extract)
        progress = _show_progress if sys.stderr.isatty() and not json_out else None

        async def go() -> ReparseResult:
            async with open_existing(settings, on_started=started_hint) as db:
                return await reparse(
                    db,
                    name,
                    rules,
                    obey_meta_robots=settings.obey_meta_robots,
                    progress=progress,
                )

        result = asyncio.run(go())
        if progress is not None:
            print(file=sys.stderr)
        if json_out:
            json.dump(dataclasses.asdict(result), sys.stdout)
            sys.stdout.write("\n")
        else:
            print(_summary(result))
