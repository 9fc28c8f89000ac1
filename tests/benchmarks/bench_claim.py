"""What a claim of the host-aware frontier costs, with many URLs and hosts queued.

    python -m tests.benchmarks.bench_claim [--server postgresql://postgres@127.0.0.1:5432]
        [--urls 1000000] [--hosts 100000] [--processes 3] [--seconds 30] [--batch 64]

Run it from the root of a clone. It creates its own database on the server (dropped at the
end), migrates it, queues `--urls` URLs over `--hosts` hosts with one `INSERT ... SELECT`
from `generate_series` (the frontier's triggers count them per host), and starts
`--processes` claiming processes at once. Each loops for `--seconds`: claim a batch
(crawler.db.host_frontier's claim statement, prepared), then complete it as a crawl would:
`finish` (slots freed, hosts paced by `--delay`) and the rows marked done, so hosts come
back ready. Each process has its own connection, with `synchronous_commit = off` as the
crawler's connections have.

Server-side time of a claim statement is measured two ways:
- `client - rtt`: each claim's time at the client minus the median round trip of
  `SELECT 1` on the same connection (measured before the run);
- `explain`: every `--sample`-th claim is also run as `EXPLAIN (ANALYZE)` in a transaction
  that is rolled back, and its execution time (triggers included) is taken; EXPLAIN's
  timing makes these a little slower than the real statement.
- `server CPU`: the CPU time the connection's server process spent on each claim, from
  /proc/PID/schedstat (Linux, the server on this machine; nanoseconds). Unlike the two
  above it does not grow when other work on the machine keeps the server waiting for a core.
It prints p50/p99 of each, claims a second, and each claiming process's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from crawler.config import normalise_database_url
from crawler.db import host_frontier, migrate
from tests.sql import positional

DONE = "UPDATE frontier SET state = 'done', lease_until = NULL WHERE id = ANY($1::bigint[])"


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _database(server: str, name: str) -> str:
    return server.rstrip("/") + "/" + name


def cpu_ns(pid: int) -> int | None:
    """CPU time of a process so far (ns), or None where /proc/PID/schedstat is not readable."""
    try:
        with open(f"/proc/{pid}/schedstat", encoding="ascii") as stat:
            return int(stat.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def fill(url: str, urls: int, hosts: int, delay: float) -> tuple[int, int]:
    conn = await asyncpg.connect(url)
    try:
        crawl = await conn.fetchval("INSERT INTO crawls (name) VALUES ('bench') RETURNING id")
        run = await conn.fetchval(
            "INSERT INTO crawl_runs (crawl_id) VALUES ($1) RETURNING id", crawl
        )
        await conn.execute(
            "INSERT INTO frontier_runs (run_id, host_slots, first_delay) VALUES ($1, 1, $2)",
            run,
            delay,
        )
        started = time.monotonic()
        await conn.execute(
            "INSERT INTO frontier (run_id, url) SELECT $1, 'http://h' || (i % $3) || "
            "'.test/p' || (i / $3) FROM generate_series(0, $2 - 1) AS i",
            run,
            urls,
            hosts,
        )
        await conn.execute("VACUUM ANALYZE frontier")
        await conn.execute("VACUUM ANALYZE frontier_hosts")
        counted = await conn.fetchval(
            "SELECT sum(queued) FROM frontier_hosts WHERE run_id = $1", run
        )
        print(
            f"queued {counted:,} URLs over {hosts:,} hosts in {time.monotonic() - started:.1f} s",
            flush=True,
        )
        return int(crawl), int(run)
    finally:
        await conn.close()


async def explained_seconds(
    conn: asyncpg.Connection, explain: asyncpg.PreparedStatement, claim_args: list[Any]
) -> float:
    """The server's execution time of one claim (EXPLAIN ANALYZE), its effects rolled back."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        plan = await explain.fetchval(*claim_args)
    finally:
        await transaction.rollback()
    return float(json.loads(plan)[0]["Execution Time"]) / 1000


async def worker(args: argparse.Namespace) -> dict[str, Any]:
    # As the crawler's connections: a commit does not wait for its WAL flush.
    conn = await asyncpg.connect(args.db, server_settings={"synchronous_commit": "off"})
    claim_sql, claim_names = positional(host_frontier.CLAIM_SQL)
    finish_sql, finish_names = positional(host_frontier._FINISH.text)
    values: dict[str, Any] = {
        "crawl_id": args.crawl_id,
        "run_id": args.run_id,
        "owner": f"bench-{os.getpid()}",
        "lease": 60.0,
        "ahead": 0.25,
        "idle": 1.0,
        "n": args.batch,
        "tasks": args.batch,
        "lane": host_frontier.LANE,
        "rest_ids": [],
        "rest_n": [],
    }
    claim_args = [values[n] for n in claim_names]
    try:
        claim = await conn.prepare(claim_sql)
        finish = await conn.prepare(finish_sql)
        done = await conn.prepare(DONE)
        explain = await conn.prepare("EXPLAIN (ANALYZE, FORMAT JSON) " + claim_sql)
        rtts = []
        for _ in range(200):
            t = time.perf_counter()
            await conn.fetchval("SELECT 1")
            rtts.append(time.perf_counter() - t)
        rtt = statistics.median(rtts)
        backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
        await asyncio.sleep(max(args.start_at - time.time(), 0))
        client: list[float] = []
        cpu: list[float] = []
        explained: list[float] = []
        finishes: list[float] = []
        tasks = 0
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            if args.sample and len(client) % args.sample == args.sample - 1:
                explained.append(await explained_seconds(conn, explain, claim_args))
            before = cpu_ns(backend)
            t = time.perf_counter()
            rows = await claim.fetch(*claim_args)
            client.append(time.perf_counter() - t)
            after = cpu_ns(backend)
            if before is not None and after is not None:
                cpu.append((after - before) / 1e9)
            tasks += len(rows)
            if not rows:
                await asyncio.sleep(0.01)
                continue
            finish_values = {
                "host_ids": [r["host_id"] for r in rows],
                "agos": [0.0] * len(rows),
                "delays": [args.delay] * len(rows),
            }
            t = time.perf_counter()
            await finish.fetch(*[finish_values[n] for n in finish_names])
            finishes.append(time.perf_counter() - t)
            await done.fetch([r["id"] for r in rows])
        return {
            "pid": os.getpid(),
            "rtt": rtt,
            "client": client,
            "explain": explained,
            "cpu": cpu,
            "finish": finishes,
            "tasks": tasks,
            "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        }
    finally:
        await conn.close()


def summary(results: list[dict[str, Any]], seconds: float) -> None:
    client = [c for r in results for c in r["client"]]
    net = [c - r["rtt"] for r in results for c in r["client"]]
    explained = [e for r in results for e in r["explain"]]
    cpu = [c for r in results for c in r["cpu"]]
    finishes = [f for r in results for f in r["finish"]]
    tasks = sum(r["tasks"] for r in results)
    ms = 1000.0
    print(
        f"claims: {len(client):,} by {len(results)} processes in {seconds:.0f} s "
        f"({len(client) / seconds:.0f}/s, {tasks / seconds:.0f} tasks/s)"
    )
    print(
        "SELECT 1 round trip (median per process): "
        + ", ".join(f"{r['rtt'] * ms:.2f} ms" for r in results)
    )
    rows = [
        ("claim, client - rtt", net),
        ("claim, EXPLAIN ANALYZE samples", explained),
        ("claim, server CPU", cpu),
        ("claim, client", client),
        ("finish, client", finishes),
    ]
    print(f"{'statement':34} {'n':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, values in rows:
        print(
            f"{name:34} {len(values):>7} {percentile(values, 0.5) * ms:>8.2f} "
            f"{percentile(values, 0.99) * ms:>8.2f} {max(values, default=0) * ms:>8.2f}"
        )
    print(
        "peak RSS of claiming processes: "
        + ", ".join(f"{r['rss_kb'] / 1024:.1f} MB" for r in results)
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--urls", type=int, default=1_000_000)
    ap.add_argument("--hosts", type=int, default=100_000)
    ap.add_argument("--processes", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--delay", type=float, default=1.0, help="each host's delay (seconds)")
    ap.add_argument("--sample", type=int, default=20, help="EXPLAIN ANALYZE every n-th claim")
    ap.add_argument("--keep-db", action="store_true", help="do not drop the database")
    # A claiming process (started by this script).
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--crawl-id", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--run-id", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(asyncio.run(worker(args))))
        return 0
    server = _plain(args.server).rstrip("/")
    name = f"crawler_bench_claim_{uuid.uuid4().hex[:8]}"
    admin_url = _database(server, "postgres")
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    db = _database(server, name)
    try:
        asyncio.run(migrate.upgrade(normalise_database_url(db)))
        crawl_id, run_id = asyncio.run(fill(db, args.urls, args.hosts, args.delay))
        start_at = time.time() + 3.0
        command = [
            sys.executable, "-m", "tests.benchmarks.bench_claim", "--worker", "--db", db,
            "--crawl-id", str(crawl_id), "--run-id", str(run_id),
            "--start-at", str(start_at), "--seconds", str(args.seconds),
            "--batch", str(args.batch), "--delay", str(args.delay),
            "--sample", str(args.sample),
        ]  # fmt: skip
        workers = [
            subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            for _ in range(args.processes)
        ]
        results = []
        for proc in workers:
            out, _ = proc.communicate(timeout=args.seconds + 120)
            if proc.returncode != 0:
                print(f"a claiming process failed ({proc.returncode})", file=sys.stderr)
                return 1
            results.append(json.loads(out))
        summary(results, args.seconds)
        return 0
    finally:
        if args.keep_db:
            print(f"kept database {name}")
        else:
            asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(main())
