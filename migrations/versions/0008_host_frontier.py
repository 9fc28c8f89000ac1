"""a host-aware frontier: per-run host rows that claims pick from, ready hosts first

`frontier.host` (generated from the URL) names each row's host, the politeness key of
`crawler.urls.host_key` for canonical URLs. `frontier_hosts` holds one row per host of a run:
its queued count, requests in flight and request slots, `next_at` (the earliest start of its
next request), its current delay and the floor robots.txt's Crawl-delay puts under it. A
claim walks `ix_frontier_hosts_ready` (the hosts with queued work and a free slot, by
`next_at`), so it costs O(batch) whatever the number of URLs or hosts.

The queued count is kept by triggers on `frontier` (a statement-level one for inserted rows,
a row-level one for rows whose state comes back to 'queued'), so every path that adds or
requeues URLs keeps it right without knowing of it; the claim, the only way out of the
queue, counts what it takes itself. `frontier_runs` holds the slots and first delay a run's new
hosts start with.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 15:30:00.000000

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The host of an absolute URL: the authority without user info (host, or host:port). URLs in
# the frontier are canonical: lower-case host, no default port.
HOST_OF_URL = r""""substring"(url, '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#]*)'::text)"""

_COUNT_INSERTED = """
    CREATE FUNCTION frontier_hosts_count_inserted() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO frontier_hosts AS h (run_id, host, queued, slots, delay)
        SELECT n.run_id, n.host, count(*) FILTER (WHERE n.state = 'queued'),
               coalesce(min(r.host_slots), 1), coalesce(min(r.first_delay), 0)
        FROM new_rows n
        LEFT JOIN frontier_runs r ON r.run_id = n.run_id
        WHERE n.host IS NOT NULL
        GROUP BY n.run_id, n.host
        ORDER BY n.run_id, n.host  -- one lock order for every writer: no deadlock
        ON CONFLICT (run_id, host) DO UPDATE SET queued = h.queued + excluded.queued;
        RETURN NULL;
    END
    $$
"""

# A row back in the queue (a retry, a release, an expired lease) counts for its host again.
# Rows leave the queue only through the claim, which counts them itself: so this trigger
# fires for requeued rows only (its WHEN runs without calling the function), not for each
# claim or completion.
_COUNT_REQUEUED = """
    CREATE FUNCTION frontier_hosts_count_requeued() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE frontier_hosts SET queued = queued + 1
        WHERE run_id = NEW.run_id AND host = NEW.host;
        RETURN NULL;
    END
    $$
"""


def upgrade() -> None:
    op.execute(
        f"ALTER TABLE frontier ADD COLUMN host text GENERATED ALWAYS AS ({HOST_OF_URL}) STORED"
    )
    op.execute(
        """
        CREATE TABLE frontier_runs (
            run_id bigint NOT NULL,
            host_slots integer DEFAULT 1 NOT NULL,
            first_delay double precision DEFAULT 0 NOT NULL,
            CONSTRAINT pk_frontier_runs PRIMARY KEY (run_id),
            CONSTRAINT fk_frontier_runs_run_id_crawl_runs FOREIGN KEY (run_id)
                REFERENCES crawl_runs (id) ON DELETE CASCADE
        )
        """
    )
    op.execute(
        """
        CREATE TABLE frontier_hosts (
            id bigserial NOT NULL,
            run_id bigint NOT NULL,
            host text NOT NULL,
            queued integer DEFAULT 0 NOT NULL,
            in_flight integer DEFAULT 0 NOT NULL,
            slots integer DEFAULT 1 NOT NULL,
            next_at timestamp with time zone DEFAULT '-infinity' NOT NULL,
            busy_until timestamp with time zone,
            delay double precision DEFAULT 0 NOT NULL,
            min_delay double precision DEFAULT 0 NOT NULL,
            CONSTRAINT pk_frontier_hosts PRIMARY KEY (id),
            CONSTRAINT uq_frontier_hosts_run_id_host UNIQUE (run_id, host),
            CONSTRAINT fk_frontier_hosts_run_id_crawl_runs FOREIGN KEY (run_id)
                REFERENCES crawl_runs (id) ON DELETE CASCADE
        ) WITH (fillfactor = 70)
        """
    )
    op.execute(
        "CREATE INDEX ix_frontier_hosts_ready ON frontier_hosts (run_id, next_at) "
        "WHERE queued > 0 AND in_flight < slots"
    )
    op.execute(
        "CREATE INDEX ix_frontier_hosts_busy ON frontier_hosts (run_id, busy_until) "
        "WHERE in_flight > 0"
    )
    op.execute(
        "CREATE INDEX ix_frontier_host_queued ON frontier (run_id, host, id) WHERE state = 'queued'"
    )
    op.execute(
        "CREATE INDEX ix_frontier_leased ON frontier (run_id, lease_until) WHERE state = 'leased'"
    )
    # Hosts of runs that already have rows (a run resumed after the upgrade).
    op.execute(
        """
        INSERT INTO frontier_hosts (run_id, host, queued)
        SELECT run_id, host, count(*) FILTER (WHERE state = 'queued')
        FROM frontier WHERE state <> 'done' AND host IS NOT NULL
        GROUP BY run_id, host
        """
    )
    op.execute(_COUNT_INSERTED)
    op.execute(_COUNT_REQUEUED)
    op.execute(
        """
        CREATE TRIGGER frontier_hosts_inserted AFTER INSERT ON frontier
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION frontier_hosts_count_inserted()
        """
    )
    op.execute(
        """
        CREATE TRIGGER frontier_hosts_requeued AFTER UPDATE OF state ON frontier
        FOR EACH ROW WHEN (NEW.state = 'queued' AND OLD.state <> 'queued')
        EXECUTE FUNCTION frontier_hosts_count_requeued()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER frontier_hosts_requeued ON frontier")
    op.execute("DROP TRIGGER frontier_hosts_inserted ON frontier")
    op.execute("DROP FUNCTION frontier_hosts_count_requeued()")
    op.execute("DROP FUNCTION frontier_hosts_count_inserted()")
    op.execute("DROP INDEX ix_frontier_leased")
    op.execute("DROP INDEX ix_frontier_host_queued")
    op.execute("DROP TABLE frontier_hosts")
    op.execute("DROP TABLE frontier_runs")
    op.execute("ALTER TABLE frontier DROP COLUMN host")
