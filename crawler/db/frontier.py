"""The frontier: a run's queue of URLs in PostgreSQL, leased to the processes of the run.

Claims are host-aware (crawler.db.host_frontier). A completion counts only while the lease
is still ours (the store checks `LEASE_HELD`). Dedup is the unique key `(run_id, url)`:
nothing about seen URLs is kept in memory.
"""

from __future__ import annotations

from sqlalchemy import text

# A task's frontier row is written only while this process holds its lease: once the lease
# has expired and passed to another process, our write is a no-op.
LEASE_HELD = "lease_owner = :owner AND state = 'leased'"

OPEN_ROWS = text("SELECT count(*) FROM frontier WHERE run_id = :run_id AND state <> 'done'")
