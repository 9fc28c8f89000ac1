"""pages.rendered: whether the page's stored content is the DOM a browser rendered

`--render` (crawler.render) renders some pages in headless Chromium before they are parsed;
`pages.rendered` says which, as of the page's latest fetch. Existing rows were never
rendered: the column is added with its default, which PostgreSQL stores in the catalog
without rewriting the table.

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


def downgrade() -> None:
    op.drop_column("pages", "rendered")
