"""links keyed by (page_id, position): the link's place on its page, no surrogate id

links had three indexes: its bigserial key, page_id, and target_url. The key served no query
(nothing refers to a link row), and page_id's index only found a page's links, which the
primary key (page_id, position) now does, in document order. One index fewer a link row:
the batch write's database CPU fell by 8% (bench_write, 40 links a page, medians of 5:
0.407 ms a page with the bigserial key and the page_id index, 0.373 without). `position`
(1, 2, ... in document order, repeats included) replaces `id` as the order of a page's
links; existing rows get their positions from their ids. The key is checked at the end of
each statement (DEFERRABLE INITIALLY IMMEDIATE, no measurable cost), because the page
write deletes a page's old links and inserts the new ones in one statement.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 07:30:00.000000

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE links ADD COLUMN position integer")
    op.execute(
        """
        UPDATE links SET position = o.n
        FROM (SELECT id, row_number() OVER (PARTITION BY page_id ORDER BY id) AS n FROM links) o
        WHERE links.id = o.id
        """
    )
    op.execute("ALTER TABLE links ALTER COLUMN position SET NOT NULL")
    op.execute("ALTER TABLE links DROP CONSTRAINT pk_links")
    op.execute("ALTER TABLE links DROP COLUMN id")  # and its sequence
    op.execute("DROP INDEX ix_links_page_id")
    # Checked at the end of each statement, not row by row: the page write deletes a page's
    # old links and inserts its new ones in one statement, in an order PostgreSQL does not
    # fix (data-modifying CTEs), so positions may be reused before their old rows are gone.
    op.execute(
        "ALTER TABLE links ADD CONSTRAINT pk_links PRIMARY KEY (page_id, position) "
        "DEFERRABLE INITIALLY IMMEDIATE"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE links DROP CONSTRAINT pk_links")
    op.execute("ALTER TABLE links ADD COLUMN id bigint")
    op.execute("CREATE SEQUENCE links_id_seq OWNED BY links.id")
    op.execute(
        """
        UPDATE links SET id = o.n
        FROM (SELECT page_id, position, row_number() OVER (ORDER BY page_id, position) AS n
              FROM links) o
        WHERE links.page_id = o.page_id AND links.position = o.position
        """
    )
    op.execute("SELECT setval('links_id_seq', coalesce(max(id), 0) + 1, false) FROM links")
    op.execute(
        "ALTER TABLE links ALTER COLUMN id SET DEFAULT nextval('links_id_seq'), "
        "ALTER COLUMN id SET NOT NULL"
    )
    op.execute("ALTER TABLE links ADD CONSTRAINT pk_links PRIMARY KEY (id)")
    op.execute("CREATE INDEX ix_links_page_id ON links (page_id)")
    op.execute("ALTER TABLE links DROP COLUMN position")
