"""Peak RSS of ``crawler crawl`` against site size: memory must stay flat in the number of URLs
(issue 3: the 100,000-page crawl under 200 MB peak RSS). Run it on purpose, from the root of a
clone; it is not part of the test suite::

    python -m tests.benchmarks.bench_rss --sizes 10000,50000,100000 [--concurrency 32]
        [--server auto|nginx|aiohttp] [--limit-mb 200] [--no-check] [--keep]

For each size it generates a site with ``tests/sitegen.py``, serves it on 127.0.0.1 (a private
nginx when installed, else the aiohttp static server in a subprocess) and runs

    python -m crawler crawl BASE/index.html --name bench-N --data-dir FRESH --concurrency C
        --host-concurrency C --delay 0 --json

with the embedded PostgreSQL in a fresh, world-traversable data dir (as root the server runs
as a system user). The crawler's RSS is sampled from here every 50 ms (the process alone: the
PostgreSQL server is another process); its own report gives pages/s and its self-sampled peak.
The stored page set is checked against the generator's manifest (robots.txt obeyed).

The process handling (pids pinned by start time, a child subreaper on Linux so the daemonised
PostgreSQL server is reaped here, every process stopped by its pid, also on Ctrl-C) is that of
``tests/benchmarks/bench_crawl.py``. Exit status 1 when a crawl failed, a page set differed
from the manifest, or the largest site's peak RSS exceeded ``--limit-mb``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.benchmarks.bench_crawl import (
    RunResult,
    become_subreaper,
    fmt,
    hosted_site,
    indent,
    number,
    raise_keyboard_interrupt,
    run_crawler,
    say,
)


@dataclass(frozen=True)
class SizeResult:
    pages: int
    urls: int  # URLs a correct crawl fetches (robots.txt obeyed)
    run: RunResult

    @property
    def ok(self) -> bool:
        return self.run.ok and self.run.check_ok is not False

    def row(self) -> dict[str, Any]:
        m, report = self.run.measured, self.run.report
        return {
            "pages": self.pages,
            "urls": self.urls,
            "exit": m.returncode,
            "peak_rss_mb_sampled": m.peak_rss_mb,
            "peak_rss_mb_reported": number(report, "peak_rss_mb"),
            "pages_per_second": number(report, "pages_per_second"),
            "wall_s": m.wall_s,
            "fetched": number(report, "fetched"),
            "check": self.run.check,
        }


def crawl_one(size: int, work: Path, args: argparse.Namespace) -> SizeResult:
    with hosted_site(size, args.seed, work, args) as site:
        mf = site.manifest
        urls = (
            len(mf.robots_html_200_urls) + len(mf.robots_not_found_urls) + len(mf.robots_asset_urls)
        )
        say(
            f"\n{size:,} pages ({urls:,} URLs to fetch), generated in {site.generate_s:.1f}s, "
            f"served by {site.server.kind} at {site.server.base_url}"
        )
        run = run_crawler(site, 1, work, args, keep={site.server.pid})
    if not args.keep:
        shutil.rmtree(work / f"site-{size}", ignore_errors=True)
    result = SizeResult(size, urls, run)
    m = run.measured
    if m.returncode != 0:
        say(f"  FAILED (exit {m.returncode})\n{indent(m.stderr_tail)}")
    else:
        say(
            f"  peak RSS {fmt(m.peak_rss_mb)} MB sampled ({fmt(number(run.report, 'peak_rss_mb'))}"
            f" MB reported), {fmt(number(run.report, 'pages_per_second'))} pages/s, wall "
            f"{m.wall_s:.1f}s, fetched {fmt(number(run.report, 'fetched'), 0)}; "
            f"page set {run.check}"
        )
    for item in m.left_behind:
        say(f"  warning: left running after exit: {item}")
    return result


def report(results: list[SizeResult], limit_mb: float) -> bool:
    """Print the table; True when the largest site stayed under the limit."""
    say("\npeak RSS against site size (flat in the number of URLs?)")
    header = f"{'pages':>10}{'URLs':>10}{'RSS MB sampled':>16}{'RSS MB reported':>17}"
    header += f"{'pages/s':>10}{'wall s':>9}  page set"
    say(header)
    say("-" * (len(header) + 10))
    for r in results:
        row = r.row()
        say(
            f"{r.pages:>10,}{r.urls:>10,}{fmt(row['peak_rss_mb_sampled']):>16}"
            f"{fmt(row['peak_rss_mb_reported']):>17}{fmt(row['pages_per_second']):>10}"
            f"{row['wall_s']:>9.1f}  {row['check']}"
        )
    done = [r for r in results if r.run.measured.peak_rss_mb is not None]
    if len(done) >= 2:
        small, large = done[0], done[-1]
        assert small.run.measured.peak_rss_mb and large.run.measured.peak_rss_mb
        growth = large.run.measured.peak_rss_mb / small.run.measured.peak_rss_mb
        say(f"RSS growth {small.pages:,} -> {large.pages:,} pages: x{growth:.2f}")
    if not results or results[-1].run.measured.peak_rss_mb is None:
        return False
    peak = results[-1].run.measured.peak_rss_mb
    within = peak <= limit_mb
    verdict = "under" if within else "OVER"
    say(f"largest site: {peak:.1f} MB peak RSS, {verdict} the {limit_mb:.0f} MB limit")
    return within


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.bench_rss",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--sizes", default="10000,50000,100000", help="comma-separated page counts")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--server", choices=("auto", "nginx", "aiohttp"), default="auto")
    ap.add_argument("--nginx-workers", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per crawl")
    ap.add_argument("--limit-mb", type=float, default=200.0, help="peak RSS limit, largest site")
    ap.add_argument("--crawler-args", default="", help="extra arguments for `crawler crawl`")
    ap.add_argument("--no-check", action="store_true", help="skip reading the stored pages")
    ap.add_argument("--workdir", type=Path, default=None, help="parent of the temporary folder")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--json-out", type=Path, help="write the results as JSON here")
    args = ap.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if not sizes or sizes[0] < 20:
        ap.error("--sizes must list site sizes >= 20")

    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    args.subreaper = become_subreaper()
    work = Path(tempfile.mkdtemp(prefix="crawler-bench-rss-", dir=args.workdir))
    work.chmod(0o755)  # as root, the embedded PostgreSQL runs as a user that must enter it
    say(f"work folder: {work}{' (kept)' if args.keep else ''}; concurrency {args.concurrency}")
    say(f"{os.cpu_count()} CPUs; sizes {', '.join(f'{s:,}' for s in sizes)}")
    results: list[SizeResult] = []
    try:
        for size in sizes:
            results.append(crawl_one(size, work, args))
    except KeyboardInterrupt:
        say("\ninterrupted: stopped the processes started here")
        return 130
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    within = report(results, args.limit_mb)
    if args.json_out is not None:
        doc = {"concurrency": args.concurrency, "limit_mb": args.limit_mb}
        doc["sizes"] = [r.row() for r in results]
        args.json_out.write_text(json.dumps(doc, indent=1, default=str))
    return 0 if within and all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
