"""The batched write of completed tasks: many pages in one statement, one round trip.

Round trips and per-statement overhead dominate the write path (each statement through an
async session costs more Python CPU than the rest of a page's work), so the writer
(crawler.db.writer) hands this module every task completed while the previous batch was
being written. The statement takes its input as parallel arrays, one element per task, and:

1. marks the tasks' frontier rows done, fenced by the lease owner: a task whose lease has
   passed to another process writes nothing (`live` holds the rest);
2. upserts the HTML pages (`kind = 'page'`; `rendered` when the body parsed was a browser's
   DOM), in URL order, and replaces their links (each page's links travel as three
   newline-separated strings, split by the server);
3. records every exchange in `fetches`, with its outcome (new / changed / unchanged / gone);
4. refreshes pages that answered 304 (`not_modified`) and marks 404/410 pages gone;
5. keeps compressed bodies (--store-body), one per content hash (a rendered page's server
   HTML too, under its `static_hash`);
6. queues the URLs found, in sorted order, skipping those the run knows already.

Deadlocks: an `INSERT … ON CONFLICT` that meets a row another transaction is updating waits
for that transaction, so batches that mark each other's links done would wait on each other.
Known URLs are filtered out first with a plain MVCC lookup (which never waits), one index
probe each (a LATERAL subquery with LIMIT: as `NOT EXISTS` the planner may choose a hash
anti-join over every frontier row of the run), and new URLs are inserted in sorted order.
Deadlocks that remain possible roll the statement back whole, and it is retried.

Copies: a scan of a CTE copies every row it reads, and the join of a CTE as the inner side
of a nested loop reads it once for each outer row. So `live` (the tasks whose lease held)
carries only the narrow columns and each task's position `i` in the arrays; the wide ones
(the page's text, its links, its bodies) are taken from the arrays by that position where
they are written, and so copied only into the rows that keep them. `new_links` walks `live`
and looks its page up in `page`, and `old` carries what `touched` and `gone` select on, so
no CTE is read more than once a use. With the wide columns in `live`, the copies were about
a quarter of the server's instructions for a page.

Plans: the tables grow from nothing during a first crawl, faster than autovacuum analyzes
them, so the planner works from stale statistics. Every lookup is therefore written so that
only one plan is possible, an index probe per row (LATERAL … LIMIT 1, `= ANY(ARRAY(…))`):
on a fresh crawl, `url IN (SELECT …)` became a scan of every page of the crawl per batch.
That is not enough on its own: a generic plan cached while the tables were nearly empty
chose the wrong index for those probes, so a run analyzes its tables early, which replaces
those plans (crawler.db.writer).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from crawler.db.frontier import LEASE_HELD
from crawler.records import PageRecord

WRITE_BATCH = text(
    """
WITH done AS (
    UPDATE frontier SET state = 'done', lease_until = NULL
    WHERE id = ANY(CAST(:fid AS bigint[])) AND """
    + LEASE_HELD
    + """
    RETURNING id
),
live AS (
    SELECT t.* FROM unnest(
        CAST(:fid AS bigint[]), CAST(:kind AS text[]), CAST(:url AS text[]),
        CAST(:final_url AS text[]), CAST(:status AS integer[]), CAST(:content_type AS text[]),
        CAST(:bytes AS integer[]), CAST(:elapsed_ms AS integer[]), CAST(:redirects AS text[]),
        CAST(:error_kind AS text[]), CAST(:error AS text[]), CAST(:title AS text[]),
        CAST(:description AS text[]), CAST(:canonical AS text[]), CAST(:lang AS text[]),
        CAST(:h1 AS text[]), CAST(:meta_robots AS text[]), CAST(:content_hash AS text[]),
        CAST(:etag AS text[]), CAST(:last_modified AS text[]), CAST(:depth AS integer[]),
        CAST(:rendered AS boolean[]), CAST(:static_hash AS text[])
    ) WITH ORDINALITY AS t(fid, kind, url, final_url, status, content_type, bytes, elapsed_ms,
                           redirects, error_kind, error, title, description, canonical, lang,
                           h1, meta_robots, content_hash, etag, last_modified, depth, rendered,
                           static_hash, i)
    JOIN done ON done.id = t.fid
),
old AS (
    SELECT l.url, l.kind, l.status, p.id, p.content_hash, p.gone_at
    FROM live l
    CROSS JOIN LATERAL (
        SELECT id, content_hash, gone_at FROM pages
        WHERE pages.crawl_id = :crawl_id AND pages.url = l.url LIMIT 1
    ) p
),
page AS (
    INSERT INTO pages (crawl_id, url, final_url, status, content_type, bytes, title,
                       description, canonical, lang, h1, text, meta_robots, content_hash,
                       etag, last_modified, depth, last_run_id, data, rendered, static_hash)
    SELECT CAST(:crawl_id AS bigint), url, final_url, status, content_type, bytes, title,
           description, canonical, lang, h1, (CAST(:text AS text[]))[i], meta_robots,
           content_hash, etag, last_modified, depth, CAST(:run_id AS bigint),
           CAST((CAST(:data AS text[]))[i] AS jsonb), rendered, static_hash
    FROM live WHERE kind = 'page'
    ORDER BY url
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
        data = EXCLUDED.data,
        rendered = EXCLUDED.rendered,
        static_hash = EXCLUDED.static_hash
    RETURNING id, url
),
history AS (
    INSERT INTO fetches (run_id, url, final_url, status, content_type, bytes, elapsed_ms,
                         redirects, error_kind, error, not_modified, changed, outcome)
    SELECT CAST(:run_id AS bigint), l.url, l.final_url, l.status, l.content_type, l.bytes,
           l.elapsed_ms,
           ARRAY(SELECT jsonb_array_elements_text(CAST(l.redirects AS jsonb))),
           l.error_kind, l.error, l.kind = 'not_modified',
           CASE WHEN l.kind = 'page' AND o.url IS NOT NULL
                THEN o.content_hash IS DISTINCT FROM l.content_hash END,
           CASE
               WHEN l.kind = 'page' THEN
                   CASE WHEN o.url IS NULL OR o.gone_at IS NOT NULL THEN 'new'
                        WHEN o.content_hash IS DISTINCT FROM l.content_hash THEN 'changed'
                        ELSE 'unchanged' END
               WHEN l.kind = 'not_modified' THEN 'unchanged'
               WHEN l.status IN (404, 410) AND o.url IS NOT NULL AND o.gone_at IS NULL
                   THEN 'gone'
           END
    FROM live l LEFT JOIN old o ON o.url = l.url
),
touched AS (
    UPDATE pages SET fetched_at = now(), last_run_id = :run_id
    WHERE id = ANY(ARRAY(SELECT id FROM old WHERE kind = 'not_modified'))
),
gone AS (
    UPDATE pages SET gone_at = coalesce(pages.gone_at, now()), status = g.status,
                     fetched_at = now(), last_run_id = :run_id
    FROM (SELECT id, status FROM old WHERE kind = 'fetch' AND status IN (404, 410)) g
    WHERE pages.id = g.id
),
new_links AS (
    INSERT INTO page_links (page_id, target_urls, anchor_texts, nofollow)
    SELECT p.id, string_to_array(k.urls, E'\n'),
           -- one element a link, also when the only link has an empty text
           CASE WHEN k.urls = '' THEN '{}'
                ELSE (string_to_array(E'\n' || k.texts, E'\n'))[2:] END,
           CAST(string_to_array(k.nofollow, E'\n') AS boolean[])
    FROM live
    CROSS JOIN LATERAL (SELECT id FROM page WHERE page.url = live.url LIMIT 1) p
    CROSS JOIN LATERAL (
        SELECT (CAST(:link_urls AS text[]))[live.i] AS urls,
               (CAST(:link_texts AS text[]))[live.i] AS texts,
               (CAST(:link_nofollow AS text[]))[live.i] AS nofollow
    ) k
    WHERE live.kind = 'page'
    ORDER BY p.id
    ON CONFLICT (page_id) DO UPDATE SET
        target_urls = EXCLUDED.target_urls,
        anchor_texts = EXCLUDED.anchor_texts,
        nofollow = EXCLUDED.nofollow
),
body AS (
    INSERT INTO bodies (content_hash, body)
    SELECT DISTINCT ON (hash) hash, kept FROM (
        SELECT content_hash, (CAST(:body AS bytea[]))[i] FROM live WHERE kind = 'page'
        UNION ALL
        SELECT static_hash, (CAST(:static_body AS bytea[]))[i] FROM live WHERE kind = 'page'
    ) AS k(hash, kept)
    WHERE kept IS NOT NULL
    ORDER BY hash
    ON CONFLICT (content_hash) DO NOTHING
),
queued AS (
    INSERT INTO frontier (run_id, url, depth)
    SELECT CAST(:run_id AS bigint), e.url, min(e.depth)
    FROM unnest(CAST(:enqueue_fid AS bigint[]), CAST(:enqueue_url AS text[]),
                CAST(:enqueue_depth AS integer[])) AS e(fid, url, depth)
    JOIN done ON done.id = e.fid
    LEFT JOIN LATERAL (
        SELECT 1 AS known FROM frontier f WHERE f.run_id = :run_id AND f.url = e.url LIMIT 1
    ) seen ON true
    WHERE seen.known IS NULL
    GROUP BY e.url
    ORDER BY e.url
    ON CONFLICT (run_id, url) DO NOTHING
    RETURNING url
)
SELECT (SELECT coalesce(array_agg(id), '{}') FROM done) AS done,
       (SELECT coalesce(array_agg(url), '{}') FROM queued) AS queued
"""
)


def clean(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL characters; pages sometimes do."""
    if value is not None and "\x00" in value:
        return value.replace("\x00", "")
    return value


def _lines(values: tuple[str, ...], newline: str) -> str:
    """The values as one string, a line each, for `string_to_array(…, E'\\n')` in the
    statement: one array element a page instead of one a link, which saves the driver most
    of its encoding work. Canonical URLs and collapsed anchor texts hold no newline; one that
    somehow does has it replaced by `newline`, so the lines always match the links."""
    joined = "\n".join(values)
    if joined.count("\n") != len(values) - 1:
        joined = "\n".join(value.replace("\n", newline) for value in values)
    return joined


# The statement's per-task arrays, in the order of the rows BatchParams.add makes.
_COLUMNS = (
    "fid",
    "kind",
    "url",
    "final_url",
    "status",
    "content_type",
    "bytes",
    "elapsed_ms",
    "redirects",
    "error_kind",
    "error",
    "title",
    "description",
    "canonical",
    "lang",
    "h1",
    "text",
    "meta_robots",
    "content_hash",
    "etag",
    "last_modified",
    "depth",
    "data",
    "body",
    "link_urls",
    "link_texts",
    "link_nofollow",
    "rendered",
    "static_hash",
    "static_body",
)


@dataclass
class BatchParams:
    """The parallel arrays of one batch statement, kept as one tuple a task (made in one step,
    with no dict a task) and turned into columns once, by `params`."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    enqueue: dict[str, list[Any]] = field(
        default_factory=lambda: {"enqueue_fid": [], "enqueue_url": [], "enqueue_depth": []}
    )

    def add(self, record: PageRecord) -> None:
        task, fetch, page = record.task, record.fetch, record.page
        redirects = json.dumps(list(fetch.redirects)) if fetch.redirects else "[]"
        if page is None:
            kind = "not_modified" if record.not_modified else "fetch"
            # fmt: off
            self.rows.append((
                task.frontier_id, kind, task.url, fetch.final_url, fetch.status,
                fetch.content_type, len(fetch.body), fetch.elapsed_ms, redirects,
                fetch.error_kind, clean(fetch.error),
                None, None, None, None, None, None, None,  # title ... meta_robots
                record.content_hash, None, None, task.depth, None, None, "", "", "", False,
                None, None,
            ))
            # fmt: on
            self._enqueue(record)
            return
        link_urls = link_texts = link_nofollow = ""
        if page.links:
            targets, anchors, nofollows = zip(*page.links, strict=True)
            link_urls = _lines(targets, "%0A")
            link_texts = clean(_lines(anchors, " ")) or ""
            link_nofollow = "\n".join(["t" if n else "f" for n in nofollows])
        # fmt: off
        self.rows.append((
            task.frontier_id, "page", task.url, fetch.final_url, fetch.status,
            fetch.content_type, len(fetch.body), fetch.elapsed_ms, redirects,
            fetch.error_kind, clean(fetch.error),
            clean(page.title), clean(page.description), page.canonical, clean(page.lang),
            clean(page.h1), clean(page.text), clean(page.meta_robots),
            record.content_hash, clean(fetch.header("etag")),
            clean(fetch.header("last-modified")), task.depth,
            json.dumps(page.data) if page.data else "{}",
            None if record.body is None else zlib.compress(record.body, 6),
            link_urls, link_texts, link_nofollow, fetch.rendered, record.static_hash,
            None if record.static_body is None else zlib.compress(record.static_body, 6),
        ))
        # fmt: on
        self._enqueue(record)

    def _enqueue(self, record: PageRecord) -> None:
        if record.enqueue:
            fid, depth, enqueue = record.task.frontier_id, record.enqueue_depth, self.enqueue
            for url in record.enqueue:
                enqueue["enqueue_fid"].append(fid)
                enqueue["enqueue_url"].append(url)
                enqueue["enqueue_depth"].append(depth)

    def params(self, *, crawl_id: int, run_id: int, owner: str) -> dict[str, Any]:
        if self.rows:
            columns = dict(zip(_COLUMNS, map(list, zip(*self.rows, strict=True)), strict=True))
        else:
            columns = {name: [] for name in _COLUMNS}
        return {"crawl_id": crawl_id, "run_id": run_id, "owner": owner, **columns, **self.enqueue}
