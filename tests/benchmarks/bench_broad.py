"""A broad crawl at the politeness limit: many slow-ish hosts, one request at a time each.

    python -m tests.benchmarks.bench_broad [--hosts 500] [--pages 20] [--delay 1]
        [--concurrency 64] [--median-ms 80] [--sigma 0.6] [--only both|crawler|scrapy]
        [--reps 1] [--join 1] [--scrapy-venv DIR] [--timeout 600] [--keep]

Run it from the root of a clone. One aiohttp server, in its own process, answers on
`--hosts` loopback addresses (127.1.x.y, one port), each address its own host with its own
latency (lognormal: median `--median-ms`, shape `--sigma`, fixed per host, drawn from a
seeded generator). Each host has `/` linking to its `--pages - 1` other pages, which link
back, and an empty robots.txt. The server logs every request (host, path, start, end on its
monotonic clock, User-Agent). Traffic goes to 127.0.0.0/8 only. The soft limit of open files
is raised to the hard one (5,000 hosts are 5,000 listening sockets); children inherit it.

Each tool crawls every host, seeded with every host's `/`, one request at a time per host,
`--delay` seconds between request starts to a host, `--concurrency` requests in all:

- `crawler crawl SEEDS --allow-private --host-concurrency 1 --delay D --concurrency C`
  (embedded PostgreSQL in a fresh temporary data dir; CRAWLER_* variables not passed on).
  With `--join N`, `crawler db start` first starts the embedded server in that data dir
  (not timed), then the same command runs, and once the server has seen its first request
  (the run exists) N-1 `crawler crawl --name broad --join` processes join it, each with
  `--concurrency C`; each process has its own User-Agent (`broad-bench/1`, ...), so the
  request log says which process made which request;
- Scrapy (`scrapy runspider`, its default scheduler) from a virtualenv of its own, made under
  the temporary folder (or `--scrapy-venv`, made there if missing and kept): never in the
  project's environment.

`--reps N` runs each tool N times, interleaved (crawler, scrapy, crawler, ...), each time
against a fresh server (same hosts, same latencies) and, for the crawler, a fresh data dir.
From the request log of each run (all processes together):

- bound: no schedule can be faster than either of
  - host bound: every host busy at its pace from the first request to the last: per host,
    (its requests - 1) * max(delay, its latency) + its latency (host concurrency 1), the
    maximum over hosts;
  - slot bound: at most C requests in flight (C * N with N processes joined), so the sum of
    the latencies the server applied (end - start of every request, robots.txt included)
    over C (over C * N);
  and the bound is the larger one (for 5,000 hosts x 4 pages at 80 ms, the slot bound);
- efficiency: the bound over the time from the first request's start to the last's end
  (and over the tool's wall time, startup included);
- lat x: the latencies the server applied over the ones it was asked to (its own load);
- short gaps: pairs of consecutive requests to one host that started less than the delay
  apart (5 ms of the server's scheduling noise allowed), those shorter than 90% of it (not
  jitter between a tool's reservation of a slot and its request), and the shortest gap;
- overlaps: requests to a host that started before the one before ended (two in flight);
- requests/s over time (5-second windows) and the mean number of requests in flight;
- with N > 1 reps, a median row per tool (the median of each column).

Every child is stopped by its pid when done, on a timeout, on Ctrl-C or SIGTERM; the temporary
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
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parents[2]
WINDOW_S = 5.0
GAP_NOISE_S = 0.005
AGENT = "broad-bench/{}"
# host, path, start, end (server's monotonic clock), User-Agent
Entry = tuple[str, str, float, float, str]
SCRAPY_SPIDER = """
import scrapy


class Broad(scrapy.Spider):
    name = "broad"

    def __init__(self, seeds_file, **kwargs):
        super().__init__(**kwargs)
        with open(seeds_file, encoding="utf-8") as seeds:
            self.seeds = seeds.read().split()

    # Seeds through the dupefilter (start_urls bypass it), so that a link back to / is not
    # fetched again. start() from Scrapy 2.13 on, start_requests() before.
    async def start(self):
        for request in self.start_requests():
            yield request

    def start_requests(self):
        for url in self.seeds:
            yield scrapy.Request(url, self.parse)

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


def raise_open_files() -> None:
    """The soft limit of open files up to the hard one (inherited by the children)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


async def serve(args: argparse.Namespace) -> list[Entry]:
    """The server process: every host on its own address until SIGTERM; its request log.

    Prints "ready" once every address listens and "first" at the first request."""
    from aiohttp import web

    names = addresses(args.hosts)
    latency = {
        f"{a}:{args.port}": s
        for a, s in zip(
            names, latencies(args.hosts, args.median_ms, args.sigma, args.seed), strict=False
        )
    }
    pages = args.pages
    log: list[Entry] = []
    index = "".join(f'<a href="/p{i}">page {i}</a>\n' for i in range(1, pages))
    index_body = f"<html><head><title>home</title></head><body>{index}</body></html>"

    async def handle(request: web.Request) -> web.Response:
        start = time.monotonic()
        if not first_seen:
            first_seen.append(start)
            print("first", flush=True)
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
        agent = request.headers.get("User-Agent", "")
        log.append((host, path, start, time.monotonic(), agent))
        return response

    first_seen: list[float] = []
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
    rep: int
    wall: float
    exit_code: int
    processes: int
    log: list[Entry]


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
def server(args: argparse.Namespace, port: int, log: Path) -> Iterator[IO[str]]:
    """A fresh server; yields its stdout, on which "first" follows at the first request."""
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
        yield proc.stdout
    finally:
        _stop(proc, grace=60.0)


@dataclass
class Launch:
    """The processes of one run of a tool: the first, then joiners after the first request."""

    first: list[str]
    joiners: list[list[str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    before: list[str] | None = None  # run to the end first, not timed (`crawler db start`)


def _wait_all(
    launch: Launch, args: argparse.Namespace, name: str, started: float, first_line: IO[str]
) -> int:
    """Start the first process, the joiners once the server saw a request; wait for all.

    The exit code is the first non-zero one (-1: stopped on the timeout)."""
    outs: list[IO[str]] = []
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(command: list[str]) -> None:
        out = open(Path(args.work) / f"{name}-{len(procs)}.out", "w", encoding="utf-8")  # noqa: SIM115
        outs.append(out)
        proc = subprocess.Popen(
            command, cwd=args.work, env=launch.env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        procs.append(proc)

    try:
        spawn(launch.first)
        waiting = bool(launch.joiners)
        deadline = started + args.timeout
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            if waiting and select.select([first_line], [], [], 0.05)[0]:
                # "first": the run exists. (Nothing else was buffered with "ready": no
                # tool was running then.)
                first_line.readline()
                waiting = False
                for command in launch.joiners:
                    spawn(command)
            time.sleep(0.05)
        if any(p.poll() is None for p in procs):
            print(f"{name}: still running after {args.timeout:.0f} s, stopped", flush=True)
            return -1
        if waiting:
            print(f"{name}: the joiners were never started (no request)", flush=True)
        return next((p.returncode for p in procs if p.returncode != 0), 0)
    finally:
        for proc in procs:
            _stop(proc)
        for out in outs:
            out.close()


def run_tool(tool: str, rep: int, launch: Launch, args: argparse.Namespace, port: int) -> Outcome:
    name = f"{tool}-{rep}"
    log = Path(args.work) / f"{name}-requests.json"
    if launch.before:
        subprocess.run(
            launch.before, cwd=REPO_ROOT, env=launch.env, check=True, timeout=300,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
    with server(args, port, log) as first_line:
        print(
            f"{name}: {' '.join(launch.first[:3])} ... ({len(launch.first)} arguments)"
            + (f" + {len(launch.joiners)} joining" if launch.joiners else ""),
            flush=True,
        )
        started = time.monotonic()
        code = _wait_all(launch, args, name, started, first_line)
        wall = time.monotonic() - started
    entries = json.loads(log.read_text(encoding="utf-8"))
    if code != 0:
        tail = (Path(args.work) / f"{name}-0.out").read_text(encoding="utf-8")[-2000:]
        print(f"{name}: exit {code}\n{tail}", flush=True)
    processes = 1 + len(launch.joiners)
    return Outcome(tool, rep, wall, code, processes, [tuple(e) for e in entries])


def crawler_data(args: argparse.Namespace, rep: int) -> Path:
    return Path(args.work) / f"crawler-data-{rep}"


def crawler_launch(args: argparse.Namespace, seeds: list[str], rep: int) -> Launch:
    data = str(crawler_data(args, rep))
    crawler = [sys.executable, "-m", "crawler"]
    options = [
        "--name", "broad", "--data-dir", data, "--allow-private", "--host-concurrency", "1",
        "--delay", str(args.delay), "--concurrency", str(args.concurrency), "--json", "--quiet",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    if args.join == 1:
        return Launch([*crawler, "crawl", *seeds, *options], env=env)
    return Launch(
        first=[*crawler, "crawl", *seeds, *options, "--user-agent", AGENT.format(1)],
        joiners=[
            [*crawler, "crawl", "--join", *options, "--user-agent", AGENT.format(i + 1)]
            for i in range(1, args.join)
        ],
        env=env,
        before=[*crawler, "db", "start", "--data-dir", data],
    )


def scrapy_venv(args: argparse.Namespace) -> Path:
    venv = Path(args.scrapy_venv) if args.scrapy_venv else Path(args.work) / "scrapy-venv"
    scrapy = venv / "bin" / "scrapy"
    if not scrapy.exists():
        print(f"making a virtualenv with Scrapy in {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "-q", "scrapy"]
        subprocess.run(pip, check=True, timeout=900)
    return venv


def scrapy_launch(args: argparse.Namespace, seeds: list[str], rep: int) -> Launch:
    venv = scrapy_venv(args)
    spider = Path(args.work) / "broad_spider.py"
    spider.write_text(SCRAPY_SPIDER, encoding="utf-8")
    seeds_file = Path(args.work) / "seeds.txt"
    seeds_file.write_text("\n".join(seeds), encoding="utf-8")
    settings = {
        "CONCURRENT_REQUESTS": args.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        "DOWNLOAD_DELAY": args.delay,
        "RANDOMIZE_DOWNLOAD_DELAY": False,  # Scrapy < 2.19; later ones warn, and take:
        "DOWNLOAD_DELAY_JITTER": 0,
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
    return Launch(command, env=env)


# -- what the request log says ---------------------------------------------------------------


@dataclass
class Figures:
    tool: str
    rep: str
    requests: int
    hosts: int
    host_bound: float
    slot_bound: float
    span: float
    wall: float
    latency_ratio: float
    short_gaps: int
    very_short: int  # shorter than 90% of the delay
    short_across: int  # of which the two requests came from two processes
    min_gap: float
    overlaps: int
    in_flight: float
    rps: list[float] = field(default_factory=list)
    by_agent: dict[str, int] = field(default_factory=dict)

    @property
    def bound(self) -> float:
        return max(self.host_bound, self.slot_bound)

    @property
    def efficiency(self) -> float:
        return self.bound / self.span if self.span > 0 else 0.0

    @property
    def efficiency_wall(self) -> float:
        return self.bound / self.wall if self.wall > 0 else 0.0


def figures(outcome: Outcome, delay: float, concurrency: int, latency: dict[str, float]) -> Figures:
    by_host: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for host, _path, start, end, agent in outcome.log:
        by_host[host].append((start, end, agent))
    short = very_short = short_across = overlaps = 0
    min_gap = math.inf
    host_bound = 0.0
    for host, spans in by_host.items():
        spans.sort()
        lat = latency.get(host, 0.0)
        host_bound = max(host_bound, (len(spans) - 1) * max(delay, lat) + lat)
        for (start, end, agent), (next_start, _, next_agent) in itertools.pairwise(spans):
            gap = next_start - start
            min_gap = min(min_gap, gap)
            short += gap < delay - GAP_NOISE_S
            very_short += gap < 0.9 * delay
            short_across += gap < delay - GAP_NOISE_S and agent != next_agent
            overlaps += next_start < end
    rep = str(outcome.rep)
    if not outcome.log:
        return Figures(
            outcome.tool, rep, 0, 0, 0.0, 0.0, 0.0, outcome.wall, 0.0, 0, 0, 0, math.nan, 0, 0.0
        )
    first = min(e[2] for e in outcome.log)
    last = max(e[3] for e in outcome.log)
    span = last - first
    windows = [0] * (int(span // WINDOW_S) + 1)
    for entry in outcome.log:
        windows[int((entry[2] - first) // WINDOW_S)] += 1
    busy = sum(e[3] - e[2] for e in outcome.log)
    asked = sum(latency.get(e[0], 0.0) for e in outcome.log)
    return Figures(
        tool=outcome.tool,
        rep=rep,
        requests=len(outcome.log),
        hosts=len(by_host),
        host_bound=host_bound,
        slot_bound=busy / (concurrency * outcome.processes),
        span=span,
        wall=outcome.wall,
        latency_ratio=busy / asked if asked > 0 else 0.0,
        short_gaps=short,
        very_short=very_short,
        short_across=short_across,
        min_gap=min_gap,
        overlaps=overlaps,
        in_flight=busy / span if span > 0 else 0.0,
        rps=[n / WINDOW_S for n in windows],
        by_agent=dict(Counter(e[4] for e in outcome.log)),
    )


def median_row(rows: list[Figures]) -> Figures:
    """The median of every numeric column of one tool's rows."""
    values = {
        f.name: statistics.median(getattr(r, f.name) for r in rows)
        for f in fields(Figures)
        if f.name not in ("tool", "rep", "rps", "by_agent")
    }
    return replace(rows[0], rep="median", rps=[], by_agent={}, **values)


def table(rows: list[Figures], delay: float) -> None:
    print()
    print(
        f"{'tool':8} {'rep':>6} {'requests':>8} {'hosts':>6} {'host bound':>10} "
        f"{'slot bound':>10} {'span s':>7} {'wall s':>7} {'eff':>5} {'eff/wall':>8} "
        f"{'lat x':>5} {'gaps<' + format(delay, 'g') + 's':>9} {'gaps<90%':>9} {'min gap':>8} "
        f"{'overlaps':>8} {'in flight':>9}"
    )
    for f in rows:
        print(
            f"{f.tool:8} {f.rep:>6} {f.requests:>8.0f} {f.hosts:>6.0f} {f.host_bound:>10.1f} "
            f"{f.slot_bound:>10.1f} {f.span:>7.1f} {f.wall:>7.1f} {f.efficiency:>5.2f} "
            f"{f.efficiency_wall:>8.2f} {f.latency_ratio:>5.2f} {f.short_gaps:>9.0f} "
            f"{f.very_short:>9.0f} {f.min_gap:>8.3f} {f.overlaps:>8.0f} {f.in_flight:>9.1f}"
        )
    print(f"\nrequests/s by {WINDOW_S:g}-second window:")
    for f in rows:
        if f.rps:
            print(f"{f.tool:8} {f.rep:>6} " + " ".join(f"{r:.0f}" for r in f.rps))
    agents = [f for f in rows if len(f.by_agent) > 1]
    if agents:
        print("\nrequests by process (User-Agent):")
        for f in agents:
            counts = ", ".join(f"{a}: {n}" for a, n in sorted(f.by_agent.items()))
            print(f"{f.tool:8} {f.rep:>6} {counts}; short gaps across two: {f.short_across}")


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
    ap.add_argument("--reps", type=int, default=1, help="runs of each tool, interleaved")
    ap.add_argument("--join", type=int, default=1, help="crawler processes on the one run")
    ap.add_argument("--scrapy-venv", help="a virtualenv for Scrapy (made if missing, kept)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds a tool may run")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    # The server process (started by this script).
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--log", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    raise_open_files()
    if args.serve:
        log = asyncio.run(serve(args))
        Path(args.log).write_text(json.dumps(log), encoding="utf-8")
        return 0
    if args.pages < 1 or args.hosts < 1 or args.reps < 1 or args.join < 1:
        raise SystemExit("--hosts, --pages, --reps and --join must be at least 1")
    # SIGTERM, and SIGINT even when started in the background (which ignores it), unwind
    # through the `finally` blocks that stop the children.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
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
            f"delay {args.delay:g} s, concurrency {args.concurrency}, host concurrency 1"
            + (f", {args.join} crawler processes" if args.join > 1 else ""),
            flush=True,
        )
        results: dict[str, list[Figures]] = defaultdict(list)
        failed = False
        tools = ("crawler", "scrapy") if args.only == "both" else (args.only,)
        for rep in range(1, args.reps + 1):
            for tool in tools:
                make = crawler_launch if tool == "crawler" else scrapy_launch
                outcome = run_tool(tool, rep, make(args, seeds, rep), args, port)
                failed |= outcome.exit_code != 0
                results[tool].append(figures(outcome, args.delay, args.concurrency, latency))
        rows = []
        for tool in tools:
            rows += results[tool]
            if args.reps > 1:
                rows.append(median_row(results[tool]))
        table(rows, args.delay)
        return 1 if failed else 0
    finally:
        for data in sorted(Path(args.work).glob("crawler-data-*")):
            # `crawler db start` keeps its server running, and a crawl that was stopped may
            # leave its embedded server running.
            stop = [sys.executable, "-m", "crawler", "db", "stop", "--data-dir", str(data)]
            subprocess.run(stop, cwd=REPO_ROOT, capture_output=True, timeout=60, check=False)
        if args.keep:
            print(f"kept {args.work}")
        else:
            shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
