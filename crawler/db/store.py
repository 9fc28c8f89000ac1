"""The write path: each completed task is one statement in one short transaction.

Every statement starts by marking the task's frontier row done, fenced by the lease owner:
when the lease has passed to another process, nothing is written. The rest of the statement
(page upsert, fetch history, links, new frontier rows) hangs off that row with CTEs, so a
page costs one round trip.

Deadlocks: a statement locks its own frontier row (marking it done) and then inserts new
URLs. An `INSERT … ON CONFLICT` that meets a row another transaction is updating waits for
that transaction, so two pages that link to each other's rows would wait on each other.
Known URLs are therefore filtered out first with a plain MVCC lookup (which never waits), and
only URLs new to the run are inserted, in sorted order, so inserters of the same new URLs
queue up in one order. Deadlocks that remain possible are retried. The lookup is a LATERAL
subquery with LIMIT so that it stays one index probe per URL: as `NOT EXISTS` the planner
may choose a hash anti-join that reads every frontier row of the run for every page.
"""

from __future__ import annotations

import json
import zlib
from datetime import datetime
from typing import Any

from sqlalchemy import text

from crawler.db.database import Database
from crawler.records import CrawlTask, FetchResult, PageRecord

_DONE = """
done AS (
    UPDATE frontier SET state = 'done', lease_until = NULL
    WHERE id = :fid AND lease_owner = :owner AND state = 'leased'
    RETURNING id
)"""

_FETCH_COLUMNS = """
    INSERT INTO fetches (run_id, url, final_url, status, content_type, bytes, elapsed_ms,
                         redirects, error_kind, error, not_modified, changed, outcome)
    SELECT CAST(:run_id AS bigint), :url, :final_url, CAST(:status AS integer), :content_type,
           CAST(:bytes AS integer), CAST(:elapsed_ms AS integer), CAST(:redirects AS text[]),
           :error_kind, :error, CAST(:not_modified AS boolean), {changed}, {outcome}
"""

_ENQUEUE = """
queued AS (
    INSERT INTO frontier (run_id, url, depth)
    SELECT CAST(:run_id AS bigint), u, CAST(:child_depth AS integer)
    FROM unnest(CAST(:enqueue AS text[])) AS u
    LEFT JOIN LATERAL (
        SELECT 1 AS known FROM frontier f WHERE f.run_id = :run_id AND f.url = u LIMIT 1
    ) seen ON true
    WHERE seen.known IS NULL AND EXISTS (SELECT 1 FROM done)
    ORDER BY u
    ON CONFLICT (run_id, url) DO NOTHING
    RETURNING 1
)"""

_PAGE = text(
    "WITH"
    + _DONE
    + """,
old AS (
    SELECT content_hash, gone_at FROM pages WHERE crawl_id = :crawl_id AND url = :url
),
page AS (
    INSERT INTO pages (crawl_id, url, final_url, status, content_type, bytes, title,
                       description, canonical, lang, h1, text, meta_robots, content_hash,
                       etag, last_modified, depth, last_run_id, data)
    SELECT CAST(:crawl_id AS bigint), :url, :final_url, CAST(:status AS integer), :content_type,
           CAST(:bytes AS integer), :title, :description, :canonical, :lang, :h1, :text,
           :meta_robots, :content_hash, :etag, :last_modified, CAST(:depth AS integer),
           CAST(:run_id AS bigint), CAST(:data AS jsonb)
    FROM done
    ON CONFLICT (crawl_id, url) DO UPDATE SET
        final_url = EXCLUDED.final_url,
        status = EXCLUDED.status,
        content_type = EXCLUDED.content_type,
        bytes = EXCLUDED.bytes,
        title = EXCLUDED.title,
        description = EXCLUDED.description,
        canonical = EXCLUDED.canonical,
        lang = EXCLUDED.lang,
        h1 = EXCLUDED.h1,
        text = EXCLUDED.text,
        meta_robots = EXCLUDED.meta_robots,
        etag = EXCLUDED.etag,
        last_modified = EXCLUDED.last_modified,
        depth = least(pages.depth, EXCLUDED.depth),
        fetched_at = now(),
        changed_at = CASE WHEN pages.content_hash IS DISTINCT FROM EXCLUDED.content_hash
                          THEN now() ELSE pages.changed_at END,
        content_hash = EXCLUDED.content_hash,
        gone_at = NULL,
        error_kind = NULL,
        last_run_id = EXCLUDED.last_run_id,
        data = EXCLUDED.data
    RETURNING id
),
history AS ("""
    + _FETCH_COLUMNS.format(
        changed="(SELECT old.content_hash IS DISTINCT FROM CAST(:content_hash AS text) FROM old)",
        outcome="""CASE
            WHEN NOT EXISTS (SELECT 1 FROM old WHERE old.gone_at IS NULL) THEN 'new'
            WHEN (SELECT old.content_hash FROM old) IS DISTINCT FROM CAST(:content_hash AS text)
                THEN 'changed'
            ELSE 'unchanged' END""",
    )
    + """
    FROM done
),
old_links AS (
    DELETE FROM links WHERE page_id IN (SELECT id FROM page)
),
new_links AS (
    INSERT INTO links (page_id, target_url, anchor_text, nofollow)
    SELECT page.id, l.u, l.a, l.n
    FROM page CROSS JOIN unnest(CAST(:link_urls AS text[]), CAST(:link_texts AS text[]),
                                CAST(:link_nofollow AS boolean[])) AS l(u, a, n)
),
body AS (
    INSERT INTO bodies (content_hash, body)
    SELECT :content_hash, CAST(:body AS bytea) FROM done WHERE CAST(:body AS bytea) IS NOT NULL
    ON CONFLICT (content_hash) DO NOTHING
),"""
    + _ENQUEUE
    + """
SELECT (SELECT count(*) FROM done) AS done, (SELECT count(*) FROM queued) AS queued
"""
)

_FETCH_ONLY = text(
    "WITH"
    + _DONE
    + """,
history AS ("""
    + _FETCH_COLUMNS.format(
        changed="NULL",
        outcome="""CASE
            WHEN CAST(:not_modified AS boolean) THEN 'unchanged'
            WHEN CAST(:status AS integer) IN (404, 410) AND EXISTS (
                SELECT 1 FROM pages WHERE crawl_id = :crawl_id AND url = :url AND gone_at IS NULL
            ) THEN 'gone' END""",
    )
    + """
    FROM done
),
touched AS (
    UPDATE pages SET fetched_at = now(), last_run_id = :run_id
    WHERE crawl_id = :crawl_id AND url = :url AND CAST(:not_modified AS boolean)
      AND EXISTS (SELECT 1 FROM done)
),
gone AS (
    UPDATE pages SET gone_at = coalesce(gone_at, now()), status = CAST(:status AS integer),
                     fetched_at = now(), last_run_id = :run_id
    WHERE crawl_id = :crawl_id AND url = :url AND CAST(:status AS integer) IN (404, 410)
      AND EXISTS (SELECT 1 FROM done)
),"""
    + _ENQUEUE
    + """
SELECT (SELECT count(*) FROM done) AS done, (SELECT count(*) FROM queued) AS queued
"""
)

_SKIP = text(
    "WITH"
    + _DONE
    + ","
    + _ENQUEUE
    + """
SELECT (SELECT count(*) FROM done) AS done, (SELECT count(*) FROM queued) AS queued
"""
)

_ENQUEUE_LISTED = text(
    """
    INSERT INTO frontier (run_id, url, depth, lastmod)
    SELECT CAST(:run_id AS bigint), u, CAST(:depth AS integer), m
    FROM unnest(CAST(:urls AS text[]), CAST(:lastmods AS timestamptz[])) AS x(u, m)
    ORDER BY u
    ON CONFLICT (run_id, url) DO UPDATE SET lastmod = EXCLUDED.lastmod
    WHERE frontier.state <> 'done' AND EXCLUDED.lastmod IS NOT NULL
    RETURNING 1
    """
)

_STORED_LINKS = text(
    """
    SELECT l.target_url, l.nofollow, p.meta_robots
    FROM pages p JOIN links l ON l.page_id = p.id
    WHERE p.crawl_id = :crawl_id AND p.url = :url
    """
)

_RETRY = text(
    """
WITH again AS (
    UPDATE frontier SET state = 'queued', lease_owner = NULL, lease_until = NULL,
        not_before = now() + make_interval(secs => :delay)
    WHERE id = :fid AND lease_owner = :owner AND state = 'leased'
    RETURNING id
)"""
    + _FETCH_COLUMNS.format(changed="NULL", outcome="NULL")
    + """
    FROM again
"""
)


def _clean(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL characters; pages sometimes do."""
    if value is not None and "\x00" in value:
        return value.replace("\x00", "")
    return value


def _fetch_params(task: CrawlTask, fetch: FetchResult) -> dict[str, Any]:
    return {
        "fid": task.frontier_id,
        "url": task.url,
        "final_url": fetch.final_url,
        "status": fetch.status,
        "content_type": fetch.content_type,
        "bytes": len(fetch.body),
        "elapsed_ms": fetch.elapsed_ms,
        "redirects": list(fetch.redirects),
        "error_kind": fetch.error_kind,
        "error": _clean(fetch.error),
        "not_modified": False,
    }


class PgPageSink:
    """The `PageSink` of one run: writes completed tasks, fenced by this process's leases."""

    def __init__(self, db: Database, crawl_id: int, run_id: int, owner: str) -> None:
        self.db = db
        self.base = {"crawl_id": crawl_id, "run_id": run_id, "owner": owner}

    async def complete(self, record: PageRecord) -> int:
        """Write the record; return how many new URLs joined the frontier (-1: lease lost)."""
        params = {**self.base, **_fetch_params(record.task, record.fetch)}
        params["enqueue"] = sorted(set(record.enqueue))
        params["child_depth"] = record.enqueue_depth
        params["not_modified"] = record.not_modified
        page = record.page
        if page is None:
            statement = _FETCH_ONLY
        else:
            statement = _PAGE
            fetch = record.fetch
            params.update(
                title=_clean(page.title),
                description=_clean(page.description),
                canonical=page.canonical,
                lang=_clean(page.lang),
                h1=_clean(page.h1),
                text=_clean(page.text),
                meta_robots=_clean(page.meta_robots),
                content_hash=record.content_hash,
                etag=_clean(fetch.header("etag")),
                last_modified=_clean(fetch.header("last-modified")),
                depth=record.task.depth,
                link_urls=[link[0] for link in page.links],
                link_texts=[_clean(link[1]) for link in page.links],
                link_nofollow=[link[2] for link in page.links],
                data=json.dumps(page.data),
                body=None if record.body is None else zlib.compress(record.body, 6),
            )
        row = await self.db.execute_retrying(statement, params)
        assert row is not None
        return int(row.queued) if row.done else -1

    async def skip(self, task: CrawlTask, enqueue: tuple[str, ...], depth: int) -> int:
        """Mark a task done without fetching it (not due for a revisit); queue its links."""
        params = {
            "fid": task.frontier_id,
            "owner": self.base["owner"],
            "run_id": self.base["run_id"],
            "enqueue": sorted(set(enqueue)),
            "child_depth": depth,
        }
        row = await self.db.execute_retrying(_SKIP, params)
        assert row is not None
        return int(row.queued) if row.done else -1

    async def enqueue_listed(self, entries: list[tuple[str, datetime | None]], depth: int) -> int:
        """Queue URLs listed in a sitemap, with their lastmod; return how many rows changed."""
        entries = sorted(dict(entries).items())
        params = {
            "run_id": self.base["run_id"],
            "depth": depth,
            "urls": [url for url, _ in entries],
            "lastmods": [lastmod for _, lastmod in entries],
        }
        return len(await self.db.execute_all(_ENQUEUE_LISTED, params))

    async def stored_links(self, url: str) -> list[tuple[str, bool]]:
        """The followable links stored for a page (none when its meta robots says nofollow)."""
        rows = await self.db.execute_all(
            _STORED_LINKS, {"crawl_id": self.base["crawl_id"], "url": url}
        )
        if rows and rows[0].meta_robots and "nofollow" in rows[0].meta_robots:
            return []
        return [(row.target_url, row.nofollow) for row in rows]

    async def retry_later(self, task: CrawlTask, fetch: FetchResult, delay: float) -> None:
        """Record the failed attempt and put the task back in the queue after `delay` seconds."""
        params = {**self.base, **_fetch_params(task, fetch), "delay": delay}
        params.pop("crawl_id")
        await self.db.execute_retrying(_RETRY, params)
