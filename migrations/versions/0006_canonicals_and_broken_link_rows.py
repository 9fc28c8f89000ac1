"""broken_links tells its rows apart (position, anchor_text); bad_canonicals lists pages
whose declared canonical is not an http(s) URL or cannot be crawled

`broken_links` gains the link's `position` on the source page and its `anchor_text`, as its
last columns (a page linking to one missing URL 746 times gave 746 identical rows).
`bad_canonicals` is new: `pages.canonical` now keeps what a page declared, resolved, in any
scheme (a `file:///` canonical used to be dropped), and the view flags the current pages
whose canonical is not http(s), or whose canonical URL's latest fetch in the crawl failed
(robots refusals included) or was redirected.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 15:30:00.000000

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The latest fetch of each URL in each crawl (as in revision 0002).
_LATEST_FETCHES = """
    SELECT DISTINCT ON (r.crawl_id, f.url)
           r.crawl_id, f.run_id, f.url, f.status, f.error_kind, f.error
    FROM fetches f
    JOIN crawl_runs r ON r.id = f.run_id
    ORDER BY r.crawl_id, f.url, f.id DESC
"""


def _broken_links(more_columns: str) -> str:
    return f"""
        SELECT p.crawl_id, p.url AS source_url, l.target_url, lf.status, lf.error_kind,
               lf.error, lf.run_id{more_columns}
        FROM links l
        JOIN pages p ON p.id = l.page_id
        JOIN ({_LATEST_FETCHES}) lf ON lf.crawl_id = p.crawl_id AND lf.url = l.target_url
        WHERE p.gone_at IS NULL
          AND lf.error_kind IS NOT NULL
          AND lf.error_kind <> 'robots'
    """


# A canonical's latest fetch in the page's crawl is found through the index on fetches.url.
_BAD_CANONICALS = """
    SELECT p.crawl_id, p.url, p.canonical,
           CASE WHEN p.canonical !~* '^https?://' THEN 'not_http'
                WHEN lf.error_kind IS NOT NULL THEN 'failed'
                ELSE 'redirected' END AS reason,
           lf.status, lf.error_kind
    FROM pages p
    LEFT JOIN LATERAL (
        SELECT f.status, f.error_kind, cardinality(f.redirects) > 0 AS redirected
        FROM fetches f
        JOIN crawl_runs r ON r.id = f.run_id
        WHERE f.url = p.canonical AND r.crawl_id = p.crawl_id
        ORDER BY f.id DESC
        LIMIT 1
    ) lf ON true
    WHERE p.gone_at IS NULL
      AND p.canonical IS NOT NULL
      AND (p.canonical !~* '^https?://' OR lf.error_kind IS NOT NULL OR lf.redirected)
"""


def upgrade() -> None:
    # New columns at the end: CREATE OR REPLACE keeps the view's grants and dependants.
    op.execute(
        "CREATE OR REPLACE VIEW broken_links AS"
        + _broken_links(", l.position, l.anchor_text").rstrip()
    )
    op.execute("CREATE VIEW bad_canonicals AS" + _BAD_CANONICALS.rstrip())


def downgrade() -> None:
    op.execute("DROP VIEW bad_canonicals")
    # A view cannot lose columns in place.
    op.execute("DROP VIEW broken_links")
    op.execute("CREATE VIEW broken_links AS" + _broken_links("").rstrip())
