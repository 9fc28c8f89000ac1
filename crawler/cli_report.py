"""`crawler report`: one self-contained HTML file about a run (registered by cli.py).

Thin like the other commands: check the `report` extra is installed, gather the run's
figures (`crawler.db.report_queries`), render them (`crawler.report.render`), write the file
whole (to a temporary name, then renamed, so a failure leaves no half-written report).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crawler.cli_options import ConfigOpt, DatabaseUrlOpt, DataDirOpt, settings_from
from crawler.errors import ConfigError

if TYPE_CHECKING:
    from crawler.report.data import ReportData


def _write(out: Path, html: str) -> None:
    folder = out.parent if str(out.parent) else Path()
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(html)
        os.chmod(temp, 0o644)
        os.replace(temp, out)
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror or exc}") from None


def register(app: typer.Typer) -> None:
    """Add `report` to the app."""

    @app.command()
    def report(
        out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
        name: Annotated[
            str | None,
            typer.Option("--name", help="Crawl name (default: the most recently run crawl)."),
        ] = None,
        run: Annotated[
            int | None, typer.Option("--run", help="Run id (default: the crawl's latest run).")
        ] = None,
        config: ConfigOpt = None,
        database_url: DatabaseUrlOpt = None,
        data_dir: DataDirOpt = None,
    ) -> None:
        """Write an HTML report of a run: summary, charts, broken links and more (one
        self-contained file; needs the report extra)."""
        from crawler import report as report_package

        report_package.require()
        if not out.parent.is_dir():
            raise ConfigError(f"cannot write {out}: there is no folder {out.parent}")
        settings = settings_from(config, database_url=database_url, data_dir=data_dir)

        from crawler.db import report_queries
        from crawler.report.render import render
        from crawler.run import open_database

        async def go() -> ReportData:
            async with open_database(settings) as db:
                return await report_queries.gather(db, name, run)

        data = asyncio.run(go())
        _write(out, render(data))
        print(
            f"wrote {out}: crawl {data.summary.crawl}, run {data.summary.run_id}",
            file=sys.stderr,
        )
