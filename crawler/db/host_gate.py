"""Per-host politeness shared by every process of a run: one `hosts` row per host.

A row holds `next_at`, the earliest start of the next request (so delays and Retry-After hold
across machines), and `slots`, one lease expiry per concurrent request allowed. Taking a slot
is one short statement on one row, whatever the size of the frontier; a killed process's
slots expire on their own. Used only once a second process has joined the run: alone, a
process keeps this state in memory and spends no round trips on it.
"""

from __future__ import annotations

import time

from sqlalchemy import text

from crawler.db.database import Database

_ADD = text(
    """
    INSERT INTO hosts (run_id, host, slots)
    VALUES (:run_id, :host, array_fill('-infinity'::timestamptz, ARRAY[CAST(:n AS integer)]))
    ON CONFLICT (run_id, host) DO NOTHING
    """
)

_TAKE = text(
    """
    WITH h AS (
        SELECT id, next_at,
               (SELECT min(i) FROM generate_subscripts(slots, 1) AS i
                WHERE slots[i] < now()) AS free
        FROM hosts WHERE run_id = :run_id AND host = :host
        FOR UPDATE
    )
    UPDATE hosts SET
        slots[h.free] = now() + make_interval(secs => :ttl),
        next_at = greatest(h.next_at, now()) + make_interval(secs => :delay)
    FROM h
    WHERE hosts.id = h.id AND h.free IS NOT NULL
    RETURNING h.free AS slot, extract(epoch FROM greatest(h.next_at, now()) - now()) AS wait
    """
)

_GIVE_BACK = text(
    """
    UPDATE hosts SET slots[:slot] = '-infinity'
    WHERE run_id = :run_id AND host = :host
    """
)

_BLOCK = text(
    """
    UPDATE hosts SET next_at = greatest(next_at, now() + make_interval(secs => :seconds))
    WHERE run_id = :run_id AND host = :host
    """
)

_COORDINATED = text("SELECT coordinated FROM crawl_runs WHERE id = :run_id")

REFRESH_SECONDS = 2.0


class PgHostGate:
    """The `HostGate` of one run in PostgreSQL."""

    def __init__(self, db: Database, run_id: int, *, slot_ttl: float) -> None:
        self.db = db
        self.run_id = run_id
        self.slot_ttl = slot_ttl
        self.known_hosts: set[str] = set()
        self._active = False
        self._checked_at = 0.0

    async def active(self) -> bool:
        """Is more than one process on the run (checked every couple of seconds)?"""
        now = time.monotonic()
        if not self._active and now - self._checked_at > REFRESH_SECONDS:
            self._checked_at = now
            row = await self.db.first(_COORDINATED, {"run_id": self.run_id})
            self._active = bool(row and row[0])
        return self._active

    async def acquire(self, host: str, slots: int, delay: float) -> tuple[int, float] | None:
        """Take a request slot of `host`: (slot, seconds to wait before starting), or None
        when every slot is taken."""
        params = {"run_id": self.run_id, "host": host}
        if host not in self.known_hosts:
            await self.db.execute(_ADD, {**params, "n": slots})
            self.known_hosts.add(host)
        row = await self.db.first(_TAKE, {**params, "ttl": self.slot_ttl, "delay": delay})
        if row is None:
            return None
        return int(row.slot), max(float(row.wait), 0.0)

    async def release(self, host: str, slot: int) -> None:
        await self.db.execute(_GIVE_BACK, {"run_id": self.run_id, "host": host, "slot": slot})

    async def block(self, host: str, seconds: float) -> None:
        """No request to `host` from any process for `seconds` (Retry-After)."""
        params = {"run_id": self.run_id, "host": host, "seconds": seconds}
        await self.db.execute(_BLOCK, params)
