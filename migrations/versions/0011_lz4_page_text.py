"""Compress `pages.text` with lz4 where the server can: the page write's largest cost

A page's text (25 KB on the benchmark's pages) is compressed as it is stored. PostgreSQL's
default method, pglz, took most of the server's time of a single-host crawl; lz4 compresses
about as well (the benchmark's pages: 135 MB against 109 MB) several times faster, and the
crawl ran 1.4 times as fast (README, "Performance"). Servers built without lz4 (the embedded
one among them: its build has none) keep pglz. Only rows written later are compressed the
new way; the column reads the same either way.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 21:30:00.000000

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_IF_LZ4 = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings
               WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)) THEN
        ALTER TABLE pages ALTER COLUMN text SET COMPRESSION {method};
    END IF;
END
$$
"""


def upgrade() -> None:
    op.execute(_IF_LZ4.format(method="lz4"))


def downgrade() -> None:
    op.execute(_IF_LZ4.format(method="default"))
