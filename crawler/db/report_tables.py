"""The report's tables: the first `TABLE_ROWS` rows of each list, with its total and the
`crawler sql` query that gives all of it.

Most read the public views (README "Views"). Two views plan badly at the size of a real
crawl, where a page's links are arrays the planner cannot see into, so their rows are found
by queries of their own, which tests compare with the views: broken links (whose anchor
text comes from `page_links`, so no anchor column in the view is needed) and orphan pages.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crawler.report.data import TABLE_ROWS, Cell, Table

# The URLs whose latest fetch in the crawl failed (the broken_links view's targets): few,
# found from the failed fetches through the index on fetches.url.
_FAILED_URLS = text(
    """
    SELECT coalesce(array_agg(f.url), '{}') FROM fetches f JOIN crawl_runs r ON r.id = f.run_id
    WHERE r.crawl_id = :crawl AND f.error_kind IS NOT NULL AND f.error_kind <> 'robots'
      AND NOT EXISTS (
          SELECT 1 FROM fetches g JOIN crawl_runs s ON s.id = g.run_id
          WHERE g.url = f.url AND g.id > f.id AND s.crawl_id = r.crawl_id
      )
    """
)
# The broken_links view's rows with their anchor text, in one pass over the links: each
# link's target is looked up in the array of failed URLs (hashed by the executor; as a
# join, the planner, which cannot see how many links an array holds, may nest it).
_BROKEN = """
    WITH hits AS MATERIALIZED (
        SELECT pl.page_id, l.target_url, l.position
        FROM pages p
        JOIN page_links pl ON pl.page_id = p.id
        CROSS JOIN LATERAL unnest(pl.target_urls) WITH ORDINALITY AS l(target_url, position)
        WHERE p.crawl_id = :crawl AND p.gone_at IS NULL
          AND l.target_url = ANY(CAST(:failed AS text[]))
    ), pairs AS (
        SELECT page_id, target_url, min(position) AS position, count(*) AS links
        FROM hits GROUP BY page_id, target_url
    ), ranked AS (
        SELECT h.page_id, p.url AS source_url, h.target_url, h.position, h.links,
               count(*) OVER () AS total,
               sum(h.links) OVER (PARTITION BY h.target_url) AS weight
        FROM pairs h JOIN pages p ON p.id = h.page_id
        ORDER BY weight DESC, h.target_url, p.url
        LIMIT :limit
    )
    SELECT t.source_url, t.target_url, coalesce(lf.status::text, lf.error_kind) AS status,
           pl.anchor_texts[t.position] AS anchor_text, t.links, t.total
    FROM ranked t
    JOIN page_links pl ON pl.page_id = t.page_id
    CROSS JOIN LATERAL (
        SELECT f.status, f.error_kind FROM fetches f JOIN crawl_runs r ON r.id = f.run_id
        WHERE r.crawl_id = :crawl AND f.url = t.target_url
        ORDER BY f.id DESC LIMIT 1
    ) lf
    ORDER BY t.weight DESC, t.target_url, t.source_url
"""
_REDIRECTS = """
    SELECT array_to_string(redirects || final_url, ' → ') AS chain,
           cardinality(redirects) AS hops, status, count(*) OVER () AS total
    FROM fetches
    WHERE run_id = :run AND cardinality(redirects) > 0
    ORDER BY cardinality(redirects) DESC, url
    LIMIT :limit
"""
_SLOWEST = """
    SELECT url, elapsed_ms, status, bytes, count(*) OVER () AS total
    FROM slowest_pages WHERE crawl_id = :crawl
    ORDER BY elapsed_ms DESC, url LIMIT :limit
"""
_LARGEST = """
    SELECT url, bytes, content_type, status, count(*) OVER () AS total
    FROM pages WHERE crawl_id = :crawl AND gone_at IS NULL AND bytes IS NOT NULL
    ORDER BY bytes DESC, url LIMIT :limit
"""
_MISSING = """
    SELECT url, missing_title, missing_description, count(*) OVER () AS total
    FROM missing_metadata WHERE crawl_id = :crawl
    ORDER BY url LIMIT :limit
"""
_MISSING_COUNTS = text(
    """
    SELECT count(*) FILTER (WHERE missing_title) AS title,
           count(*) FILTER (WHERE missing_description) AS description,
           count(*) FILTER (WHERE missing_title AND missing_description) AS both
    FROM missing_metadata WHERE crawl_id = :crawl
    """
)
_DUPLICATES = """
    SELECT count, content_hash, array_to_string(urls[1:5], ' ') AS urls,
           count(*) OVER () AS total
    FROM duplicate_content WHERE crawl_id = :crawl
    ORDER BY count DESC, content_hash LIMIT :limit
"""
# The rows of the orphan_pages view (README says which links count). The links of the
# pages that count are grouped by target, with whether a page other than the target links
# to it: one row a URL, never a hash of every link (the view's plan, which spills at this
# size). Links to URLs that redirected are picked out by looking each URL up in a JSON
# object of the redirects: a lookup, not a join the planner could nest over every link.
_ORPHANS = """
    WITH basis AS (
        SELECT id AS run_id FROM crawl_runs WHERE crawl_id = :crawl
        ORDER BY status = 'finished' DESC, id DESC LIMIT 1
    ), linking AS NOT MATERIALIZED (
        SELECT s.url, pl.target_urls FROM pages s
        JOIN basis b ON true
        JOIN page_links pl ON pl.page_id = s.id
        WHERE s.crawl_id = :crawl AND s.gone_at IS NULL
          AND (s.last_run_id >= b.run_id OR EXISTS (
              SELECT 1 FROM frontier q
              WHERE q.run_id = b.run_id AND q.url = s.url AND q.state = 'done'))
    ), redirected AS (
        SELECT coalesce(jsonb_object_agg(url, finals), '{}') AS final_urls
        FROM (
            SELECT f.url, jsonb_agg(DISTINCT f.final_url) AS finals
            FROM fetches f
            JOIN crawl_runs r ON r.id = f.run_id
            JOIN basis b ON r.id >= b.run_id
            WHERE r.crawl_id = :crawl AND cardinality(f.redirects) > 0
              AND f.final_url IS NOT NULL
            GROUP BY f.url
        ) x
    ), reached AS MATERIALIZED (
        SELECT l.url FROM linking s
        CROSS JOIN LATERAL unnest(s.target_urls) AS l(url)
        GROUP BY l.url
        HAVING bool_or(l.url <> s.url)
        UNION ALL
        SELECT fu.url FROM linking s
        CROSS JOIN LATERAL unnest(s.target_urls) AS l(url)
        CROSS JOIN redirected rd
        CROSS JOIN LATERAL jsonb_array_elements_text(rd.final_urls -> l.url) AS fu(url)
        WHERE rd.final_urls ? l.url AND fu.url <> s.url
    )
    SELECT p.url, count(*) OVER () AS total
    FROM pages p
    WHERE p.crawl_id = :crawl AND p.gone_at IS NULL
      AND EXISTS (SELECT 1 FROM basis)
      AND NOT EXISTS (SELECT 1 FROM reached x WHERE x.url = p.url)
    ORDER BY p.url LIMIT :limit
"""

# Each table: (key, title, note, columns, SQL of the first rows with a `total` column,
# SQL for `crawler sql`). The first-rows SQL takes :crawl, :run, :limit and
# :failed (the failed URLs).
_TABLES: tuple[tuple[str, str, str, tuple[str, ...], str, str], ...] = (
    (
        "broken_links",
        "Broken links",
        "Links of current pages to URLs whose latest fetch failed, one row per linking page "
        "and target, the most linked-to targets first.",
        ("source", "target", "status", "anchor", "links"),
        _BROKEN,
        "SELECT * FROM broken_links WHERE crawl_id = {crawl}",
    ),
    (
        "redirects",
        "Redirect chains",
        "Fetches of this run that were redirected, the longest chains first.",
        ("chain (requested → … → answered)", "hops", "status"),
        _REDIRECTS,
        "SELECT * FROM redirects WHERE run_id = {run}",
    ),
    (
        "slowest_pages",
        "Slowest pages",
        "Each current page's latest full fetch.",
        ("url", "ms", "status", "bytes"),
        _SLOWEST,
        "SELECT * FROM slowest_pages WHERE crawl_id = {crawl} ORDER BY elapsed_ms DESC",
    ),
    (
        "largest_pages",
        "Largest pages",
        "Current pages by body size (decoded).",
        ("url", "bytes", "content type", "status"),
        _LARGEST,
        "SELECT url, bytes FROM pages WHERE crawl_id = {crawl} AND gone_at IS NULL "
        "ORDER BY bytes DESC",
    ),
    (
        "missing_metadata",
        "Missing metadata",
        "",  # filled with the counts
        ("url", "no title", "no description"),
        _MISSING,
        "SELECT * FROM missing_metadata WHERE crawl_id = {crawl}",
    ),
    (
        "duplicate_content",
        "Duplicate content",
        "Bodies shared by several current pages, the largest groups first (up to 5 URLs shown).",
        ("pages", "content hash", "urls"),
        _DUPLICATES,
        "SELECT * FROM duplicate_content WHERE crawl_id = {crawl} ORDER BY count DESC",
    ),
    (
        "orphan_pages",
        "Orphan pages",
        "Current pages no other current page links to.",
        ("url",),
        _ORPHANS,
        "SELECT * FROM orphan_pages WHERE crawl_id = {crawl}",
    ),
)


def _cell(value: Any) -> Cell:
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


async def read(session: AsyncSession, crawl: int, run: int) -> list[Table]:
    """Every table of the report of `run` of `crawl`, in page order."""
    failed = (await session.execute(_FAILED_URLS, {"crawl": crawl})).scalar_one()
    params = {"crawl": crawl, "run": run, "limit": TABLE_ROWS, "failed": failed}
    missing = (await session.execute(_MISSING_COUNTS, {"crawl": crawl})).one()
    tables = []
    for key, title, note, columns, first_rows, query in _TABLES:
        rows = (await session.execute(text(first_rows), params)).all()
        if key == "missing_metadata":
            note = (
                f"Current pages without a title: {missing.title:,}; without a description: "
                f"{missing.description:,}; without either: {missing.both:,}."
            )
        tables.append(
            Table(
                key=key,
                title=title,
                columns=columns,
                rows=tuple(tuple(_cell(v) for v in row[: len(columns)]) for row in rows),
                total=int(rows[0].total) if rows else 0,
                query=query.format(crawl=crawl, run=run),
                note=note,
            )
        )
    return tables
