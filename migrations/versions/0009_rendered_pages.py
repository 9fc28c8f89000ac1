"""pages.rendered and pages.static_hash: pages stored as a browser rendered them

`--render` (crawler.render) renders some pages in headless Chromium before they are parsed;
`pages.rendered` says which, as of the page's latest fetch, and `static_hash` names the HTML
the server sent for such a page (`content_hash` names the rendered DOM; with --store-body both
bodies are kept in `bodies`). Existing rows were never rendered: the columns are added with
their defaults (false, null), which PostgreSQL keeps in the catalog without rewriting the
table.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 16:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "pages",
        sa.Column("rendered", sa.Boolean(), server_default="false", nullable=False),
    )
    op.add_column("pages", sa.Column("static_hash", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("pages", "static_hash")
    op.drop_column("pages", "rendered")
