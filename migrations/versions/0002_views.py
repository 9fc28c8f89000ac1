"""views for the questions people ask

broken_links, redirects, duplicate_content, missing_metadata, slowest_pages, orphan_pages and
run_changes; docs/SCHEMA-VIEWS.md documents their columns, with an example query each.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 10:00:00.000000

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The latest fetch of each URL in each crawl (retries and later runs supersede earlier rows).
_LATEST_FETCHES = """
    SELECT DISTINCT ON (r.crawl_id, f.url)
           r.crawl_id, f.run_id, f.url, f.status, f.error_kind, f.error
    FROM fetches f
    JOIN crawl_runs r ON r.id = f.run_id
    ORDER BY r.crawl_id, f.url, f.id DESC
"""

# For orphan_pages: page `s` is another current page of p's crawl that the basis run `b`
# reached, or that a later run fetched.
_LINKING_PAGE = """s.crawl_id = p.crawl_id
                AND s.id <> p.id
                AND s.gone_at IS NULL
                AND (s.last_run_id >= b.run_id OR EXISTS (
                    SELECT 1 FROM frontier q
                    WHERE q.run_id = b.run_id AND q.url = s.url AND q.state = 'done'
                ))"""

VIEWS: dict[str, str] = {
    # Links of current pages whose target's latest fetch in the crawl failed (robots excluded:
    # a disallowed URL was never asked for).
    "broken_links": f"""
        SELECT p.crawl_id, p.url AS source_url, l.target_url, lf.status, lf.error_kind,
               lf.error, lf.run_id
        FROM links l
        JOIN pages p ON p.id = l.page_id
        JOIN ({_LATEST_FETCHES}) lf ON lf.crawl_id = p.crawl_id AND lf.url = l.target_url
        WHERE p.gone_at IS NULL
          AND lf.error_kind IS NOT NULL
          AND lf.error_kind <> 'robots'
    """,
    # Every fetch that was redirected: from the URL asked for to the URL that answered.
    "redirects": """
        SELECT r.crawl_id, f.run_id, f.url AS from_url, f.final_url AS to_url,
               cardinality(f.redirects) AS hops, f.status
        FROM fetches f
        JOIN crawl_runs r ON r.id = f.run_id
        WHERE cardinality(f.redirects) > 0
    """,
    # One row per content hash shared by several current pages of a crawl.
    "duplicate_content": """
        SELECT crawl_id, content_hash, array_agg(url ORDER BY url) AS urls,
               count(*) AS count
        FROM pages
        WHERE gone_at IS NULL AND content_hash IS NOT NULL
        GROUP BY crawl_id, content_hash
        HAVING count(*) > 1
    """,
    # Current pages with an empty or missing title or meta description.
    "missing_metadata": """
        SELECT crawl_id, url,
               coalesce(btrim(title), '') = '' AS missing_title,
               coalesce(btrim(description), '') = '' AS missing_description
        FROM pages
        WHERE gone_at IS NULL
          AND (coalesce(btrim(title), '') = '' OR coalesce(btrim(description), '') = '')
    """,
    # The latest successful, full (not 304) fetch of each current page.
    "slowest_pages": """
        SELECT DISTINCT ON (p.crawl_id, p.url)
               p.crawl_id, f.run_id, p.url, f.elapsed_ms, f.status, f.bytes
        FROM pages p
        JOIN crawl_runs r ON r.crawl_id = p.crawl_id
        JOIN fetches f ON f.run_id = r.id AND f.url = p.url
        WHERE p.gone_at IS NULL AND f.error_kind IS NULL AND NOT f.not_modified
        ORDER BY p.crawl_id, p.url, f.id DESC
    """,
    # Current pages that no other current page of the crawl's latest run links to, directly
    # or through a redirect followed since. The basis is the latest finished run (the latest
    # run when none has finished); a linking page counts when the basis run reached it
    # (fetched it, got a 304, or skipped it as not due for a revisit: its frontier row is
    # done) or a later run still in progress fetched it. Seeds are listed too when nothing
    # links to them.
    "orphan_pages": f"""
        WITH basis AS (
            SELECT DISTINCT ON (crawl_id) crawl_id, id AS run_id
            FROM crawl_runs
            ORDER BY crawl_id, status = 'finished' DESC, id DESC
        )
        SELECT p.crawl_id, p.url
        FROM pages p
        JOIN basis b ON b.crawl_id = p.crawl_id
        WHERE p.gone_at IS NULL
          AND NOT EXISTS (
              SELECT 1 FROM links l
              JOIN pages s ON s.id = l.page_id
              WHERE l.target_url = p.url
                AND {_LINKING_PAGE}
          )
          AND NOT EXISTS (
              SELECT 1 FROM fetches f
              JOIN crawl_runs r ON r.id = f.run_id
              JOIN links l ON l.target_url = f.url
              JOIN pages s ON s.id = l.page_id
              WHERE f.final_url = p.url
                AND cardinality(f.redirects) > 0
                AND r.crawl_id = p.crawl_id
                AND r.id >= b.run_id
                AND {_LINKING_PAGE}
          )
    """,
    # What each run found: new, changed, unchanged (a 304 included) or gone, per page URL.
    "run_changes": """
        SELECT r.crawl_id, f.run_id, f.url, f.outcome
        FROM fetches f
        JOIN crawl_runs r ON r.id = f.run_id
        WHERE f.outcome IS NOT NULL
    """,
}


def upgrade() -> None:
    """Create the views."""
    for name, query in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {query.strip()}")


def downgrade() -> None:
    """Drop the views."""
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
