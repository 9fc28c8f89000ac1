"""Benchmark ``crawler report``: time, file size and peak RSS on a large synthetic crawl.

    python -m tests.benchmarks.bench_report [--pages 50000] [--links 40]
        [--database-url SERVER_URL] [--max-seconds 10] [--max-mb 5] [--max-rss-mb 200] [--keep]

Run it from the root of a clone with the report extra installed; it is not part of the test
suite. It fills a fresh database by bulk SQL (``generate_series``) with a crawl named
``bench`` of three runs: PAGES pages (some without title or description, some sharing a
body, some gone, depths 0-7), LINKS links a page (one page in five links to a missing URL),
and in each run one fetch a page with skewed response times, plus, in the last run, 404s
for the missing URLs, timeouts, robots refusals, redirect chains and a few PDFs and images.
Then it runs ``python -m crawler report --name bench --out FILE --database-url DB`` as a
subprocess, samples its RSS with psutil every 20 ms (the same sampler as bench_export) and
prints wall time, file size and peak RSS. The exit status is 1 when the report failed or
passed a limit.

The database is a private embedded PostgreSQL in a new temporary folder, or, with
``--database-url`` naming a server, a new database on it; either goes at the end unless
``--keep``. Environment variables starting with CRAWLER_ are not passed to the children.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from tests.benchmarks.bench_export import _admin, _crawler, _env, _with_database, measure

CRAWL = "bench"
SITE = "https://bench.example"

FILL = [
    """INSERT INTO crawls (name, seeds, config)
        VALUES ('bench', ARRAY['{site}/'],
                '{{"concurrency": 32, "max_depth": 50, "user_agent": "crawler/0.1"}}')""",
    # Three runs a day apart, half an hour each.
    """INSERT INTO crawl_runs (crawl_id, status, started_at, finished_at, pages, errors)
       SELECT c.id, 'finished', now() - make_interval(days => 3 - n),
              now() - make_interval(days => 3 - n) + interval '30 minutes', {pages}, 0
       FROM crawls c, generate_series(1, 3) AS n WHERE c.name = 'bench' ORDER BY n""",
    """INSERT INTO pages (crawl_id, url, final_url, status, content_type, bytes, title,
                          description, h1, text, content_hash, depth, last_run_id, gone_at)
       SELECT c.id, u, u, 200, 'text/html', 5000 + (i * 7919) % 150000,
              CASE WHEN i % 13 <> 0 THEN 'Page ' || i END,
              CASE WHEN i % 7 <> 0 THEN 'About page ' || i ELSE '' END, 'Heading ' || i,
              left(repeat(md5(i::text) || ' lorem ipsum dolor sit amet ', 60), 2000),
              CASE WHEN i % 50 = 0 THEN md5((i % 500)::text) ELSE md5(i::text) END,
              i % 8, (SELECT max(id) FROM crawl_runs WHERE crawl_id = c.id),
              CASE WHEN i % 100 = 1 THEN now() END
       FROM crawls c, generate_series(1, {pages}) AS i,
            LATERAL (SELECT '{site}/p/' || i || '.html' AS u) AS url
       WHERE c.name = 'bench'""",
    # LINKS links a page; in one page of five the last goes to one of 1,000 missing URLs.
    """INSERT INTO page_links (page_id, target_urls, anchor_texts, nofollow)
       SELECT p.id,
              array(SELECT CASE WHEN j = {links} AND p.id % 5 = 0
                                THEN '{site}/missing/' || p.id % 1000 || '.html'
                                ELSE '{site}/p/' || ((p.id * 7919 + j * 104729) % {pages} + 1)
                                     || '.html' END
                    FROM generate_series(1, {links}) AS j ORDER BY j),
              array(SELECT 'link ' || j FROM generate_series(1, {links}) AS j ORDER BY j),
              array(SELECT j % 17 = 0 FROM generate_series(1, {links}) AS j ORDER BY j)
       FROM pages p""",
    # One fetch a page in every run; the last run finds the gone pages gone.
    """INSERT INTO fetches (run_id, url, final_url, status, content_type, bytes, elapsed_ms,
                            fetched_at, outcome, error_kind, error)
       SELECT r.id, p.url, p.url, CASE WHEN gone THEN 404 ELSE 200 END, 'text/html', p.bytes,
              (20 + 3000 * power(random(), 4))::int,
              r.started_at + random() * interval '30 minutes',
              CASE WHEN r.n = 1 THEN 'new' WHEN gone THEN 'gone'
                   WHEN p.id % 10 = r.n THEN 'changed' ELSE 'unchanged' END,
              CASE WHEN gone THEN 'http_status' END, CASE WHEN gone THEN '404 Not Found' END
       FROM pages p,
            (SELECT id, started_at, row_number() OVER (ORDER BY id) AS n FROM crawl_runs) r,
            LATERAL (SELECT r.n = 3 AND p.gone_at IS NOT NULL AS gone) g""",
    # The last run's other fetches: missing URLs, timeouts, robots, redirects, files.
    """INSERT INTO fetches (run_id, url, final_url, status, content_type, bytes, elapsed_ms,
                            error_kind, error, redirects)
       SELECT (SELECT max(id) FROM crawl_runs), u, fu, st, ct, b, ms, ek, er, rd
       FROM (
           SELECT '{site}/missing/' || k || '.html' AS u, NULL AS fu, 404 AS st,
                  'text/html' AS ct, 300 AS b, 15 + k % 40 AS ms, 'http_status' AS ek,
                  '404 Not Found' AS er, '{{}}'::text[] AS rd
           FROM generate_series(0, 999) AS k
           UNION ALL
           SELECT '{site}/slow/' || k, NULL, NULL, NULL, 0, 30000, 'timeout', 'read timeout',
                  '{{}}' FROM generate_series(1, 300) AS k
           UNION ALL
           SELECT '{site}/private/' || k, NULL, NULL, NULL, 0, 0, 'robots', 'disallowed',
                  '{{}}' FROM generate_series(1, 200) AS k
           UNION ALL
           SELECT '{site}/old/' || k, '{site}/p/' || k || '.html', 200, 'text/html', 9000,
                  40 + k % 200, NULL, NULL,
                  CASE WHEN k % 3 = 0 THEN ARRAY['{site}/old/' || k, '{site}/mid/' || k]
                       ELSE ARRAY['{site}/old/' || k] END
           FROM generate_series(1, 1000) AS k
           UNION ALL
           SELECT '{site}/f/' || k || CASE WHEN k % 2 = 0 THEN '.pdf' ELSE '.png' END, NULL,
                  200, CASE WHEN k % 2 = 0 THEN 'application/pdf' ELSE 'image/png' END,
                  200000, 50 + k % 400, NULL, NULL, '{{}}'
           FROM generate_series(1, 2000) AS k
       ) AS extra""",
    "ANALYZE",
]

COUNTS = {
    "pages": "SELECT count(*) FROM pages",
    "links": "SELECT sum(cardinality(target_urls)) FROM page_links",
    "fetches": "SELECT count(*) FROM fetches",
    "broken_links": "SELECT count(*) FROM broken_links",
}


async def fill(url: str, pages: int, links: int) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        for sql in FILL:
            started = time.monotonic()
            await conn.execute(sql.format(pages=pages, links=links, site=SITE))
            step = " ".join(sql.split()[:3])
            print(f"  {step}: {time.monotonic() - started:.1f} s", file=sys.stderr)
        return {table: int(await conn.fetchval(sql)) for table, sql in COUNTS.items()}
    finally:
        await conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pages", type=int, default=50_000)
    parser.add_argument("--links", type=int, default=40, help="links per page")
    parser.add_argument("--database-url", help="a server to create a scratch database on")
    parser.add_argument("--max-seconds", type=float, default=10.0)
    parser.add_argument("--max-mb", type=float, default=5.0)
    parser.add_argument("--max-rss-mb", type=float, default=200.0)
    parser.add_argument("--keep", action="store_true", help="keep the database and files")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="crawler-bench-report-"))
    work.chmod(0o755)  # the embedded server's system user must enter it when run as root
    data_dir = work / "pg"
    scratch: str | None = None
    url = server = ""
    try:
        if args.database_url:
            server = args.database_url.replace("postgresql+asyncpg://", "postgresql://")
            scratch = f"crawler_bench_report_{uuid.uuid4().hex[:10]}"
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
        counts = asyncio.run(fill(url, args.pages, args.links))

        out = work / "report.html"
        cmd = _crawler("report", "--name", CRAWL, "--out", str(out), "--database-url", url)
        result = measure(cmd, work / "stdout")
        size_mb = out.stat().st_size / 2**20 if out.exists() else -1.0
        print(f"command:        crawler report --name {CRAWL} --out FILE --database-url DB")
        print(f"database:       {counts}")
        print(f"wall time:      {result.seconds:.2f} s (limit {args.max_seconds:.0f} s)")
        print(f"file:           {size_mb:.2f} MB (limit {args.max_mb:.0f} MB)")
        print(f"peak RSS:       {result.peak_rss_mb:.1f} MB (limit {args.max_rss_mb:.0f} MB)")
        ok = (
            result.code == 0
            and result.seconds < args.max_seconds
            and 0 < size_mb < args.max_mb
            and result.peak_rss_mb < args.max_rss_mb
        )
        if result.code != 0:
            print(f"report failed with exit code {result.code}: {result.stderr}", file=sys.stderr)
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
