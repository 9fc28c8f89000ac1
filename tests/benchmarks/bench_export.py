"""Benchmark ``crawler export``: peak memory and speed on a large synthetic crawl.

    python -m tests.benchmarks.bench_export [--pages 50000] [--links 30] [--text-bytes 3000]
        [--table pages|links|fetches] [--format jsonl|csv] [--database-url SERVER_URL]
        [--max-rss-mb 150] [--keep]

Run it from the root of a clone; it is not part of the test suite. It fills a fresh database
with a crawl named ``bench`` by bulk SQL (``generate_series``): PAGES pages with about
TEXT_BYTES of text each, LINKS links per page and one fetch per page in one finished run.
Then it runs ``python -m crawler export --name bench --table T --format F --database-url DB``
as a subprocess with stdout sent to a file, samples the child's RSS with psutil every 20 ms,
checks that the file has one line (JSONL) or record (CSV) per row, and prints the figures.
A ``crawler runs --json`` child on the same database gives the baseline RSS of the program.

The database is a private embedded PostgreSQL (``crawler db start --data-dir D`` with D a
new temporary folder, stopped and removed at the end), or, with ``--database-url`` naming a
server, a new database on it that is dropped at the end (``--keep`` keeps either). The exit
status is 1 when the export failed, the count was wrong, or peak RSS exceeded --max-rss-mb.
Environment variables starting with CRAWLER_ are not passed to the children.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil

SAMPLE_S = 0.02
CRAWL = "bench"

FILL = [
    "INSERT INTO crawls (name, seeds) VALUES ('bench', ARRAY['https://bench.example/'])",
    """INSERT INTO crawl_runs (crawl_id, status, finished_at)
       SELECT id, 'finished', now() FROM crawls WHERE name = 'bench'""",
    """INSERT INTO pages (crawl_id, url, final_url, status, content_type, bytes, title,
                          description, lang, h1, text, content_hash, depth, last_run_id, data)
       SELECT c.id, u, u, 200, 'text/html', {text_bytes} + 500, 'Page ' || i,
              'The description of page ' || i, 'en', 'Heading ' || i,
              left(repeat(md5(i::text) || ' lorem ipsum dolor sit amet, consectetur ',
                          {text_bytes} / 70 + 1), {text_bytes}),
              md5(i::text), i % 12, r.id, jsonb_build_object('n', i, 'tags', ARRAY['a', 'b'])
       FROM crawls c JOIN crawl_runs r ON r.crawl_id = c.id,
            generate_series(1, {pages}) AS i,
            LATERAL (SELECT 'https://bench.example/p/' || i || '.html' AS u) AS url
       WHERE c.name = 'bench'""",
    """INSERT INTO page_links (page_id, target_urls, anchor_texts, nofollow)
       SELECT p.id,
              array_agg('https://bench.example/p/' || ((p.id * 7919 + j) % {pages} + 1)
                        || '.html' ORDER BY j),
              array_agg('link ' || j ORDER BY j), array_agg(j % 17 = 0 ORDER BY j)
       FROM pages p, generate_series(1, {links}) AS j GROUP BY p.id""",
    """INSERT INTO fetches (run_id, url, final_url, status, content_type, bytes, elapsed_ms,
                            outcome)
       SELECT p.last_run_id, p.url, p.url, 200, 'text/html', p.bytes, 10 + p.id % 90, 'new'
       FROM pages p""",
    "ANALYZE",
]

COUNTS = {
    "pages": "SELECT count(*) FROM pages",
    "links": "SELECT count(*) FROM links",
    "fetches": "SELECT count(*) FROM fetches",
}


@dataclass(frozen=True)
class Measured:
    code: int
    seconds: float
    peak_rss_mb: float
    stderr: str


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")}


def _crawler(*args: str) -> list[str]:
    return [sys.executable, "-m", "crawler", *args]


def measure(cmd: Sequence[str], stdout_path: Path) -> Measured:
    """Run `cmd` with stdout to a file; sample its RSS until it exits."""
    started = time.monotonic()
    with stdout_path.open("wb") as out:
        child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, env=_env())
        proc = psutil.Process(child.pid)
        peak = 0
        try:
            while child.poll() is None:
                try:
                    peak = max(peak, proc.memory_info().rss)
                except psutil.NoSuchProcess:
                    break
                time.sleep(SAMPLE_S)
            _, err = child.communicate()
        except BaseException:
            child.kill()
            child.wait()
            raise
    return Measured(child.returncode, time.monotonic() - started, peak / 2**20, err.decode())


def count_output(path: Path, fmt: str) -> int:
    """Lines of JSONL (each parsed) or records of CSV (header excluded)."""
    with path.open(encoding="utf-8", newline="") as stream:
        if fmt == "jsonl":
            count = 0
            for line in stream:
                json.loads(line)
                count += 1
            return count
        return sum(1 for _ in csv.reader(stream)) - 1


async def fill(url: str, pages: int, links: int, text_bytes: int) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        for sql in FILL:
            started = time.monotonic()
            await conn.execute(sql.format(pages=pages, links=links, text_bytes=text_bytes))
            step = " ".join(sql.split()[:3])
            print(f"  {step}: {time.monotonic() - started:.1f} s", file=sys.stderr)
        return {table: int(await conn.fetchval(sql)) for table, sql in COUNTS.items()}
    finally:
        await conn.close()


async def _admin(server_url: str, sql: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pages", type=int, default=50_000)
    parser.add_argument("--links", type=int, default=30, help="links per page")
    parser.add_argument("--text-bytes", type=int, default=3000, help="pages.text per page")
    parser.add_argument("--table", choices=tuple(COUNTS), default="pages")
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    parser.add_argument("--database-url", help="a server to create a scratch database on")
    parser.add_argument("--max-rss-mb", type=float, default=150.0)
    parser.add_argument("--keep", action="store_true", help="keep the database and files")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="crawler-bench-export-"))
    work.chmod(0o755)  # the embedded server's system user must enter it when run as root
    data_dir = work / "pg"
    scratch: str | None = None
    url = server = ""
    try:
        if args.database_url:
            server = args.database_url.replace("postgresql+asyncpg://", "postgresql://")
            scratch = f"crawler_bench_export_{uuid.uuid4().hex[:10]}"
            asyncio.run(_admin(server, f'CREATE DATABASE "{scratch}"'))
            url = _with_database(server, scratch)
        else:
            started = subprocess.run(
                _crawler("db", "start", "--data-dir", str(data_dir)),
                env=_env(),
                capture_output=True,
                text=True,
                check=True,
            )
            url = started.stdout.strip()
        subprocess.run(
            _crawler("db", "upgrade", "--database-url", url),
            env=_env(),
            check=True,
            capture_output=True,
        )
        print(f"filling: {args.pages} pages, {args.links} links each", file=sys.stderr)
        counts = asyncio.run(fill(url, args.pages, args.links, args.text_bytes))

        baseline = measure(
            _crawler("runs", "--name", CRAWL, "--json", "--database-url", url), work / "runs.json"
        )
        out = work / f"export.{args.format}"
        cmd = _crawler(
            "export",
            "--name",
            CRAWL,
            "--table",
            args.table,
            "--format",
            args.format,
            "--database-url",
            url,
        )
        result = measure(cmd, out)
        written = count_output(out, args.format) if result.code == 0 else -1
        expected = counts[args.table]
        size_mb = out.stat().st_size / 2**20
        shown = " ".join(cmd[3:]).replace(url, "DB")
        print(f"command:        crawler {shown} > FILE")
        print(f"rows:           {expected} {args.table} ({counts})")
        print(f"lines:          {written}")
        print(f"output:         {size_mb:.1f} MB")
        print(f"wall time:      {result.seconds:.2f} s ({expected / result.seconds:,.0f} rows/s)")
        print(f"peak RSS:       {result.peak_rss_mb:.1f} MB (limit {args.max_rss_mb:.0f} MB)")
        print(f"baseline RSS:   {baseline.peak_rss_mb:.1f} MB (crawler runs --json)")
        ok = result.code == 0 and written == expected and result.peak_rss_mb < args.max_rss_mb
        if result.code != 0:
            print(f"export failed with exit code {result.code}: {result.stderr}", file=sys.stderr)
        print("OK" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"kept: {work} {scratch or url}", file=sys.stderr)
        else:
            if scratch is not None:
                asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
            if data_dir.exists():
                subprocess.run(
                    _crawler("db", "stop", "--data-dir", str(data_dir)),
                    env=_env(),
                    capture_output=True,
                    check=False,
                )
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
