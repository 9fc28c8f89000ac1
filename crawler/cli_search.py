"""Search commands of the `crawler` CLI: `search` and `db index` (registered by cli.py).

Thin like cli.py: build Settings, open the existing crawl database (`crawler.db.access`: a
mistyped `--data-dir` is refused, never a new empty database), call `crawler.db.search`, print. A
search first indexes the pages that need it (all of them, the first time), with a progress
line on stderr when stderr is a terminal, and one line saying how many it indexed. The
hits go to stdout: rank, URL, title and snippet (matched words in bold on a terminal), or
one JSON object a line with `--json`. An unknown crawl is a ConfigError: one line, exit 2.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from crawler.cli_options import ConfigOpt, DatabaseUrlOpt, DataDirOpt, settings_from
from crawler.cli_sql import started_hint

if TYPE_CHECKING:
    from crawler.db.search import Hit, IndexResult

NameOpt = Annotated[
    str | None, typer.Option("--name", help="Crawl name (default: the most recently run crawl).")
]


def _plain(snippet: str) -> str:
    from crawler.db.search import MARK_END, MARK_START

    return snippet.replace(MARK_START, "").replace(MARK_END, "")


def _show_progress(done: int, total: int) -> None:
    print(f"\rindexing pages for search: {done}/{total}", end="", file=sys.stderr)


def _print_hits(hits: list[Hit]) -> None:
    from rich.console import Console
    from rich.text import Text

    from crawler.db.search import MARK_END, MARK_START

    console = Console(highlight=False, soft_wrap=not sys.stdout.isatty())
    for hit in hits:
        snippet = Text()
        for i, part in enumerate(hit.snippet.replace(MARK_END, MARK_START).split(MARK_START)):
            snippet.append(part, style="bold" if i % 2 else "")
        console.print(Text(f"{hit.rank:8.4f}  ") + Text(hit.url, style="cyan"))
        console.print(Text("          ") + Text(hit.title or "(no title)", style="bold"))
        console.print(Text("          ") + snippet)


def _report_indexing(result: IndexResult, seconds: float) -> None:
    if result.indexed:
        print(
            f"indexed {result.indexed} page{'s' if result.indexed != 1 else ''} of crawl "
            f"{result.crawl!r} for search in {seconds:.1f} s",
            file=sys.stderr,
        )


def register(app: typer.Typer, db_app: typer.Typer) -> None:
    """Add `search` to the app and `index` to its `db` group."""

    @app.command()
    def search(
        query: Annotated[
            str, typer.Argument(help='Words, "a phrase", or, -not (web search syntax).')
        ],
        name: NameOpt = None,
        limit: Annotated[int, typer.Option("--limit", min=1, help="Hits to show.")] = 20,
        json_out: Annotated[
            bool, typer.Option("--json", help="Print JSON Lines: rank, url, title, snippet.")
        ] = False,
        config: ConfigOpt = None,
        database_url: DatabaseUrlOpt = None,
        data_dir: DataDirOpt = None,
    ) -> None:
        """Full-text search over the pages of a crawl, best first (PostgreSQL text search:
        title above h1 above description above text)."""
        settings = settings_from(config, database_url=database_url, data_dir=data_dir)
        from crawler.db.access import open_existing
        from crawler.db.search import search as run_search

        progress = _show_progress if sys.stderr.isatty() else None

        async def go() -> tuple[IndexResult, list[Hit]]:
            async with open_existing(settings, on_started=started_hint) as db:
                return await run_search(db, name, query, limit=limit, progress=progress)

        started = time.monotonic()
        indexed, hits = asyncio.run(go())
        if progress is not None and indexed.indexed:
            print(file=sys.stderr)
        _report_indexing(indexed, time.monotonic() - started)
        if json_out:
            for hit in hits:
                row = {"rank": hit.rank, "url": hit.url, "title": hit.title}
                json.dump({**row, "snippet": _plain(hit.snippet)}, sys.stdout, ensure_ascii=False)
                sys.stdout.write("\n")
        elif hits:
            _print_hits(hits)
        else:
            print(f"no page of crawl {indexed.crawl!r} matches {query!r}", file=sys.stderr)

    @db_app.command("index")
    def db_index(
        name: Annotated[
            str | None, typer.Option("--name", help="Crawl name (default: every crawl).")
        ] = None,
        rebuild: Annotated[
            bool, typer.Option(help="Index every page again (after crawler reparse).")
        ] = False,
        config: ConfigOpt = None,
        database_url: DatabaseUrlOpt = None,
        data_dir: DataDirOpt = None,
    ) -> None:
        """Bring the full-text search index up to date: index the pages fetched or changed
        since the last search or index (a search does this itself first)."""
        settings = settings_from(config, database_url=database_url, data_dir=data_dir)
        from crawler.db.access import open_existing
        from crawler.db.search import refresh_all

        async def go() -> list[IndexResult]:
            async with open_existing(settings, on_started=started_hint) as db:
                return await refresh_all(db, name, rebuild=rebuild)

        started = time.monotonic()
        results = asyncio.run(go())
        for result in results:
            print(
                f"crawl {result.crawl!r}: indexed {result.indexed} pages, "
                f"dropped {result.dropped} gone",
                file=sys.stderr,
            )
        print(f"search index up to date ({time.monotonic() - started:.1f} s)", file=sys.stderr)
