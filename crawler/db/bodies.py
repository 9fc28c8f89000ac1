"""Stored bodies for `crawler reparse`: read a crawl's pages with their bodies, write back.

Bodies are kept (with --store-body) one per content hash in `bodies`, zlib-compressed by the
page statement of store.py; `pages.content_hash` names a page's body. Reading goes by keyset
pagination on `pages.id`, one short statement a batch, so nothing holds a transaction or a
connection while the caller parses, and a batch ends at `max_bytes` of compressed bodies
(or `limit` pages), so memory stays flat however large the crawl. Bodies stay compressed in
the records until the caller asks for one (`StoredPage.body()`).

The write-back is one UPDATE a batch. It is fenced by the content hash: a page that a
concurrent crawl refetched with other content since it was read keeps what that crawl
wrote. Rows whose fields come out the same are not rewritten.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import text

from crawler.db.database import Database
from crawler.records import Page

# How each value of bodies.encoding is read back (store.py writes zlib).
_DECODERS: dict[str, Callable[[bytes], bytes]] = {"zlib": zlib.decompress, "identity": bytes}

_BATCH = text(
    """
    SELECT id, url, final_url, content_type, content_hash, encoding, body FROM (
        SELECT p.id, p.url, p.final_url, p.content_type, p.content_hash, b.encoding, b.body,
               sum(coalesce(octet_length(b.body), 0)) OVER (ORDER BY p.id) AS upto,
               coalesce(octet_length(b.body), 0) AS size
        FROM pages p
        LEFT JOIN bodies b ON b.content_hash = p.content_hash
        WHERE p.crawl_id = :crawl_id AND p.id > :after
        ORDER BY p.id
        LIMIT :limit
    ) batch
    WHERE upto - size < :max_bytes
    ORDER BY id
    """
)

_WRITE = text(
    """
    WITH v AS (
        SELECT * FROM unnest(
            CAST(:ids AS bigint[]), CAST(:hashes AS text[]), CAST(:titles AS text[]),
            CAST(:descriptions AS text[]), CAST(:canonicals AS text[]), CAST(:langs AS text[]),
            CAST(:h1s AS text[]), CAST(:texts AS text[]), CAST(:robots AS text[]),
            CAST(CAST(:datas AS text[]) AS jsonb[])
        ) AS v(id, content_hash, title, description, canonical, lang, h1, text, meta_robots,
               data)
    )
    UPDATE pages p SET
        title = v.title,
        description = v.description,
        canonical = v.canonical,
        lang = v.lang,
        h1 = v.h1,
        text = v.text,
        meta_robots = v.meta_robots,
        data = coalesce(v.data, p.data)
    FROM v
    WHERE p.id = v.id
      AND p.content_hash IS NOT DISTINCT FROM v.content_hash
      AND (p.title, p.description, p.canonical, p.lang, p.h1, p.text, p.meta_robots, p.data)
          IS DISTINCT FROM
          (v.title, v.description, v.canonical, v.lang, v.h1, v.text, v.meta_robots,
           coalesce(v.data, p.data))
    RETURNING p.id
    """
)


@dataclass(frozen=True, slots=True)
class StoredPage:
    """One page of a crawl as stored, with its body still compressed (None: not stored)."""

    id: int
    url: str
    final_url: str | None
    content_type: str | None
    content_hash: str | None
    encoding: str | None
    compressed: bytes | None

    def body(self) -> bytes | None:
        """The raw response body, or None when none is stored or it cannot be read back."""
        if self.compressed is None or self.encoding is None:
            return None
        decode = _DECODERS.get(self.encoding)
        if decode is None:
            return None
        try:
            return decode(self.compressed)
        except zlib.error:
            return None


@dataclass(frozen=True, slots=True)
class Reparsed:
    """A page parsed again: its id, the content hash it was parsed from, and the result.

    `keep_data` leaves pages.data as it is (no extraction rules were given)."""

    id: int
    content_hash: str | None
    page: Page
    keep_data: bool = False


async def page_batch(
    db: Database, crawl_id: int, after: int, *, limit: int = 200, max_bytes: int = 4 << 20
) -> list[StoredPage]:
    """The crawl's next pages by id after `after` (0 to start), with their stored bodies:
    at most `limit` pages and, past the first, at most `max_bytes` of compressed bodies.
    An empty list means the end."""
    rows = await db.execute(
        _BATCH, {"crawl_id": crawl_id, "after": after, "limit": limit, "max_bytes": max_bytes}
    )
    return [
        StoredPage(
            id=row.id,
            url=row.url,
            final_url=row.final_url,
            content_type=row.content_type,
            content_hash=row.content_hash,
            encoding=row.encoding,
            compressed=None if row.body is None else bytes(row.body),
        )
        for row in rows
    ]


def _clean(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL characters; pages sometimes do."""
    if value is not None and "\x00" in value:
        return value.replace("\x00", "")
    return value


async def write_reparsed(db: Database, pages: Sequence[Reparsed]) -> int:
    """Store the parsed fields (and pages.data) of the pages; return how many rows changed."""
    if not pages:
        return 0
    params = {
        "ids": [r.id for r in pages],
        "hashes": [r.content_hash for r in pages],
        "titles": [_clean(r.page.title) for r in pages],
        "descriptions": [_clean(r.page.description) for r in pages],
        "canonicals": [_clean(r.page.canonical) for r in pages],
        "langs": [_clean(r.page.lang) for r in pages],
        "h1s": [_clean(r.page.h1) for r in pages],
        "texts": [_clean(r.page.text) for r in pages],
        "robots": [_clean(r.page.meta_robots) for r in pages],
        "datas": [None if r.keep_data else json.dumps(r.page.data) for r in pages],
    }
    return len(await db.execute(_WRITE, params))
