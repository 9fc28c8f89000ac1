"""pages.text: no change (a repeat of revision 0003, kept as a step)

This revision set `pages.text`'s compression to lz4 where the server has lz4, but revision
0003 had done so already: lz4 where the server has it, else `STORAGE EXTERNAL` (stored
uncompressed, as on the embedded server), so pglz never compresses the text. The upgrade
found the column as it left it. Its downgrade set the compression back to the server's
default, taking 0003's lz4 away; it changes nothing now either. The revision stays so that
databases already stamped 0011 keep migrating.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 21:30:00.000000

"""

from collections.abc import Sequence

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
