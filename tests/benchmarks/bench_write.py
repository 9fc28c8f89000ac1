"""What the batch write costs the database, per page, and what each part of it costs.

    python -m tests.benchmarks.bench_write [--pages 1500] [--batch 8] [--reps 3]
        [--variant NAME ...]

Run it from the root of a clone. It generates a site with ``tests/sitegen.py``, parses its
HTML pages with the crawler's own parser into the records a crawl would write, starts an
embedded PostgreSQL in a temporary folder, and for each variant of the schema (a fresh
database cloned from the migrated one, then changed by the variant's DDL) replays the
records through the crawl's batch statement (``crawler.db.batch.WRITE_BATCH``, batches of
``--batch`` pages, one connection, prepared once, the tables analyzed after
``ANALYZE_AFTER`` pages as a crawl does), measuring the CPU of that connection's server
process from /proc (Linux) and the wall time. Medians of ``--reps`` repetitions,
run interleaved so drift hits every variant alike.

Variants:

- ``current``: the schema as migrated;
- ``links_gin``: with a GIN index on page_links.target_urls (README: which pages link to a
  URL);
- ``text_pglz``: pages.text compressed with pglz again (STORAGE EXTENDED);
- ``no_links``: pages written without their links;
- ``no_text``: pages written without their body text.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg

from crawler.config import normalise_database_url
from crawler.db import embedded, migrate
from crawler.db.batch import WRITE_BATCH, BatchParams
from crawler.db.writer import ANALYZE_AFTER, ANALYZE_TABLES
from crawler.parse import parse_html
from crawler.records import CrawlTask, FetchResult, PageRecord
from tests.sitegen import generate, served_path
from tests.sql import positional

BASE_URL = "http://127.0.0.1:8000"
VARIANTS: dict[str, tuple[str, ...]] = {
    "current": (),
    "links_gin": ("CREATE INDEX ON page_links USING gin (target_urls)",),
    "text_pglz": (
        "ALTER TABLE pages ALTER COLUMN text SET STORAGE EXTENDED",
        "ALTER TABLE pages ALTER COLUMN text SET COMPRESSION pglz",
    ),
    "no_links": (),
    "no_text": (),
}
LINK_COLUMNS = ("link_urls", "link_texts", "link_nofollow")


def records(root: Path, urls: Sequence[str]) -> list[PageRecord]:
    """The records a crawl would write for these pages (each queues one new URL)."""
    out = []
    for n, url in enumerate(urls, 1):
        rel = served_path(url.removeprefix(BASE_URL).split("?")[0])
        assert rel is not None
        body = (root / rel).read_bytes()
        html = body.decode()
        page = parse_html(html, url)
        fetch = FetchResult(url, url, 200, "text/html", (("etag", '"x"'),), body, "utf-8", 3)
        digest = hashlib.blake2b(body, digest_size=16).hexdigest()
        follow = tuple(link[0] for link in page.links[:1])
        out.append(PageRecord(CrawlTask(n, url, 1), fetch, page, digest, follow, 2))
    return out


def backend_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a server process (Linux), else None."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def replay(
    server_url: str, variant: str, rep: int, batch: list[PageRecord], size: int
) -> tuple[float | None, float]:
    """(backend CPU ms, wall ms) per page for one replay on a fresh database."""
    name = f"bench_write_{variant}_{rep}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE {embedded.DATABASE}')
    finally:
        await admin.close()
    url = server_url.replace(f"/{embedded.DATABASE}?", f"/{name}?")
    settings = {"synchronous_commit": "off"}
    conn = await asyncpg.connect(url, server_settings=settings)
    try:
        for ddl in VARIANTS[variant]:
            await conn.execute(ddl)
        crawl = await conn.fetchval("INSERT INTO crawls (name) VALUES ('bench') RETURNING id")
        run = await conn.fetchval(
            "INSERT INTO crawl_runs (crawl_id) VALUES ($1) RETURNING id", crawl
        )
        await conn.execute(
            "INSERT INTO frontier (id, run_id, url, state, lease_owner) "
            "SELECT i, $1, 'u' || i, 'leased', 'bench' FROM generate_series(1, $2) i",
            run,
            len(batch),
        )
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('frontier', 'id'), $1)", len(batch) + 1
        )
        await conn.execute("CHECKPOINT")
        sql, names = positional(WRITE_BATCH.text)
        statement = await conn.prepare(sql)
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        cpu0, wall0 = backend_cpu(pid), time.perf_counter()
        for start in range(0, len(batch), size):
            params = BatchParams()
            for record in batch[start : start + size]:
                params.add(record)
            values: dict[str, Any] = params.params(crawl_id=crawl, run_id=run, owner="bench")
            if variant == "no_links":
                for column in LINK_COLUMNS:
                    values[column] = [""] * len(values[column])
            if variant == "no_text":
                values["text"] = [None] * len(values["text"])
            await statement.fetchrow(*[values[n] for n in names])
            if start < ANALYZE_AFTER <= start + size:  # as the crawl's writer does
                await conn.execute(ANALYZE_TABLES.text)
        cpu1, wall1 = backend_cpu(pid), time.perf_counter()
    finally:
        await conn.close()
    cpu = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) * 1000 / len(batch)
    return cpu, (wall1 - wall0) * 1000 / len(batch)


def median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


async def measure(server_url: str, args: argparse.Namespace, batch: list[PageRecord]) -> int:
    results: dict[str, list[tuple[float | None, float]]] = {v: [] for v in args.variant}
    for rep in range(args.reps):
        for variant in args.variant:
            results[variant].append(await replay(server_url, variant, rep, batch, args.batch))
    print(f"\n{'variant':<12}{'backend CPU ms/page':>22}{'wall ms/page':>15}   runs (CPU)")
    for variant, runs in results.items():
        cpu = median([c for c, _ in runs])
        wall = median([w for _, w in runs])
        each = ", ".join("n/a" if c is None else f"{c:.3f}" for c, _ in runs)
        cpu_text = "n/a" if cpu is None else f"{cpu:.3f}"
        print(f"{variant:<12}{cpu_text:>22}{wall or 0:>15.3f}   {each}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_write")
    ap.add_argument("--pages", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--variant", action="append", choices=sorted(VARIANTS))
    args = ap.parse_args(argv)
    args.variant = args.variant or list(VARIANTS)
    work = Path(tempfile.mkdtemp(prefix="crawler-bench-write-"))
    work.chmod(0o755)  # as root, the embedded PostgreSQL runs as a user that must enter it
    data_dir = work / "pg"
    data_dir.mkdir(mode=0o755)
    try:
        manifest = generate(work / "site", args.pages, BASE_URL)
        urls = sorted(manifest.html_200_urls)[: args.pages]
        batch = records(work / "site", urls)
        links = sum(len(r.page.links) for r in batch if r.page is not None) / len(batch)
        print(f"{len(batch):,} pages, {links:.0f} links a page, batches of {args.batch}")
        server = embedded.start(data_dir)
        try:
            asyncio.run(migrate.upgrade(normalise_database_url(server.url)))
            return asyncio.run(measure(server.url, args, batch))
        finally:
            embedded.stop(data_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
