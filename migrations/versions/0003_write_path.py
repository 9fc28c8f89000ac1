"""links follow their page by trigger, not by foreign key; pages.text cheap to store

A foreign key from links.page_id to pages checks the page row once per inserted link (an
RI query and a row lock each): with about 45 links a page that was a third of the database's
CPU per stored page (measured by replaying the batch write: 1.44 ms of backend CPU a page
with the key, 0.92 ms without). Every link row is written by the page write itself, from the
ids that write returned, so the check could never fail; what the key still gave was the
cascade when pages are deleted, and a statement-level trigger does that, once per statement.

pages.text (about 25 KB a page) was compressed with pglz on its way into TOAST, another 0.39
ms of backend CPU a page (same replay). Where the server has lz4 (built --with-lz4, as
Debian's and most packaged servers are) the column uses lz4, several times faster at a
similar ratio; where it has not (the embedded server), the column is stored uncompressed
(STORAGE EXTERNAL): about 2.4x the disk for the text, for a third less database CPU a page.
`ALTER TABLE pages ALTER COLUMN text SET STORAGE EXTENDED` trades that back.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 06:00:00.000000

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_HAS_LZ4 = "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"


def upgrade() -> None:
    if op.get_bind().exec_driver_sql(_HAS_LZ4).scalar():
        op.execute("ALTER TABLE pages ALTER COLUMN text SET COMPRESSION lz4")
    else:
        op.execute("ALTER TABLE pages ALTER COLUMN text SET STORAGE EXTERNAL")
    op.drop_constraint(op.f("fk_links_page_id_pages"), "links", type_="foreignkey")
    op.execute(
        """
        CREATE FUNCTION links_follow_deleted_pages() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM links WHERE page_id IN (SELECT id FROM deleted_pages);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER links_follow_deleted_pages
        AFTER DELETE ON pages
        REFERENCING OLD TABLE AS deleted_pages
        FOR EACH STATEMENT EXECUTE FUNCTION links_follow_deleted_pages()
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE pages ALTER COLUMN text SET STORAGE EXTENDED")
    op.execute("ALTER TABLE pages ALTER COLUMN text SET COMPRESSION default")
    op.execute("DROP TRIGGER links_follow_deleted_pages ON pages")
    op.execute("DROP FUNCTION links_follow_deleted_pages()")
    op.execute("DELETE FROM links WHERE NOT EXISTS (SELECT 1 FROM pages WHERE pages.id = page_id)")
    op.create_foreign_key(
        op.f("fk_links_page_id_pages"),
        "links",
        "pages",
        ["page_id"],
        ["id"],
        ondelete="CASCADE",
    )
