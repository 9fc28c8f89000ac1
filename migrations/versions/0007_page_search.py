"""page_search: full-text search vectors of pages, filled lazily (crawler search, crawler db
index), never by the crawl's write path

One row a page: its text-search configuration (from pages.lang, else `simple`), a weighted
tsvector of the page (title A, h1 B, description C, text D), the same of its head (the text
cut to its first 1,500 characters: small enough to stay in the row, where the whole vector
goes to TOAST, so ranking every match by it is cheap) and the content hash they were built
from, so a page whose content changed is indexed again. A GIN index on the vector answers
`@@`; rows go with their page (foreign key, ON DELETE CASCADE; the key costs nothing on the crawl's
writes to pages, which never change pages.id).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 16:00:00.000000

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE page_search (
            page_id bigint NOT NULL,
            crawl_id bigint NOT NULL,
            content_hash text,
            config regconfig NOT NULL,
            vector tsvector NOT NULL,
            head tsvector NOT NULL,
            indexed_at timestamptz DEFAULT now() NOT NULL,
            CONSTRAINT pk_page_search PRIMARY KEY (page_id),
            CONSTRAINT fk_page_search_page_id_pages FOREIGN KEY (page_id)
                REFERENCES pages (id) ON DELETE CASCADE
        )
        """
    )
    op.execute("CREATE INDEX ix_page_search_vector ON page_search USING gin (vector)")
    op.execute("CREATE INDEX ix_page_search_crawl_id_config ON page_search (crawl_id, config)")


def downgrade() -> None:
    op.execute("DROP TABLE page_search")
