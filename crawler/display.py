"""What a person (or a log) sees of a crawl: live progress, progress lines, the summary.

On a terminal: a rich live display, cleared at the end, then a summary table. Elsewhere
(cron, pipes): a progress line on stderr every so often, then one plain summary line; no
colour, no bar.

Every count has one meaning, here and in the summary: `fetched` the URLs completed (fetched,
failed or refused by robots.txt), `errors` those of them whose final outcome is a failure (a
retried attempt is not one), `retries` the attempts that were retried, `in flight` the HTTP
requests under way now. The live display and progress lines count this invocation (this
process). The summary of a run that is more than this invocation (resumed, joined) shows
both, labelled: this invocation's counts and the run's totals (those of `crawl_runs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, TextIO

from crawler.pool import Pool
from crawler.summary import Summary

if TYPE_CHECKING:  # rich is imported only to draw on a terminal (not for --json, cron, pipes)
    from rich.table import Table

PROGRESS_EVERY = 10.0


def _rate_and_queued(pool: Pool, elapsed: float) -> tuple[float, int]:
    """Pages/s so far, and an estimate of the URLs still to do (found minus fetched)."""
    s = pool.stats
    rate = s.fetched / elapsed if elapsed > 0 else 0.0
    return rate, max(s.queued + 1 - s.fetched, len(pool.in_flight))


def _status_line(pool: Pool, elapsed: float) -> str:
    s = pool.stats
    rate, queued = _rate_and_queued(pool, elapsed)
    rendered = f"  rendered {s.rendered}" if s.rendered else ""
    return (
        f"fetched {s.fetched}  pages {s.pages}{rendered}  queued ~{queued}  "
        f"errors {s.errors}  {rate:.1f} pages/s  {elapsed:.0f}s"
    )


def _progress_table(pool: Pool, elapsed: float) -> Table:
    from rich.table import Table

    s = pool.stats
    rate, queued = _rate_and_queued(pool, elapsed)
    table = Table.grid(padding=(0, 2))
    for _ in range(6):
        table.add_column(justify="right")
    table.add_row("fetched", "queued", "in flight", "errors", "pages/s", "elapsed")
    table.add_row(
        f"[bold]{s.fetched}[/]",
        f"~{queued}",
        str(pool.hosts.requests_in_flight),
        f"[red]{s.errors}[/]" if s.errors else "0",
        f"{rate:.1f}",
        f"{elapsed:.0f}s",
    )
    return table


@contextlib.asynccontextmanager
async def progress(pool: Pool, *, tty: bool, quiet: bool) -> AsyncIterator[None]:
    """Show the pool's progress while the body runs."""
    started = time.monotonic()
    if quiet:
        yield
        return
    if tty:
        from rich.console import Console
        from rich.live import Live

        console = Console(stderr=True)
        # Transient: its last frame goes when the crawl ends, and the summary says the rest.
        with Live(
            _progress_table(pool, 0), console=console, refresh_per_second=4, transient=True
        ) as live:

            async def refresh() -> None:
                while True:
                    await asyncio.sleep(0.25)
                    live.update(_progress_table(pool, time.monotonic() - started))

            task = asyncio.create_task(refresh())
            try:
                yield
            finally:
                task.cancel()
        return

    async def log_lines() -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            elapsed = time.monotonic() - started
            logging.getLogger("crawler").info("progress: %s", _status_line(pool, elapsed))

    task = asyncio.create_task(log_lines())
    try:
        yield
    finally:
        task.cancel()


# Below this, a run's duration is too short for its rate to mean anything.
RATE_AFTER_SECONDS = 1.0


def _took(seconds: float, rate: float) -> str:
    """`12.3s (45.6 pages/s)`; a short run's duration with more precision, and no rate."""
    if seconds < RATE_AFTER_SECONDS:
        return f"{seconds:.2f}s"
    return f"{seconds:.1f}s ({rate:.1f} pages/s)"


def summary_line(summary: Summary) -> str:
    s = summary.stats
    statuses = " ".join(f"{k}={v}" for k, v in sorted(s.statuses.items())) or "none"
    kinds = " ".join(f"{k}={v}" for k, v in sorted(s.error_kinds.items())) or "none"
    verb = "resumed and " if summary.resumed else ""
    rendered = f" ({s.rendered} rendered)" if s.rendered else ""
    counts = (
        f"{s.pages} pages{rendered}, {s.fetched} fetched, {s.errors} errors, {s.retries} retries "
        f"in {_took(s.duration, s.pages_per_second)}"
    )
    run = summary.run
    if summary.run_differs:
        totals = (
            "unknown"
            if run is None
            else f"{run.pages} pages, {run.fetched} fetched, {run.errors} errors"
        )
        counts = f"run totals {totals}; this invocation {counts}"
    return (
        f"crawl {summary.crawl} run {summary.run_id} {verb}{summary.status}: "
        f"{counts}; statuses {statuses}; errors {kinds}"
    )


def print_summary(summary: Summary, *, tty: bool, out: TextIO) -> None:
    if not tty:
        print(summary_line(summary), file=out, flush=True)
        return
    from rich.console import Console
    from rich.table import Table

    s = summary.stats
    console = Console(file=out)
    verb = "resumed and " if summary.resumed else ""
    console.print(
        f"[bold]crawl {summary.crawl}[/] run {summary.run_id} {verb}[bold]{summary.status}[/]"
    )
    both = summary.run_differs
    run = summary.run
    table = Table(show_header=both, box=None, padding=(0, 2))
    table.add_column(style="dim")
    table.add_column("this invocation" if both else "")
    if both:
        table.add_column("run total")

    def row(label: str, now: int, total: int | None) -> None:
        """A count of this invocation, and beside it the run's total (None: unknown)."""
        cells = [label, str(now)] + (["?" if total is None else str(total)] if both else [])
        table.add_row(*cells)

    row("pages stored", s.pages, None if run is None else run.pages)
    if s.rendered:
        row("  rendered in a browser", s.rendered, None)
    row("fetched", s.fetched, None if run is None else run.fetched)
    table.add_row("statuses", " ".join(f"{k}: {v}" for k, v in sorted(s.statuses.items())) or "-")
    row("errors (failed URLs)", s.errors, None if run is None else run.errors)
    for kind, n in sorted(s.error_kinds.items()):
        table.add_row(f"  {kind}", str(n))
    table.add_row("retries", str(s.retries))
    short = s.duration < RATE_AFTER_SECONDS
    table.add_row("duration", f"{s.duration:.2f} s" if short else f"{s.duration:.1f} s")
    if not short:
        table.add_row("rate", f"{s.pages_per_second:.1f} pages/s")
    console.print(table)


def print_json(obj: Any, out: TextIO) -> None:
    print(json.dumps(obj, default=str), file=out, flush=True)


class _StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is at the time (rich's live display swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:  # pragma: no cover - logging must never crash the crawl
            self.handleError(record)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "time": round(record.created, 3),
                "level": record.levelname.lower(),
                "message": record.getMessage(),
            }
        )


def setup_logging(*, quiet: bool, json_format: bool) -> None:
    """The "crawler" logger on stderr: info and up, only errors with --quiet."""
    logger = logging.getLogger("crawler")
    logger.handlers.clear()
    handler = _StderrHandler()
    handler.setFormatter(
        _JsonFormatter() if json_format else logging.Formatter("crawler: %(message)s")
    )
    logger.addHandler(handler)
    logger.setLevel(logging.ERROR if quiet else logging.INFO)
    logger.propagate = False
