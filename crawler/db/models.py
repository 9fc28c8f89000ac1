"""The tables, as SQLAlchemy 2.0 typed declarative models: the schema contract users query.

README's "Schema" section documents every column; the Alembic revisions under migrations/
create exactly this (a test compares the two). ORM rows never leave the db package.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, REGCONFIG, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# The host of an absolute URL, as frontier.host computes it (see migration 0008).
HOST_OF_URL = r""""substring"(url, '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#]*)'::text)"""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Crawl(Base):
    __tablename__ = "crawls"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    seeds: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = _now()


class CrawlRun(Base):
    __tablename__ = "crawl_runs"
    __table_args__ = (Index(None, "crawl_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    crawl_id: Mapped[int] = mapped_column(ForeignKey("crawls.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(Text, server_default="running")
    started_at: Mapped[datetime] = _now()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pages: Mapped[int] = mapped_column(Integer, server_default="0")
    errors: Mapped[int] = mapped_column(Integer, server_default="0")
    stats: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")


class PageRow(Base):
    __tablename__ = "pages"
    __table_args__ = (
        UniqueConstraint("crawl_id", "url"),
        Index(None, "crawl_id", "status"),
        Index(None, "content_hash"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    crawl_id: Mapped[int] = mapped_column(ForeignKey("crawls.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    final_url: Mapped[str | None] = mapped_column(Text)
    status: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(Text)
    bytes: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    canonical: Mapped[str | None] = mapped_column(Text)
    lang: Mapped[str | None] = mapped_column(Text)
    h1: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    meta_robots: Mapped[str | None] = mapped_column(Text)
    content_hash: Mapped[str | None] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    depth: Mapped[int] = mapped_column(Integer, server_default="0")
    error_kind: Mapped[str | None] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = _now()
    fetched_at: Mapped[datetime] = _now()
    changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    gone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("crawl_runs.id", ondelete="SET NULL")
    )
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sql_text("'{}'::jsonb"))
    # The body parsed was the DOM a browser rendered (--render; migration 0009).
    rendered: Mapped[bool] = mapped_column(Boolean, server_default="false")
    # A rendered page's server HTML: its hash (its body in `bodies` with --store-body).
    static_hash: Mapped[str | None] = mapped_column(Text)


class Fetch(Base):
    __tablename__ = "fetches"
    __table_args__ = (
        Index(None, "run_id", "id"),
        Index(None, "url"),
        Index(
            "ix_fetches_outcome",
            "run_id",
            "outcome",
            postgresql_where=sql_text("outcome IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("crawl_runs.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    final_url: Mapped[str | None] = mapped_column(Text)
    status: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(Text)
    bytes: Mapped[int] = mapped_column(Integer, server_default="0")
    elapsed_ms: Mapped[int] = mapped_column(Integer, server_default="0")
    fetched_at: Mapped[datetime] = _now()
    not_modified: Mapped[bool] = mapped_column(Boolean, server_default="false")
    changed: Mapped[bool | None] = mapped_column(Boolean)
    # For HTML pages and pages that went away: new, changed, unchanged or gone.
    outcome: Mapped[str | None] = mapped_column(Text)
    redirects: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    error_kind: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


class PageLinksRow(Base):
    """A page's links, as of its latest fetch: one row a page, three parallel arrays in
    document order (migration 0005). The `links` view shows them a row a link."""

    __tablename__ = "page_links"
    __table_args__ = ({"postgresql_with": {"toast_tuple_target": 8160}},)

    # pages.id, kept by a trigger (migration 0003), not a foreign key: see that migration.
    page_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    target_urls: Mapped[list[str]] = mapped_column(ARRAY(Text))
    anchor_texts: Mapped[list[str]] = mapped_column(ARRAY(Text))
    nofollow: Mapped[list[bool]] = mapped_column(ARRAY(Boolean))


# The `links` view (migration 0005), for queries; not a table of the models' metadata.
links_view = Table(
    "links",
    MetaData(),
    Column("page_id", BigInteger),
    Column("position", Integer),
    Column("target_url", Text),
    Column("anchor_text", Text),
    Column("nofollow", Boolean),
)


class FrontierRow(Base):
    __tablename__ = "frontier"
    __table_args__ = (
        UniqueConstraint("run_id", "url"),
        Index(
            "ix_frontier_open",
            "run_id",
            "id",
            postgresql_where=sql_text("state <> 'done'"),
        ),
        Index(
            "ix_frontier_host_queued",
            "run_id",
            "host",
            "id",
            postgresql_where=sql_text("state = 'queued'"),
        ),
        Index(
            "ix_frontier_leased",
            "run_id",
            "lease_until",
            postgresql_where=sql_text("state = 'leased'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("crawl_runs.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    depth: Mapped[int] = mapped_column(Integer, server_default="0")
    state: Mapped[str] = mapped_column(Text, server_default="queued")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(Text)
    lastmod: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    added_at: Mapped[datetime] = _now()
    # The URL's host (migration 0008): the key of its frontier_hosts row.
    host: Mapped[str | None] = mapped_column(Text, Computed(HOST_OF_URL, persisted=True))


class FrontierRunRow(Base):
    """What a run's new hosts start with (host-aware frontier, crawler.db.host_frontier)."""

    __tablename__ = "frontier_runs"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("crawl_runs.id", ondelete="CASCADE"), primary_key=True
    )
    host_slots: Mapped[int] = mapped_column(Integer, server_default="1")
    first_delay: Mapped[float] = mapped_column(Float(53), server_default="0")


class FrontierHostRow(Base):
    """One host of a run as the host-aware frontier books it (crawler.db.host_frontier)."""

    __tablename__ = "frontier_hosts"
    __table_args__ = (
        UniqueConstraint("run_id", "host"),
        Index(
            "ix_frontier_hosts_ready",
            "run_id",
            "next_at",
            postgresql_where=sql_text("queued > 0 AND in_flight < slots"),
        ),
        Index(
            "ix_frontier_hosts_busy",
            "run_id",
            "busy_until",
            postgresql_where=sql_text("in_flight > 0"),
        ),
        {"postgresql_with": {"fillfactor": 70}},
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("crawl_runs.id", ondelete="CASCADE"))
    host: Mapped[str] = mapped_column(Text)
    queued: Mapped[int] = mapped_column(Integer, server_default="0")  # kept by triggers
    in_flight: Mapped[int] = mapped_column(Integer, server_default="0")
    slots: Mapped[int] = mapped_column(Integer, server_default="1")
    next_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=sql_text("'-infinity'")
    )
    busy_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delay: Mapped[float] = mapped_column(Float(53), server_default="0")
    min_delay: Mapped[float] = mapped_column(Float(53), server_default="0")


class BodyRow(Base):
    """Response bodies kept with --store-body, compressed, one per content hash."""

    __tablename__ = "bodies"

    content_hash: Mapped[str] = mapped_column(Text, primary_key=True)
    encoding: Mapped[str] = mapped_column(Text, server_default="zlib")
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _now()


class PageSearchRow(Base):
    """A page's full-text search vector (migration 0007), filled lazily by crawler.db.search."""

    __tablename__ = "page_search"
    __table_args__ = (
        Index("ix_page_search_vector", "vector", postgresql_using="gin"),
        Index(None, "crawl_id", "config"),
    )

    page_id: Mapped[int] = mapped_column(
        ForeignKey("pages.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    crawl_id: Mapped[int] = mapped_column(BigInteger)
    content_hash: Mapped[str | None] = mapped_column(Text)
    config: Mapped[str] = mapped_column(REGCONFIG)
    vector: Mapped[str] = mapped_column(TSVECTOR)
    head: Mapped[str] = mapped_column(TSVECTOR)
    indexed_at: Mapped[datetime] = _now()
