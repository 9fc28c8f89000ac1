"""a page's links stored as one row of arrays (page_links); links becomes a view of them

A row per link cost the database most of its work per stored page: with about 40 links a
page, 40 heap tuples, 80 index entries (the (page_id, position) key and target_url) and their
WAL records, where the page itself is one row. Measured on the 10,000-page benchmark
(bench_crawl --only crawler, 3 interleaved pairs): PostgreSQL's CPU a page 0.53-0.62 ms ->
0.38-0.40, the crawl's CPU a page, all processes, 1.44-1.57 -> 1.28-1.33 ms. page_links
holds one row a page, its links as three parallel arrays in document order; a row of up
to 8160 bytes stays in the table uncompressed (toast_tuple_target), as the text column does
(pglz would cost as much CPU again).

`links` keeps its columns as a view (page_id, position, target_url, anchor_text, nofollow):
queries, the other views and exports read it as before. What it no longer has is an index
on target_url: "which pages link to X" reads every page's links (a sequential scan). A GIN
index on page_links.target_urls answers `target_urls @> ARRAY[X]`, at about half the write
saving; see README.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 13:20:00.000000

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The views that read `links`: dropped while it changes, recreated as they were.
_DEPENDENT_VIEWS = ("broken_links", "orphan_pages")

_LINKS_VIEW = """
    CREATE VIEW links AS
    SELECT pl.page_id, CAST(l.position AS integer) AS position, l.target_url,
           coalesce(l.anchor_text, '') AS anchor_text, coalesce(l.nofollow, false) AS nofollow
    FROM page_links pl
    CROSS JOIN LATERAL unnest(pl.target_urls, pl.anchor_texts, pl.nofollow)
        WITH ORDINALITY AS l(target_url, anchor_text, nofollow, position)
"""


def _trigger(table: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION links_follow_deleted_pages() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM {table} WHERE page_id IN (SELECT id FROM deleted_pages);
            RETURN NULL;
        END
        $$
    """


def _save_views() -> dict[str, str]:
    bind = op.get_bind()
    views = {}
    for name in _DEPENDENT_VIEWS:
        query = bind.exec_driver_sql(f"SELECT pg_get_viewdef('{name}'::regclass)").scalar()
        views[name] = str(query)
        op.execute(f"DROP VIEW {name}")
    return views


def _restore_views(views: dict[str, str]) -> None:
    for name, query in views.items():
        op.execute(f"CREATE VIEW {name} AS {query}")


def upgrade() -> None:
    views = _save_views()
    op.execute(
        """
        CREATE TABLE page_links (
            page_id bigint NOT NULL,
            target_urls text[] NOT NULL,
            anchor_texts text[] NOT NULL,
            nofollow boolean[] NOT NULL,
            CONSTRAINT pk_page_links PRIMARY KEY (page_id)
        ) WITH (toast_tuple_target = 8160)
        """
    )
    op.execute(
        """
        INSERT INTO page_links (page_id, target_urls, anchor_texts, nofollow)
        SELECT page_id, array_agg(target_url ORDER BY position),
               array_agg(coalesce(anchor_text, '') ORDER BY position),
               array_agg(nofollow ORDER BY position)
        FROM links GROUP BY page_id
        """
    )
    op.execute("DROP TABLE links")
    op.execute(_LINKS_VIEW)
    op.execute(_trigger("page_links"))
    _restore_views(views)


def downgrade() -> None:
    views = _save_views()
    op.execute("DROP VIEW links")
    op.execute(
        """
        CREATE TABLE links (
            page_id bigint NOT NULL,
            target_url text NOT NULL,
            anchor_text text,
            nofollow boolean DEFAULT false NOT NULL,
            position integer NOT NULL,
            CONSTRAINT pk_links PRIMARY KEY (page_id, position) DEFERRABLE INITIALLY IMMEDIATE
        )
        """
    )
    op.execute(
        """
        INSERT INTO links (page_id, position, target_url, anchor_text, nofollow)
        SELECT pl.page_id, l.position, l.target_url, coalesce(l.anchor_text, ''),
               coalesce(l.nofollow, false)
        FROM page_links pl
        CROSS JOIN LATERAL unnest(pl.target_urls, pl.anchor_texts, pl.nofollow)
            WITH ORDINALITY AS l(target_url, anchor_text, nofollow, position)
        """
    )
    op.execute("CREATE INDEX ix_links_target_url ON links (target_url)")
    op.execute("DROP TABLE page_links")
    op.execute(_trigger("links"))
    _restore_views(views)
