"""Full-text search over the pages of a crawl, with PostgreSQL's own machinery.

`page_search` (migration 0007) holds one weighted `tsvector` a page (title A, h1 B,
description C, text D), in the text-search configuration of the page's language
(`pages.lang`: `en` -> english, `de-AT` -> german, …; `simple` where PostgreSQL has none),
with a GIN index, and a smaller vector of the page's head. The crawl never writes it:
`refresh` fills it lazily, before each search and from `crawler db index`, for the pages
that have no vector yet or whose content hash changed since theirs was built, in batches on
several connections at once (building the vectors is the server's CPU work; one connection
would use one core). A page's text is searched as far as its first `INDEX_TEXT_CHARS`
characters (its title, h1 and description always). Gone pages keep no vector; a deleted
page's row goes with it (foreign key). After `crawler reparse` (same bodies, new text)
`rebuild=True` builds every vector again.

A query is read by `websearch_to_tsquery` (quotes, `or`, `-word`: any input is safe), once
per configuration the crawl's vectors use, so each row is matched by a query in its own
configuration and the GIN index serves each part. Hits are ranked by `ts_rank_cd` with the
default weights (title 1.0, h1 0.4, description 0.2, text 0.1; normalised by the log of the
document's length) in two steps: every match by its head vector (title, h1, description
and the start of the text, kept in the row), then the best `CANDIDATES` by their whole
vector (kept in TOAST: reading it for every match of a common word cost most of a search).
Only the top hits get a snippet: `ts_headline` over a window of the text from just before
the first word that starts like one of the query's lexemes, since `ts_headline` parses all
the text it is given.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import text

from crawler.db.database import Database
from crawler.db.reports import resolve

__all__ = ["LANG_CONFIGS", "Hit", "IndexResult", "refresh", "refresh_all", "search"]

# ISO 639-1 codes -> PostgreSQL's built-in text-search configurations (those a server
# lacks, older versions, fall back to `simple`).
LANG_CONFIGS = {
    "ar": "arabic",
    "ca": "catalan",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "eu": "basque",
    "fi": "finnish",
    "fr": "french",
    "ga": "irish",
    "hi": "hindi",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "it": "italian",
    "lt": "lithuanian",
    "nb": "norwegian",
    "ne": "nepali",
    "nl": "dutch",
    "nn": "norwegian",
    "no": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
    "yi": "yiddish",
}
BATCH_PAGES = 100  # pages a statement indexes
INDEX_CONNECTIONS = max(1, min(4, os.cpu_count() or 1))
# Of pages.text, what is searched: PostgreSQL's text-search parser reads about 12 MB/s a
# core, so the whole text of 10,000 pages of 25 KB cost more than 15 s to index on 2 cores.
INDEX_TEXT_CHARS = 10_000
HEAD_TEXT_CHARS = 1_500  # of pages.text in page_search.head, which ranks every match
CANDIDATES = 100  # best matches by their head that are ranked by their whole vector
SNIPPET_WINDOW = 2_000  # characters of text from just before the first match, for ts_headline
SNIPPET_BEFORE = 60
_WEIGHTS = [0.1, 0.2, 0.4, 1.0]  # D (text), C (description), B (h1), A (title)
_HEADLINE = (
    'MaxWords=30, MinWords=12, MaxFragments=2, FragmentDelimiter=" … ", StartSel=\x02, StopSel=\x03'
)
MARK_START, MARK_END = "\x02", "\x03"  # around the matched words of a snippet

Progress = Callable[[int, int], None]  # (pages indexed so far, pages to index)


@dataclass(frozen=True, slots=True)
class IndexResult:
    """What a refresh did for one crawl: vectors built, and rows of gone pages dropped."""

    crawl: str
    indexed: int = 0
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result. `snippet` marks matched words with MARK_START and MARK_END."""

    rank: float
    url: str
    title: str | None
    snippet: str


_CONFIGS = text(
    "SELECT cfgname FROM pg_ts_config WHERE cfgnamespace = CAST('pg_catalog' AS regnamespace)"
)
_DROP_GONE = text(
    """
    DELETE FROM page_search s USING pages p
    WHERE s.page_id = p.id AND s.crawl_id = :crawl_id AND p.gone_at IS NOT NULL
    """
)
_STALE = text(
    """
    SELECT p.id FROM pages p
    LEFT JOIN page_search s ON s.page_id = p.id
    WHERE p.crawl_id = :crawl_id AND p.gone_at IS NULL
      AND (s.page_id IS NULL OR s.content_hash IS DISTINCT FROM p.content_hash OR :rebuild)
    ORDER BY p.id
    """
)
# Rows in page id order, so concurrent refreshes of one crawl wait for each other's rows
# instead of deadlocking.
_INDEX = text(
    """
    INSERT INTO page_search (page_id, crawl_id, content_hash, config, vector, head, indexed_at)
    SELECT p.id, p.crawl_id, p.content_hash, c.config,
           m.meta || setweight(to_tsvector(c.config, left(p.text, :text_chars)), 'D'),
           m.meta || setweight(to_tsvector(c.config, left(p.text, :head_chars)), 'D'),
           now()
    FROM pages p
    CROSS JOIN LATERAL (
        SELECT coalesce(
            (SELECT CAST(l.config AS regconfig)
             FROM unnest(CAST(:codes AS text[]), CAST(:configs AS text[])) AS l(code, config)
             WHERE l.code = lower(split_part(replace(p.lang, '_', '-'), '-', 1))),
            CAST('simple' AS regconfig)) AS config
    ) c
    CROSS JOIN LATERAL (
        SELECT setweight(to_tsvector(c.config, coalesce(p.title, '')), 'A')
               || setweight(to_tsvector(c.config, coalesce(p.h1, '')), 'B')
               || setweight(to_tsvector(c.config, coalesce(p.description, '')), 'C') AS meta
    ) m
    WHERE p.id = ANY(CAST(:ids AS bigint[])) AND p.gone_at IS NULL
    ORDER BY p.id
    ON CONFLICT (page_id) DO UPDATE SET
        content_hash = EXCLUDED.content_hash,
        config = EXCLUDED.config,
        vector = EXCLUDED.vector,
        head = EXCLUDED.head,
        indexed_at = EXCLUDED.indexed_at
    """
)
_USED_CONFIGS = text(
    "SELECT DISTINCT CAST(config AS text) FROM page_search WHERE crawl_id = :crawl_id ORDER BY 1"
)
_CRAWL_IDS = text("SELECT id, name FROM crawls ORDER BY id")


async def _lang_configs(db: Database) -> tuple[list[str], list[str]]:
    async with db.transaction() as session:
        present = set((await session.execute(_CONFIGS)).scalars())
    pairs = [(code, name) for code, name in LANG_CONFIGS.items() if name in present]
    return [code for code, _ in pairs], [name for _, name in pairs]


async def refresh(
    db: Database,
    crawl_id: int,
    crawl: str,
    *,
    rebuild: bool = False,
    progress: Progress | None = None,
) -> IndexResult:
    """Bring the crawl's search vectors up to date (all of them with `rebuild`)."""
    async with db.transaction() as session:
        dropped = (await session.execute(_DROP_GONE, {"crawl_id": crawl_id})).rowcount  # type: ignore[attr-defined]
        ids = list(
            (await session.execute(_STALE, {"crawl_id": crawl_id, "rebuild": rebuild})).scalars()
        )
    if not ids:
        return IndexResult(crawl, 0, int(dropped or 0))
    codes, configs = await _lang_configs(db)
    batches = [ids[i : i + BATCH_PAGES] for i in range(0, len(ids), BATCH_PAGES)]
    done = 0
    next_batch = 0

    async def worker() -> None:
        nonlocal done, next_batch
        while next_batch < len(batches):
            batch = batches[next_batch]
            next_batch += 1
            params = {
                "ids": batch,
                "codes": codes,
                "configs": configs,
                "text_chars": INDEX_TEXT_CHARS,
                "head_chars": HEAD_TEXT_CHARS,
            }
            async with db.transaction() as session:
                await session.execute(_INDEX, params)
            done += len(batch)
            if progress is not None:
                progress(done, len(ids))

    workers = [asyncio.create_task(worker()) for _ in range(min(INDEX_CONNECTIONS, len(batches)))]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:  # one failed: the others stop too (what they built is kept)
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return IndexResult(crawl, len(ids), int(dropped or 0))


async def refresh_all(
    db: Database, name: str | None = None, *, rebuild: bool = False
) -> list[IndexResult]:
    """`refresh` for the crawl named, or for every crawl when None (`crawler db index`)."""
    if name is not None:
        target = await resolve(db, name, None)
        return [await refresh(db, target.crawl_id, target.crawl, rebuild=rebuild)]
    async with db.transaction() as session:
        crawls = [(int(r.id), str(r.name)) for r in await session.execute(_CRAWL_IDS)]
    return [await refresh(db, crawl_id, crawl, rebuild=rebuild) for crawl_id, crawl in crawls]


def _search_sql(configs: Sequence[str]) -> str:
    """The ranked top hits, with snippets. One part a configuration, each matching its own
    rows with a query in that configuration, so the GIN index serves each; every match is
    ranked by its head (in the row), the best CANDIDATES by the whole page (from TOAST)."""
    parts = [
        f"""
        (SELECT s.page_id, s.config, websearch_to_tsquery(CAST(:c{i} AS regconfig), :q) AS query
         FROM page_search s
         WHERE s.crawl_id = :crawl_id AND s.config = CAST(:c{i} AS regconfig)
           AND s.vector @@ websearch_to_tsquery(CAST(:c{i} AS regconfig), :q)
         ORDER BY ts_rank_cd(CAST(:weights AS real[]), s.head,
                             websearch_to_tsquery(CAST(:c{i} AS regconfig), :q), 1) DESC,
                  s.page_id
         LIMIT :candidates)
        """
        for i in range(len(configs))
    ]
    return f"""
    WITH candidates AS ({" UNION ALL ".join(parts)}),
    top AS (
        SELECT c.page_id, c.config, c.query,
               ts_rank_cd(CAST(:weights AS real[]), s.vector, c.query, 1) AS rank
        FROM candidates c
        JOIN page_search s ON s.page_id = c.page_id
        JOIN pages p ON p.id = c.page_id
        WHERE p.gone_at IS NULL
        ORDER BY rank DESC, c.page_id
        LIMIT :limit
    )
    SELECT t.rank, p.url, p.title,
           ts_headline(t.config,
                       substr(b.body, greatest(1, coalesce(f.at, 1) - :before), :window),
                       t.query, :options) AS snippet
    FROM top t
    JOIN pages p ON p.id = t.page_id
    CROSS JOIN LATERAL (
        SELECT left(coalesce(nullif(p.text, ''), p.description, p.title, ''), :text_chars)
            AS body
    ) b
    CROSS JOIN LATERAL (
        SELECT min(nullif(regexp_instr(lower(b.body), :word_start || regexp_replace(
                   w, :special, :escaped, 'g')), 0)) AS at
        FROM unnest(tsvector_to_array(to_tsvector(t.config, :q))) AS w
    ) f
    ORDER BY t.rank DESC, t.page_id
    """


# The planner does not count detoasting: for a word most pages hold it would read every
# row's whole vector (a sequential or btree scan with `@@` as a filter), where the GIN
# bitmap needs none of them (no recheck, but for phrase queries).
_BITMAP_ONLY = (
    text("SET LOCAL enable_seqscan = off"),
    text("SET LOCAL enable_indexscan = off"),
)


async def search(
    db: Database,
    name: str | None,
    query: str,
    *,
    limit: int = 20,
    progress: Progress | None = None,
) -> tuple[IndexResult, list[Hit]]:
    """Search the crawl named (default: the most recently run crawl), indexing first the
    pages that need it. Returns what the refresh did and the hits, best first."""
    target = await resolve(db, name, None)
    indexed = await refresh(db, target.crawl_id, target.crawl, progress=progress)
    async with db.transaction() as session:
        configs = list(
            (await session.execute(_USED_CONFIGS, {"crawl_id": target.crawl_id})).scalars()
        )
        if not configs:
            return indexed, []
        for setting in _BITMAP_ONLY:
            await session.execute(setting)
        params: dict[str, object] = {
            "crawl_id": target.crawl_id,
            "q": query,
            "weights": _WEIGHTS,
            "limit": limit,
            "candidates": max(CANDIDATES, limit),
            "word_start": r"\m",
            "special": r"([^[:alnum:]_])",
            "escaped": r"\\\1",
            "before": SNIPPET_BEFORE,
            "window": SNIPPET_WINDOW,
            "options": _HEADLINE,
            "text_chars": INDEX_TEXT_CHARS,
            **{f"c{i}": config for i, config in enumerate(configs)},
        }
        rows = (await session.execute(text(_search_sql(configs)), params)).all()
    hits = [
        Hit(rank=float(r.rank), url=str(r.url), title=r.title, snippet=str(r.snippet or ""))
        for r in rows
    ]
    return indexed, hits
