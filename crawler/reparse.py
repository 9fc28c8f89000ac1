"""`crawler reparse`: parse a crawl's stored bodies again, with today's parser and rules.

No HTTP at all: the bodies come from the `bodies` table (kept by `crawl --store-body`), in
batches read by keyset pagination (`crawler.db.bodies`), parsed in a worker thread (lexbor
releases the GIL while it builds a tree; the event loop stays free), and written back one
statement a batch while the next batch is read and parsed. At most two batches are in
memory, so memory stays flat however large the crawl.

What is written: the parsed columns of `pages` (title, description, canonical, lang, h1,
text, meta_robots) and, when extraction rules are given, `pages.data`, which becomes exactly
the fields of those rules, as a crawl with them would have stored. Without rules
`pages.data` is left as it is. A noindex page keeps no text and no data, as in a crawl
(unless meta robots are not obeyed: `obey_meta_robots = false`). Links stay as they were
fetched: they are the crawl's link graph, and rewriting them would cost some forty row
deletes and inserts a page.

Bodies are decoded as the fetcher decodes them (`crawler.encoding`: byte order mark, then
`<meta charset>`, then UTF-8 if valid, else windows-1252), except that the Content-Type
charset of the original response is not stored, so a page whose encoding was named only
there is read as an undeclared one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from crawler.db import bodies, runs
from crawler.db.database import Database
from crawler.encoding import decode_html  # the fetcher's sniffing: read as when fetched
from crawler.errors import ConfigError
from crawler.extract import CompiledRules
from crawler.parse import parse_html, stored_page

BATCH_PAGES = 200
BATCH_BYTES = 4 << 20  # compressed body bytes read at once (one page more if it is larger)


@dataclass(frozen=True, slots=True)
class ReparseResult:
    """What a reparse did: pages of the crawl seen, parsed again, changed in the database,
    and without a readable stored body (crawled without --store-body)."""

    crawl: str
    pages: int = 0
    reparsed: int = 0
    changed: int = 0
    missing: int = 0


Progress = Callable[[ReparseResult], None]


def decode_body(body: bytes) -> str:
    """A stored HTML body as text (it was HTML when fetched: pages holds nothing else)."""
    text = decode_html(body, "text/html", None)
    return text if text is not None else body.decode("utf-8", errors="replace")


def _parse_batch(
    batch: list[bodies.StoredPage], rules: CompiledRules, obey_meta_robots: bool
) -> tuple[list[bodies.Reparsed], int]:
    """Parse the pages of one batch that have a body; also return how many had none."""
    parsed: list[bodies.Reparsed] = []
    missing = 0
    for stored in batch:
        body = stored.body()
        if body is None:
            missing += 1
            continue
        page = parse_html(decode_body(body), stored.final_url or stored.url, rules)
        page = stored_page(page, obey_meta_robots=obey_meta_robots)
        parsed.append(bodies.Reparsed(stored.id, stored.content_hash, page, keep_data=not rules))
    return parsed, missing


async def reparse(
    db: Database,
    name: str,
    rules: CompiledRules,
    *,
    obey_meta_robots: bool = True,
    batch_pages: int = BATCH_PAGES,
    batch_bytes: int = BATCH_BYTES,
    progress: Progress | None = None,
) -> ReparseResult:
    """Parse every stored body of the crawl `name` again and store the results.

    Raises ConfigError when there is no such crawl."""
    crawl = await runs.find_crawl(db, name)
    if crawl is None:
        raise ConfigError(f"there is no crawl named {name!r}")
    result = ReparseResult(crawl=crawl.name)
    after = 0
    # One batch is written while the next is read and parsed: two batches in memory at most.
    writing: asyncio.Task[int] | None = None
    counts = (0, 0, 0)  # pages, reparsed and missing of the batch being written
    try:
        while True:
            batch = await bodies.page_batch(
                db, crawl.id, after, limit=batch_pages, max_bytes=batch_bytes
            )
            parsed: list[bodies.Reparsed] = []
            missing = 0
            if batch:
                after = batch[-1].id
                parsed, missing = await asyncio.to_thread(
                    _parse_batch, batch, rules, obey_meta_robots
                )
            if writing is not None:
                result = _add(result, counts, await writing)
                writing = None
                if progress is not None:
                    progress(result)
            if not batch:
                return result
            writing = asyncio.create_task(bodies.write_reparsed(db, parsed))
            counts = (len(batch), len(parsed), missing)
    finally:
        if writing is not None:  # failed or cancelled half way: nothing left running
            writing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writing


def _add(result: ReparseResult, batch: tuple[int, int, int], changed: int) -> ReparseResult:
    pages, reparsed, missing = batch
    return ReparseResult(
        crawl=result.crawl,
        pages=result.pages + pages,
        reparsed=result.reparsed + reparsed,
        changed=result.changed + changed,
        missing=result.missing + missing,
    )
