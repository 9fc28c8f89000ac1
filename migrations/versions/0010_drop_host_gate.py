"""Drop the `hosts` table and `crawl_runs.coordinated`: per-host politeness is the frontier's

Before the host-aware frontier (0008) took over, a run that a second process joined kept
its hosts' request slots and next starts in `hosts`, and `crawl_runs.coordinated` said that
it had been joined. Every claim now books its hosts in `frontier_hosts`, for one process or
many, so neither is written or read any more.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 19:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("hosts")
    op.drop_column("crawl_runs", "coordinated")


def downgrade() -> None:
    op.add_column(
        "crawl_runs",
        sa.Column("coordinated", sa.Boolean(), server_default="false", nullable=False),
    )
    op.create_table(
        "hosts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column(
            "next_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("slots", postgresql.ARRAY(sa.DateTime(timezone=True)), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["crawl_runs.id"],
            name=op.f("fk_hosts_run_id_crawl_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hosts")),
        sa.UniqueConstraint("run_id", "host", name=op.f("uq_hosts_run_id_host")),
    )
