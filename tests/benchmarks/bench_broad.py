"""A broad crawl at the politeness limit: many slow-ish hosts, one request at a time each.

    python -m tests.benchmarks.bench_broad [--hosts 500] [--pages 20] [--delay 1]
        [--concurrency 64] [--median-ms 80] [--sigma 0.6] [--only both|crawler|scrapy]
        [--scrapy-venv DIR] [--timeout 600] [--keep]

Run it from the root of a clone. One aiohttp server, in its own process, answers on
`--hosts` loopback addresses (127.1.x.y, one port), each address its own host with its own
latency (lognormal: median `--median-ms`, shape `--sigma`, fixed per host, drawn from a
seeded generator). Each host has `/` linking to its `--pages - 1` other pages, which link
back, and an empty robots.txt. The server logs every request (host, path, start, end on its
monotonic clock). Traffic goes to 127.0.0.0/8 only.

Each tool crawls every host, seeded with every host's `/`, one request at a time per host,
`--delay` seconds between request starts to a host, `--concurrency` requests in all:

- `crawler crawl SEEDS --allow-private --host-concurrency 1 --delay D --concurrency C`
  (embedded PostgreSQL in a fresh temporary data dir; CRAWLER_* variables not passed on);
- Scrapy (`scrapy runspider`, its default scheduler) from a virtualenv of its own, made under
  the temporary folder (or `--scrapy-venv`, made there if missing and kept): never in the
  project's environment.

A fresh server (same hosts, same latencies) serves each tool. From the request log:

- bound: the best possible schedule, every host busy at its pace from the first request to
  the last: per host, the sum over its requests but the last of max(delay, latency), plus
  the last's latency (host concurrency 1), its maximum over hosts;
- efficiency: the bound over the time from the first request's start to the last's end
  (and over the tool's wall time, startup included);
- short gaps: pairs of consecutive requests to one host that started less than the delay
  apart (5 ms of the server's scheduling noise allowed), and the shortest gap;
- overlaps: requests to a host that started before the one before ended (two in flight);
- requests/s over time (5-second windows) and the mean number of requests in flight.

Every child is stopped by its pid when done, on a timeout, or on Ctrl-C; the temporary
folder is removed unless --keep is given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
WINDOW_S = 5.0
GAP_NOISE_S = 0.005
SCRAPY_SPIDER = """
import scrapy


class Broad(scrapy.Spider):
    name = "broad"

    def __init__(self, seeds_file, **kwargs):
        super().__init__(**kwargs)
        with open(seeds_file, encoding="utf-8") as seeds:
            self.start_urls = seeds.read().split()

    def parse(self, response):
        for href in response.css("a::attr(href)").getall():
            yield response.follow(href, self.parse)
"""


# -- the hosts -------------------------------------------------------------------------------


def addresses(hosts: int) -> list[str]:
    if hosts > 250 * 250:
        raise SystemExit("at most 62,500 hosts")
    return [f"127.1.{i // 250}.{i % 250 + 1}" for i in range(hosts)]


def latencies(hosts: int, median_ms: float, sigma: float, seed: int) -> list[float]:
    """Seconds each host takes to answer: lognormal, clipped to [5 ms, 3 s]."""
    rng = random.Random(seed)
    median = median_ms / 1000
    return [min(max(median * math.exp(rng.gauss(0, sigma)), 0.005), 3.0) for _ in range(hosts)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def serve(args: argparse.Namespace) -> list[tuple[str, str, float, float]]:
    """The server process: every host on its own address until SIGTERM; its request log."""
    from aiohttp import web

    names = addresses(args.hosts)
    latency = {
        f"{a}:{args.port}": s
        for a, s in zip(
            names, latencies(args.hosts, args.median_ms, args.sigma, args.seed), strict=False
        )
    }
    pages = args.pages
    log: list[tuple[str, str, float, float]] = []
    index = "".join(f'<a href="/p{i}">page {i}</a>\n' for i in range(1, pages))
    index_body = f"<html><head><title>home</title></head><body>{index}</body></html>"

    async def handle(request: web.Request) -> web.Response:
        start = time.monotonic()
        host = request.host
        await asyncio.sleep(latency.get(host, 0.0))
        path = request.path
        if path == "/robots.txt":
            response = web.Response(text="User-agent: *\nAllow: /\n", content_type="text/plain")
        elif path == "/":
            response = web.Response(text=index_body, content_type="text/html")
        elif path.startswith("/p") and path[2:].isdigit() and 0 < int(path[2:]) < pages:
            body = f"<html><head><title>{path}</title></head><body><a href='/'>home</a></body>"
            response = web.Response(text=body + "</html>", content_type="text/html")
        else:
            response = web.Response(status=404, text="not found")
        log.append((host, path, start, time.monotonic()))
        return response

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for address in names:
        await web.TCPSite(runner, address, args.port, backlog=1024).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await runner.cleanup()
    return log


# -- running the tools -----------------------------------------------------------------------


@dataclass
class Outcome:
    tool: str
    wall: float
    exit_code: int
    log: list[tuple[str, str, float, float]]


def _stop(proc: subprocess.Popen[bytes] | subprocess.Popen[str], grace: float = 10.0) -> None:
    """Stop a child we started (its own process group, led by its pid)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace)


@contextlib.contextmanager
def server(args: argparse.Namespace, port: int, log: Path) -> Iterator[None]:
    command = [
        sys.executable, "-m", "tests.benchmarks.bench_broad", "--serve",
        "--hosts", str(args.hosts), "--pages", str(args.pages), "--port", str(port),
        "--median-ms", str(args.median_ms), "--sigma", str(args.sigma),
        "--seed", str(args.seed), "--log", str(log),
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "ready", or "" if it died
        if line.strip() != "ready":
            raise SystemExit(f"the server did not start (exit {proc.poll()})")
        yield
    finally:
        _stop(proc, grace=30.0)


def run_tool(
    tool: str, command: list[str], env: dict[str, str], args: argparse.Namespace, port: int
) -> Outcome:
    log = Path(args.work) / f"{tool}-requests.json"
    with server(args, port, log):
        print(f"{tool}: {' '.join(command[:3])} ... ({len(command)} arguments)", flush=True)
        started = time.monotonic()
        out = open(Path(args.work) / f"{tool}.out", "w", encoding="utf-8")  # noqa: SIM115
        proc = subprocess.Popen(
            command, cwd=args.work, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            code = proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(f"{tool}: still running after {args.timeout:.0f} s, stopped", flush=True)
            _stop(proc)
            code = -1
        finally:
            _stop(proc)
            out.close()
        wall = time.monotonic() - started
    entries = json.loads(log.read_text(encoding="utf-8"))
    if code != 0:
        tail = (Path(args.work) / f"{tool}.out").read_text(encoding="utf-8")[-2000:]
        print(f"{tool}: exit {code}\n{tail}", flush=True)
    return Outcome(tool, wall, code, [tuple(e) for e in entries])


def crawler_command(args: argparse.Namespace, seeds: list[str]) -> tuple[list[str], dict[str, str]]:
    data = Path(args.work) / "crawler-data"
    command = [
        sys.executable, "-m", "crawler", "crawl", *seeds, "--name", "broad",
        "--data-dir", str(data), "--allow-private", "--host-concurrency", "1",
        "--delay", str(args.delay), "--concurrency", str(args.concurrency), "--json",
        "--quiet",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return command, env


def scrapy_venv(args: argparse.Namespace) -> Path:
    venv = Path(args.scrapy_venv) if args.scrapy_venv else Path(args.work) / "scrapy-venv"
    scrapy = venv / "bin" / "scrapy"
    if not scrapy.exists():
        print(f"making a virtualenv with Scrapy in {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "-q", "scrapy"]
        subprocess.run(pip, check=True, timeout=900)
    return venv


def scrapy_command(args: argparse.Namespace, seeds: list[str]) -> tuple[list[str], dict[str, str]]:
    venv = scrapy_venv(args)
    spider = Path(args.work) / "broad_spider.py"
    spider.write_text(SCRAPY_SPIDER, encoding="utf-8")
    seeds_file = Path(args.work) / "seeds.txt"
    seeds_file.write_text("\n".join(seeds), encoding="utf-8")
    settings = {
        "CONCURRENT_REQUESTS": args.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        "DOWNLOAD_DELAY": args.delay,
        "RANDOMIZE_DOWNLOAD_DELAY": False,
        "ROBOTSTXT_OBEY": True,
        "LOG_LEVEL": "WARNING",
        "TELNETCONSOLE_ENABLED": False,
        "COOKIES_ENABLED": False,
    }
    command = [
        str(venv / "bin" / "scrapy"),
        "runspider",
        str(spider),
        "-a",
        f"seeds_file={seeds_file}",
    ]
    for key, value in settings.items():
        command += ["-s", f"{key}={value}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRAWLER_", "SCRAPY_"))}
    return command, env


# -- what the request log says ---------------------------------------------------------------


@dataclass
class Figures:
    tool: str
    requests: int
    hosts: int
    bound: float
    span: float
    wall: float
    short_gaps: int
    min_gap: float
    overlaps: int
    in_flight: float
    rps: list[float]

    @property
    def efficiency(self) -> float:
        return self.bound / self.span if self.span > 0 else 0.0

    @property
    def efficiency_wall(self) -> float:
        return self.bound / self.wall if self.wall > 0 else 0.0


def figures(outcome: Outcome, delay: float, latency: dict[str, float]) -> Figures:
    by_host: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for host, _path, start, end in outcome.log:
        by_host[host].append((start, end))
    short = overlaps = 0
    min_gap = math.inf
    bound = 0.0
    for host, spans in by_host.items():
        spans.sort()
        lat = latency.get(host, 0.0)
        bound = max(bound, (len(spans) - 1) * max(delay, lat) + lat)
        for (start, end), (next_start, _) in itertools.pairwise(spans):
            gap = next_start - start
            min_gap = min(min_gap, gap)
            short += gap < delay - GAP_NOISE_S
            overlaps += next_start < end
    if not outcome.log:
        return Figures(outcome.tool, 0, 0, 0.0, 0.0, outcome.wall, 0, math.nan, 0, 0.0, [])
    first = min(e[2] for e in outcome.log)
    last = max(e[3] for e in outcome.log)
    span = last - first
    windows = [0] * (int(span // WINDOW_S) + 1)
    for entry in outcome.log:
        windows[int((entry[2] - first) // WINDOW_S)] += 1
    busy = sum(e[3] - e[2] for e in outcome.log)
    return Figures(
        tool=outcome.tool,
        requests=len(outcome.log),
        hosts=len(by_host),
        bound=bound,
        span=span,
        wall=outcome.wall,
        short_gaps=short,
        min_gap=min_gap,
        overlaps=overlaps,
        in_flight=busy / span if span > 0 else 0.0,
        rps=[n / WINDOW_S for n in windows],
    )


def table(rows: list[Figures], delay: float) -> None:
    print()
    header = (
        f"{'tool':8} {'requests':>8} {'hosts':>6} {'bound s':>8} {'span s':>7} {'wall s':>7} "
        f"{'eff':>5} {'eff/wall':>8} {'gaps<' + format(delay, 'g') + 's':>9} {'min gap':>8} "
        f"{'overlaps':>8} {'in flight':>9}"
    )
    print(header)
    for f in rows:
        print(
            f"{f.tool:8} {f.requests:>8} {f.hosts:>6} {f.bound:>8.1f} {f.span:>7.1f} "
            f"{f.wall:>7.1f} {f.efficiency:>5.2f} {f.efficiency_wall:>8.2f} {f.short_gaps:>9} "
            f"{f.min_gap:>8.3f} {f.overlaps:>8} {f.in_flight:>9.1f}"
        )
    print(f"\nrequests/s by {WINDOW_S:g}-second window:")
    for f in rows:
        print(f"{f.tool:8} " + " ".join(f"{r:.0f}" for r in f.rps))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--hosts", type=int, default=500)
    ap.add_argument("--pages", type=int, default=20, help="pages a host, its / included")
    ap.add_argument("--delay", type=float, default=1.0)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--median-ms", type=float, default=80.0)
    ap.add_argument("--sigma", type=float, default=0.6)
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--only", choices=("both", "crawler", "scrapy"), default="both")
    ap.add_argument("--scrapy-venv", help="a virtualenv for Scrapy (made if missing, kept)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds a tool may run")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    # The server process (started by this script).
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--log", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        log = asyncio.run(serve(args))
        Path(args.log).write_text(json.dumps(log), encoding="utf-8")
        return 0
    if args.pages < 1 or args.hosts < 1:
        raise SystemExit("--hosts and --pages must be at least 1")
    args.work = tempfile.mkdtemp(prefix="crawler-bench-broad-")
    # As root, the embedded PostgreSQL runs as another user, which must enter the folder.
    Path(args.work).chmod(0o755)
    try:
        port = free_port()
        seeds = [f"http://{a}:{port}/" for a in addresses(args.hosts)]
        lat = latencies(args.hosts, args.median_ms, args.sigma, args.seed)
        latency = {f"{a}:{port}": s for a, s in zip(addresses(args.hosts), lat, strict=True)}
        print(
            f"{args.hosts} hosts x {args.pages} pages, latency median "
            f"{sorted(lat)[len(lat) // 2] * 1000:.0f} ms (max {max(lat) * 1000:.0f} ms), "
            f"delay {args.delay:g} s, concurrency {args.concurrency}, host concurrency 1",
            flush=True,
        )
        rows = []
        failed = False
        tools = ("crawler", "scrapy") if args.only == "both" else (args.only,)
        for tool in tools:
            make = crawler_command if tool == "crawler" else scrapy_command
            command, env = make(args, seeds)
            outcome = run_tool(tool, command, env, args, port)
            failed |= outcome.exit_code != 0
            rows.append(figures(outcome, args.delay, latency))
        table(rows, args.delay)
        return 1 if failed else 0
    finally:
        data = Path(args.work) / "crawler-data"
        if data.exists():  # a crawl that was stopped may leave its embedded server running
            stop = [sys.executable, "-m", "crawler", "db", "stop", "--data-dir", str(data)]
            subprocess.run(stop, cwd=REPO_ROOT, capture_output=True, timeout=60, check=False)
        if args.keep:
            print(f"kept {args.work}")
        else:
            shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
