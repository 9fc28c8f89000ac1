"""The host-aware frontier: claims hand out URLs of hosts that may be fetched now.

Every host of a run has a `frontier_hosts` row: `queued` (its frontier rows waiting: added
and requeued rows are counted by triggers on `frontier`, claimed ones by the claim),
`in_flight` and `slots` (requests booked and allowed at once), `next_at` (the earliest start
of its next request), `delay` (the gap between its request starts) and `min_delay`
(robots.txt's Crawl-delay). A claim is one statement:

1. the ready hosts, from the partial index `ix_frontier_hosts_ready` (queued work and a free
   slot) in `next_at` order, those due within `lookahead` seconds, longest-waiting first,
   at most the batch, locked `FOR UPDATE SKIP LOCKED` (so no two claimers book one host);
2. up to each host's free slots of its queued URLs (`LATERAL ... LIMIT`), the batch spread
   over the hosts in that order; a host with no gap between its requests (`--delay 0`, no
   Crawl-delay) a lane of URLs a free slot, to be fetched one after the other: its queued
   URLs over its slots, at least one and at most `lane`. The batch counts bookings of
   slots (`n`: a lane is one), and tasks (`tasks`: a page budget);
3. the hosts booked in the same statement: a slot taken per URL (per lane), the URLs'
   starts spaced by the host's delay from `next_at`, and `next_at` moved past the last;
4. the tasks, each with the seconds to wait before its request may start and its lane.

The server's clock books every start, so processes on several machines share the run with
exact per-host politeness. When a request finishes, `finish` frees its slot and moves the
host's `next_at` to the request's start plus the delay the throttle chose (never earlier than
booked); the claim after it leaves those slots to the other processes, once (`resting`). A
killed process's leases expire: `reap` puts its rows back in the queue and frees the slots of
hosts whose bookings all ran out. Each statement costs O(batch): nothing scans the hosts or
the URLs of a run, and this process keeps no state per URL, and per host only which hosts it
booked turns of (`book`: a sitemap's, robots.txt read for the sitemaps) and the slots its
last `finish` freed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import text

from crawler.db.database import Database
from crawler.db.frontier import OPEN_ROWS
from crawler.records import Booking, CrawlTask, HostDone, HostTurn

# The pace a run's hosts start at: new hosts take it from `frontier_runs` (the insert trigger
# of migration 0008), the run's known hosts get its slots now, and its delay when fixed
# (--delay given; adaptive delays learnt so far are kept). Run before a run's seeds are
# queued (`runs.open_run`). It touches only rows that differ: a joining process with the
# same settings writes nothing.
PREPARE = text(
    """
    WITH run AS (
        INSERT INTO frontier_runs (run_id, host_slots, first_delay)
        VALUES (:run_id, :slots, :delay)
        ON CONFLICT (run_id) DO UPDATE SET host_slots = excluded.host_slots,
            first_delay = excluded.first_delay
    )
    UPDATE frontier_hosts SET slots = :slots,
        delay = CASE WHEN :fixed THEN :delay ELSE delay END
    WHERE run_id = :run_id AND (slots <> :slots OR (:fixed AND delay <> :delay))
    """
)

CLAIM_SQL = """
    WITH ready AS (
        SELECT id, host, next_at, delay, greatest(delay, min_delay) AS gap, slots,
               slots - in_flight - coalesce((CAST(:rest_n AS integer[]))[
                   array_position(CAST(:rest_ids AS bigint[]), id)], 0) AS free,
               queued
        FROM frontier_hosts
        WHERE run_id = :run_id AND queued > 0 AND in_flight < slots
          AND next_at <= now() + make_interval(secs => :ahead)
        ORDER BY next_at
        LIMIT :n
        FOR UPDATE SKIP LOCKED
    ),
    turns AS (
        SELECT *, greatest(least(can, :n - coalesce(sum(can) OVER before_me, 0)), 0) AS turns
        FROM (SELECT *, greatest(least(free, queued), 0) AS can FROM ready) r
        WINDOW before_me AS (ORDER BY next_at, id ROWS BETWEEN UNBOUNDED PRECEDING
                                                       AND 1 PRECEDING)
    ),
    sized AS (
        SELECT id, host, next_at, delay, gap, turns,
               greatest(least(room, :tasks - coalesce(sum(room) OVER before_me, 0)), 0) AS take
        FROM (
            SELECT *, least(turns * CASE WHEN gap = 0
                                         THEN greatest(least(:lane, queued / slots), 1)
                                         ELSE 1 END, queued) AS room
            FROM turns
        ) r
        WINDOW before_me AS (ORDER BY next_at, id ROWS BETWEEN UNBOUNDED PRECEDING
                                                       AND 1 PRECEDING)
    ),
    picked AS (
        SELECT s.id AS host_id, greatest(s.next_at, now()) AS first_at, s.delay, s.gap,
               s.turns, u.id
        FROM sized s
        CROSS JOIN LATERAL (
            -- The host as a range, in the order: only ix_frontier_host_queued gives (host, id)
            -- order, so it is the one plan. With `host = s.host` and `ORDER BY f.id` the
            -- planner could walk the primary key through every done row of the run.
            SELECT f.id FROM frontier f
            WHERE f.run_id = :run_id AND f.host >= s.host AND f.host <= s.host
              AND f.state = 'queued' AND (f.not_before IS NULL OR f.not_before <= now())
            ORDER BY f.host, f.id
            LIMIT s.take
            FOR UPDATE SKIP LOCKED
        ) u
        WHERE s.take > 0
    ),
    numbered AS (
        SELECT host_id, id, delay, gap,
               first_at + make_interval(secs => gap * (i - 1)) AS start_at,
               (i - 1) % least(turns, taken) AS lane
        FROM (
            SELECT *, row_number() OVER (PARTITION BY host_id ORDER BY id) AS i,
                   count(*) OVER (PARTITION BY host_id) AS taken
            FROM picked
        ) p
    ),
    booked AS (
        UPDATE frontier_hosts h SET
            in_flight = h.in_flight + least(b.taken, b.turns),
            queued = greatest(h.queued - b.taken, 0),
            next_at = CASE WHEN b.taken > 0 THEN b.last_start + make_interval(secs => b.gap)
                      ELSE greatest(h.next_at, now() + make_interval(secs => :idle)) END,
            busy_until = CASE WHEN b.taken > 0
                         THEN greatest(h.busy_until, b.last_start + make_interval(secs => :lease))
                         ELSE h.busy_until END
        FROM (
            SELECT s.id, s.gap, s.turns, count(n.id) AS taken,
                   max(n.start_at) AS last_start
            FROM sized s LEFT JOIN numbered n ON n.host_id = s.id
            WHERE s.take > 0
            GROUP BY s.id, s.gap, s.turns
        ) b
        WHERE h.id = b.id
    ),
    claimed AS (
        UPDATE frontier f SET
            state = 'leased',
            lease_owner = :owner,
            lease_until = n.start_at + make_interval(secs => :lease),
            attempts = f.attempts + 1
        FROM numbered n
        -- by key: a join the planner may turn into a scan of the whole table
        WHERE f.id = ANY(ARRAY(SELECT id FROM numbered)) AND f.id = n.id
        RETURNING f.id, f.url, f.depth, f.attempts, f.lastmod, n.host_id, n.delay, n.gap,
                  n.start_at, n.lane
    )
    SELECT c.id, c.url, c.depth, c.attempts, c.host_id, c.delay, c.gap, c.lane,
           greatest(extract(epoch FROM c.start_at - now()), 0) AS wait,
           p.etag, p.last_modified,
           extract(epoch FROM now() - p.fetched_at) AS age,
           coalesce(c.lastmod > p.fetched_at, false) AS sitemap_newer
    FROM claimed c
    LEFT JOIN LATERAL (
        SELECT etag, last_modified, fetched_at FROM pages
        WHERE pages.crawl_id = :crawl_id AND pages.url = c.url AND pages.gone_at IS NULL
        LIMIT 1
    ) p ON true
"""
_CLAIM = text(CLAIM_SQL)

# One row per finished request; several of one host fold into one update of its row.
_FINISH = text(
    """
    UPDATE frontier_hosts h SET
        in_flight = greatest(h.in_flight - d.done, 0),
        delay = d.delay,
        next_at = greatest(h.next_at,
                           d.started + make_interval(secs => greatest(d.delay, h.min_delay)))
    FROM (
        SELECT host_id, count(*) AS done,
               now() - make_interval(secs => min(ago)) AS started,
               (array_agg(delay ORDER BY ago))[1] AS delay
        FROM unnest(CAST(:host_ids AS bigint[]), CAST(:agos AS float8[]),
                    CAST(:delays AS float8[])) AS x(host_id, ago, delay)
        GROUP BY host_id
    ) d
    WHERE h.id = d.host_id  -- by key only: a run_id condition lets a plan scan the run's hosts
    """
)

_BLOCK = text(
    """
    UPDATE frontier_hosts SET next_at = greatest(next_at, now() + make_interval(secs => :seconds))
    WHERE id = :host_id AND run_id = :run_id
    """
)

_MIN_DELAY = text(
    """
    UPDATE frontier_hosts SET min_delay = :seconds
    WHERE run_id = :run_id AND host = :host AND min_delay <> :seconds
    """
)

_RELEASE = text(
    """
    WITH back AS (
        UPDATE frontier SET state = 'queued', lease_owner = NULL, lease_until = NULL,
            attempts = greatest(attempts - 1, 0)
        WHERE id = ANY(CAST(:ids AS bigint[])) AND lease_owner = :owner AND state = 'leased'
        RETURNING host
    )
    UPDATE frontier_hosts h SET in_flight = greatest(h.in_flight - b.n, 0)
    FROM (SELECT host, count(*) AS n FROM back GROUP BY host) b
    WHERE h.run_id = :run_id AND h.host = b.host AND :free_slots
    """
)

# A turn of a host for a request with no URL of the frontier behind it (robots.txt read for
# the sitemaps, a sitemap): its row made if missing, then one slot and one start booked, as
# a claim books them. Nothing when the host has no free slot now.
_HOST_ROW = text(
    """
    INSERT INTO frontier_hosts (run_id, host, slots, delay)
    SELECT :run_id, :host, coalesce(max(r.host_slots), 1), coalesce(max(r.first_delay), 0)
    FROM frontier_runs r WHERE r.run_id = :run_id
    ON CONFLICT (run_id, host) DO NOTHING
    """
)

_BOOK = text(
    """
    WITH h AS (
        SELECT id, greatest(next_at, now()) AS start_at, delay,
               greatest(delay, min_delay) AS gap
        FROM frontier_hosts
        WHERE run_id = :run_id AND host = :host AND in_flight < slots
        FOR UPDATE SKIP LOCKED
    )
    UPDATE frontier_hosts f SET
        in_flight = f.in_flight + 1,
        next_at = h.start_at + make_interval(secs => h.gap),
        busy_until = greatest(f.busy_until, h.start_at + make_interval(secs => :lease))
    FROM h WHERE f.id = h.id
    RETURNING f.id, h.delay, h.gap, greatest(extract(epoch FROM h.start_at - now()), 0) AS wait
    """
)

# A turn that found no free slot holds the host's claims back a moment, so that the slot
# freed next goes to the turn, not to the next claim.
_HOLD = text(
    """
    UPDATE frontier_hosts SET next_at = greatest(next_at, now() + make_interval(secs => :hold))
    WHERE run_id = :run_id AND host = :host
    """
)
TURN_HOLD = 0.2  # seconds

_RENEW = text(
    """
    WITH renewed AS (
        UPDATE frontier SET lease_until = now() + make_interval(secs => :lease)
        WHERE id = ANY(CAST(:ids AS bigint[])) AND lease_owner = :owner AND state = 'leased'
        RETURNING host
    )
    UPDATE frontier_hosts h SET
        busy_until = greatest(h.busy_until, now() + make_interval(secs => :lease))
    WHERE h.run_id = :run_id AND h.in_flight > 0 AND h.host IN (SELECT host FROM renewed)
    """
)

# Rows whose lease ran out go back to the queue; hosts whose every booking ran out get their
# slots back. Bounded per call; called every few seconds by each process.
_REAP = text(
    """
    WITH expired AS (
        UPDATE frontier SET state = 'queued', lease_owner = NULL, lease_until = NULL
        WHERE id IN (
            SELECT id FROM frontier
            WHERE run_id = :run_id AND state = 'leased' AND lease_until < now()
            ORDER BY lease_until LIMIT :limit
            FOR UPDATE SKIP LOCKED
        )
        RETURNING id
    ),
    freed AS (
        UPDATE frontier_hosts SET in_flight = 0, busy_until = NULL
        WHERE id IN (
            SELECT id FROM frontier_hosts
            WHERE run_id = :run_id AND in_flight > 0 AND busy_until < now()
            ORDER BY busy_until LIMIT :limit
            FOR UPDATE SKIP LOCKED
        )
        RETURNING id
    )
    SELECT (SELECT count(*) FROM expired) AS rows, (SELECT count(*) FROM freed) AS hosts
    """
)

REAP_LIMIT = 1000
# Tasks a slot of a host with no gap between its requests (--delay 0, no Crawl-delay) may be
# booked for at once, run one after the other (a lane): fewer claims and finishes per page,
# and the slot goes on to the next task without waiting for the database. A freed slot
# waits for the feeder's next flush and claim (10-20 ms on a busy machine) before its next
# request: with lanes of 4 that was about a sixth of a slot's time (README, "Performance").
# A lane is the host's queued tasks over its slots, at most this many (guided
# self-scheduling): long while the queue is long, short near its end, so the host's slots
# run out of work together rather than one slot working through a long lane alone.
LANE = 64


class PgHostFrontier:
    """The host-aware `Frontier` of one run, as seen by one process (its lease owner id).

    `lookahead`: a host due within this many seconds may be claimed (its task waits);
    `idle`: how long a host that had queued rows but none claimable (each not due yet) is
    passed over before it is looked at again.
    """

    def __init__(
        self,
        db: Database,
        crawl_id: int,
        run_id: int,
        owner: str,
        lease_seconds: float,
        *,
        lookahead: float = 0.25,
        idle: float = 1.0,
        lane: int = LANE,
    ) -> None:
        self.db = db
        self.crawl_id = crawl_id
        self.run_id = run_id
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.lookahead = lookahead
        self.idle = idle
        self.lane = lane
        self.host_rows: set[str] = set()  # hosts `book` has made sure have a row
        # Slots of paced hosts (a gap between requests) that `finish` freed since the last
        # claim: the next claim leaves them to other processes (see `claim`).
        self.resting: Counter[int] = Counter()

    async def prepare(self, host_slots: int, first_delay: float, *, fixed: bool = True) -> None:
        """Set the slots and first delay of the run's hosts (see PREPARE)."""
        params = {"run_id": self.run_id, "slots": host_slots, "delay": first_delay, "fixed": fixed}
        await self.db.execute(PREPARE, params)

    async def claim(self, n: int, *, tasks: int | None = None) -> list[Booking]:
        """Up to `n` bookings of ready hosts' slots, at most `tasks` tasks in all (None: as
        the lanes take), each host booked for them: the first booking of each lane, the rest
        of the lane in its `then`.

        The slots of paced hosts that this process's last `finish` freed are left out, once:
        a process writes its finishes just before it claims, and would otherwise book them
        again before another process of the run (--join) could, every time, so a host whose
        slots one process fills would never be fetched by the others. Their next start is a
        delay away, so this process's claim after this one still books them in time."""
        params = {
            "crawl_id": self.crawl_id,
            "run_id": self.run_id,
            "owner": self.owner,
            "lease": self.lease_seconds,
            "ahead": self.lookahead,
            "idle": self.idle,
            "n": n,
            "tasks": n * self.lane if tasks is None else tasks,
            "lane": self.lane,
            "rest_ids": list(self.resting),
            "rest_n": list(self.resting.values()),
        }
        self.resting = Counter()
        rows = await self.db.execute(_CLAIM, params)
        lanes: dict[tuple[int, int], list[Any]] = {}
        for r in sorted(rows, key=_by_id):
            lanes.setdefault((r.host_id, r.lane), []).append(r)
        return sorted((_lane(lane) for lane in lanes.values()), key=_by_wait)

    async def finish(self, done: Sequence[HostDone]) -> None:
        """Free the slots of finished requests and pace their hosts: the next start of a
        host is at least its last request's start plus `delay` (and its Crawl-delay)."""
        if not done:
            return
        self.resting.update(d.host_id for d in done if d.delay > 0)
        now = time.monotonic()
        params = {
            "host_ids": [d.host_id for d in done],
            # Seconds since each start, taken before the statement is sent: the server's
            # now() is later still, so the start it computes is never before the real one.
            "agos": [max(now - d.started, 0.0) for d in done],
            "delays": [d.delay for d in done],
        }
        await self.db.execute(_FINISH, params)

    async def block(self, host_id: int, seconds: float) -> None:
        """No request to the host from any process for `seconds` (Retry-After, backoff)."""
        params = {"run_id": self.run_id, "host_id": host_id, "seconds": seconds}
        await self.db.execute(_BLOCK, params)

    async def set_min_delay(self, host: str, seconds: float) -> None:
        """The host's floor between request starts (robots.txt Crawl-delay)."""
        params = {"run_id": self.run_id, "host": host, "seconds": seconds}
        await self.db.execute(_MIN_DELAY, params)

    async def open_count(self) -> int:
        """Rows of the run not done yet (queued, or leased by any process)."""
        row = await self.db.first(OPEN_ROWS, {"run_id": self.run_id})
        return int(row[0]) if row is not None else 0

    async def release(self, ids: list[int]) -> None:
        """Hand booked tasks whose request never started back to the queue, and their
        slots back to their hosts (graceful stop)."""
        await self._back(ids, free_slots=True)

    async def requeue(self, ids: list[int]) -> None:
        """Hand tasks back to the queue without freeing a slot: `finish` freed theirs (a
        robots.txt request took the booking), or they had none of their own (behind another
        in a lane)."""
        await self._back(ids, free_slots=False)

    async def _back(self, ids: list[int], *, free_slots: bool) -> None:
        if ids:
            params = {
                "ids": ids,
                "owner": self.owner,
                "run_id": self.run_id,
                "free_slots": free_slots,
            }
            await self.db.execute(_RELEASE, params)

    async def book(self, host: str) -> HostTurn | None:
        """A slot and start of `host` for a request with no task (None: no slot free now;
        the host's claims then wait TURN_HOLD seconds, so a turn is not starved by them)."""
        params = {"run_id": self.run_id, "host": host, "lease": self.lease_seconds}
        if host not in self.host_rows:  # rows are never deleted within a run
            await self.db.execute(_HOST_ROW, params)
            self.host_rows.add(host)
        row = await self.db.first(_BOOK, params)
        if row is None:
            await self.db.execute(_HOLD, {**params, "hold": TURN_HOLD})
            return None
        return HostTurn(row.id, float(row.wait), float(row.delay), float(row.gap))

    async def renew(self, ids: list[int]) -> None:
        """Extend the leases of rows still in flight, and their hosts' bookings."""
        if ids:
            params = {
                "ids": ids,
                "owner": self.owner,
                "run_id": self.run_id,
                "lease": self.lease_seconds,
            }
            await self.db.execute(_RENEW, params)

    async def reap(self) -> tuple[int, int]:
        """Requeue rows whose lease expired and free slots whose bookings all expired (a
        killed process's): (rows, hosts)."""
        params = {"run_id": self.run_id, "limit": REAP_LIMIT}
        row = await self.db.first(_REAP, params)
        return (int(row.rows), int(row.hosts)) if row is not None else (0, 0)


def _by_wait(booking: Booking) -> tuple[float, int]:
    return booking.wait, booking.task.frontier_id


def _by_id(row: Any) -> int:
    return int(row.id)


def _lane(rows: list[Any]) -> Booking:
    """The first booking of a lane (the rows of one slot, in id order), the others in
    `then`."""
    head, *then = [_booking(r) for r in rows]
    return replace(head, then=tuple(then)) if then else head


def _booking(r: Any) -> Booking:
    task = CrawlTask(
        r.id,
        r.url,
        r.depth,
        r.attempts,
        etag=r.etag,
        last_modified=r.last_modified,
        age=None if r.age is None else float(r.age),
        sitemap_newer=r.sitemap_newer,
    )
    wait, delay, gap = float(r.wait), float(r.delay), float(r.gap)
    return Booking(task, host_id=r.host_id, wait=wait, delay=delay, gap=gap)
