"""Benchmark ``crawler crawl`` against the no-database ceiling on a generated local site.

    python -m tests.benchmarks.bench_crawl --pages 10000 --reps 3 [--concurrency 32]
        [--sizes 10000,50000] [--only both|crawler|ceiling] [--server auto|nginx|aiohttp]
        [--database-url URL]

Run it from the root of a clone. It generates a site with ``tests/sitegen.py`` in a temporary
folder, serves it on 127.0.0.1 with a private nginx when ``nginx`` is installed (else with the
aiohttp static server of ``tests.sitegen --serve`` in a subprocess), and per repetition runs

(a) ``python -m crawler crawl BASE/index.html --name bench-N --data-dir FRESH --concurrency C
    --host-concurrency C --delay 0 --json``, which must print one JSON object on stdout
    (pages, fetched, errors, duration_s, pages_per_second, loop_lag_ms{p50,p99,max},
    db_statements, run_id, crawl, status; missing keys show as n/a), then reads the pages it
    stored with ``python -m crawler sql --data-dir D --csv "select url from pages ..."``;
(b) ``python -m tests.benchmarks.ceiling BASE/index.html --concurrency C``.

Both page sets are checked against the generator's manifest (robots.txt obeyed). Each child is
measured from here: wall time; CPU of the process with its Python children (the crawler's
parse processes, --parse-processes); CPU including every descendant (the embedded PostgreSQL
server is daemonised by pg_ctl; on Linux this process makes itself a child subreaper so that
server is reaped, and counted, here), each also shown by part (the loop's process, the parse
processes, the rest: PostgreSQL); peak RSS of the process with its parse processes, sampled
every 50 ms; and, on Linux, the share of the machine's CPU time the hypervisor stole during
the run (/proc/stat): where it is high, every figure of that run is slow, and only runs
interleaved with it compare. Every process started here is stopped by its pid, also on Ctrl-C, and
the temporary folder is removed unless --keep is given. The exit status is 1 when a run failed or
a page set differed from the manifest.

With ``--database-url URL`` each rep crawls into that running server instead, as a crawl of its
own (``--name bench-TOKEN-N-REP``; they are deleted at the end), so the command's time from
start to exit holds no initdb, no server start and no shutdown checkpoint: the framing of a
crawl "against a running database". The embedded server can be that server (``crawler db
start --data-dir D`` prints its URL). The server is no descendant of the crawl there, so
PostgreSQL's CPU is read off the machine's postgres processes (with the backends their
postmasters reaped) before and after each crawl; an idle second server adds little.

Environment variables starting with CRAWLER_ are not passed to the crawler, so it uses its
embedded database in a fresh data dir unless --database-url says otherwise, nor
PYTHONDONTWRITEBYTECODE: an installed package has its bytecode compiled, so the children may
write theirs (in __pycache__) and the crawler's start is timed as a user's is, not with its
modules compiled anew every run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import ctypes
import io
import json
import os
import resource
import selectors
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.benchmarks.bench_fixed import delete_crawls
from tests.sitegen import Manifest, generate

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_S = 0.05
SERVER_SETTLE_S = 0.5
PR_SET_CHILD_SUBREAPER = 36
PAGES_SQL = "select url from pages where status = 200 and content_type like 'text/html%'"
NGINX_CONF = """\
{user_line}
worker_processes {workers};
daemon on;
pid {state}/nginx.pid;
error_log {state}/error.log warn;
events {{ worker_connections 4096; multi_accept on; }}
http {{
  types {{
    text/html html htm; text/css css; application/xml xml; text/plain txt;
    application/pdf pdf; image/png png; image/svg+xml svg; image/gif gif;
    image/jpeg jpg jpeg; application/javascript js;
  }}
  default_type application/octet-stream;
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  client_body_temp_path {state}/client_body;
  proxy_temp_path {state}/proxy;
  fastcgi_temp_path {state}/fastcgi;
  uwsgi_temp_path {state}/uwsgi;
  scgi_temp_path {state}/scgi;
  server {{
    listen 127.0.0.1:{port};
    server_name 127.0.0.1;
    root {root};
    index index.html;
  }}
}}
"""


def say(*parts: object) -> None:
    print(*parts, flush=True)


# --- processes ------------------------------------------------------------------------------


def become_subreaper() -> bool:
    """Make orphaned descendants (pg_ctl's daemonised postmaster) children of this process."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


@dataclass(frozen=True)
class Pid:
    """A process we started, pinned by its start time so a reused pid is never signalled."""

    pid: int
    created: float

    @classmethod
    def of(cls, pid: int) -> Pid:
        return cls(pid, psutil.Process(pid).create_time())

    def alive(self) -> bool:
        try:
            proc = psutil.Process(self.pid)
            if proc.create_time() != self.created:
                return False
            if proc.status() == psutil.STATUS_ZOMBIE:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(self.pid, os.WNOHANG)  # ours, as subreaper or parent
                return False
            return True
        except psutil.NoSuchProcess:
            return False

    def stop(self, steps: Sequence[tuple[signal.Signals, float]]) -> bool:
        """Send each signal in turn, waiting up to its seconds for the process to end."""
        for sig, wait_s in steps:
            if not self.alive():
                return True
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                return True
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                if not self.alive():
                    return True
                time.sleep(0.05)
        return not self.alive()


PYTHON_STOP = ((signal.SIGINT, 30.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0))
POSTGRES_STOP = ((signal.SIGINT, 20.0), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0))
NGINX_STOP = ((signal.SIGQUIT, 10.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0))


def child_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CRAWLER_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def orphans(keep: set[int]) -> list[psutil.Process]:
    """Our children other than ``keep``, after reaping those that have exited."""
    alive = []
    for proc in psutil.Process().children():
        if proc.pid in keep:
            continue
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(proc.pid, 0)
                continue
        except psutil.NoSuchProcess:
            continue
        alive.append(proc)
    return alive


def settle_descendants(keep: set[int], data_dir: Path | None, grace_s: float = 10.0) -> list[str]:
    """Reap what a finished child left behind; stop (by pid) and report what still runs."""
    deadline = time.monotonic() + grace_s
    left = orphans(keep)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = orphans(keep)
    pids = {p.pid: p for p in left}
    if data_dir is not None and data_dir.exists():  # without subreaper: find it by its pid file
        for pidfile in data_dir.rglob("postmaster.pid"):
            with contextlib.suppress(OSError, ValueError, IndexError, psutil.Error):
                pid = int(pidfile.read_text().split()[0])
                if psutil.pid_exists(pid):
                    pids.setdefault(pid, psutil.Process(pid))
    report = []
    for pid, proc in pids.items():
        try:
            what = " ".join(proc.cmdline()[:3]) or proc.name()
            pinned = Pid(pid, proc.create_time())
        except psutil.Error:
            continue
        stopped = pinned.stop(POSTGRES_STOP)
        report.append(f"pid {pid} ({what}) {'stopped' if stopped else 'STILL RUNNING'}")
    orphans(keep)
    return report


@dataclass
class Measured:
    """One child process as seen from here."""

    cmd: list[str]
    returncode: int | None = None
    wall_s: float = 0.0
    cpu_self_s: float | None = None  # the process alone
    cpu_tree_s: float | None = None  # + descendants it reaped itself (initdb, pg_ctl, ...)
    cpu_total_s: float | None = None  # + orphans reaped here (the PostgreSQL server)
    cpu_helpers_s: float | None = None  # its Python children (parse processes), included above
    peak_rss_mb: float | None = None  # the process alone, sampled
    steal_pct: float | None = None  # machine-wide CPU time stolen by the hypervisor, in %
    stdout: str = ""
    stderr_tail: str = ""
    left_behind: list[str] = field(default_factory=list)


def helpers(ps: psutil.Process, cmdline: list[str], cpu_seen: dict[int, float]) -> Iterator[int]:
    """The RSS of each Python child of ``ps`` (the crawler's parse processes; the embedded
    PostgreSQL is not its child), noting each one's CPU in ``cpu_seen``. A child still
    running the parent's own ``cmdline`` is a fork that has not exec'd yet: its pages are
    the parent's, already counted (sampled at that instant, it once added 64 MB)."""
    for child in ps.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.name().startswith("python") and child.cmdline() != cmdline:
                cpu = child.cpu_times()
                cpu_seen[child.pid] = cpu.user + cpu.system
                yield child.memory_info().rss


def cpu_jiffies() -> tuple[int, int] | None:
    """(stolen, total) CPU time of the machine so far, in clock ticks (Linux), else None."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user]
    return (fields[7], sum(fields[:8])) if len(fields) >= 8 else None


def steal_between(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    if before is None or after is None or after[1] <= before[1]:
        return None
    return 100 * (after[0] - before[0]) / (after[1] - before[1])


def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL server process of this machine so far, with those of
    the backends their postmasters have reaped: read before and after a crawl against a
    running server (``--database-url``), the difference is what the crawl cost the server
    (and any other server's idle work meanwhile)."""
    total = 0.0
    for proc in psutil.process_iter(["name", "cpu_times"]):
        times = proc.info["cpu_times"]
        if proc.info["name"] in ("postgres", "postmaster") and times is not None:
            total += times.user + times.system + times.children_user + times.children_system
    return total


def run_measured(
    cmd: list[str],
    *,
    logs: Path,
    timeout_s: float,
    keep: set[int],
    subreaper: bool,
    data_dir: Path | None = None,
) -> Measured:
    """Run ``cmd`` to completion, sampling its RSS and CPU; bounded by ``timeout_s``."""
    m = Measured(cmd)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    jiffies = cpu_jiffies()
    out_path, err_path = logs.with_suffix(".out"), logs.with_suffix(".err")
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=REPO_ROOT,
            env=child_env(),
            start_new_session=True,  # Ctrl-C reaches us only; we stop the child by pid
        )
    exited = threading.Event()
    exit_at = [0.0]
    reaped: list[tuple[int, resource.struct_rusage]] = []  # where waitid is missing

    def wait_for_exit() -> None:
        try:
            if hasattr(os, "waitid"):  # leave the zombie: its final CPU is still readable
                os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            else:
                _, status, usage = os.wait4(proc.pid, 0)
                reaped.append((status, usage))
        except OSError:
            pass
        finally:
            exit_at[0] = time.perf_counter()
            exited.set()

    threading.Thread(target=wait_for_exit, daemon=True).start()
    ps = psutil.Process(proc.pid)
    cmdline = ps.cmdline()
    peak = 0
    helper_cpu: dict[int, float] = {}  # the crawler's parse processes, by pid: last CPU seen
    deadline = started + timeout_s
    try:
        while not exited.wait(SAMPLE_S):
            with contextlib.suppress(psutil.Error):
                rss = ps.memory_info().rss + sum(helpers(ps, cmdline, helper_cpu))
                peak = max(peak, rss)
                cpu = ps.cpu_times()
                m.cpu_self_s = cpu.user + cpu.system + sum(helper_cpu.values())
            if time.perf_counter() > deadline:
                say(f"  timeout after {timeout_s:.0f}s: stopping pid {proc.pid}")
                break
        if exited.is_set():
            if not reaped:
                with contextlib.suppress(psutil.Error):  # a zombie still shows its final CPU
                    cpu = ps.cpu_times()
                    m.cpu_self_s = cpu.user + cpu.system + sum(helper_cpu.values())
                _, status, usage = os.wait4(proc.pid, 0)
                reaped.append((status, usage))
            status, usage = reaped[0]
            proc.returncode = os.waitstatus_to_exitcode(status)
            m.returncode = proc.returncode
            m.wall_s = exit_at[0] - started
            m.cpu_tree_s = usage.ru_utime + usage.ru_stime
            m.cpu_helpers_s = sum(helper_cpu.values())
            m.steal_pct = steal_between(jiffies, cpu_jiffies())
    finally:
        if m.returncode is None:  # timeout, Ctrl-C or an error here: stop it by its pid
            Pid(proc.pid, ps.create_time()).stop(PYTHON_STOP)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        m.left_behind = settle_descendants(keep, data_dir)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if subreaper and m.returncode is not None:
        m.cpu_total_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    m.peak_rss_mb = peak / 2**20 if peak else None
    m.stdout = out_path.read_text(errors="replace")
    m.stderr_tail = "\n".join(err_path.read_text(errors="replace").splitlines()[-15:])
    return m


# --- servers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    kind: str
    base_url: str
    pid: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        time.sleep(0.05)
    return False


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    for folder in ("/usr/sbin", "/sbin", "/usr/local/sbin"):
        candidate = Path(folder) / "nginx"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def nginx_version(nginx: str) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        r = subprocess.run([nginx, "-v"], capture_output=True, text=True, timeout=10)
        return (r.stderr or r.stdout).strip().rsplit("/", 1)[-1]
    return "?"


@contextlib.contextmanager
def nginx_server(nginx: str, root: Path, state: Path, workers: int) -> Iterator[Server]:
    """A private, daemonised nginx for ``root``; stopped by the pid in its pid file."""
    state.mkdir(parents=True, exist_ok=True)
    pidfile = state / "nginx.pid"
    problem = ""
    pinned: Pid | None = None
    port = 0
    for _attempt in range(3):  # a port picked as free can be taken before nginx binds it
        port = free_port()
        conf = NGINX_CONF.format(
            user_line="user root;" if os.geteuid() == 0 else "",  # workers must read 0700 dirs
            workers=workers,
            state=state,
            port=port,
            root=root.resolve(),
        )
        (state / "nginx.conf").write_text(conf)
        pidfile.unlink(missing_ok=True)
        with (state / "launch.log").open("wb") as log:
            r = subprocess.run(
                [nginx, "-p", str(state), "-e", str(state / "error.log"), "-c", "nginx.conf"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                timeout=30,
            )
        deadline = time.monotonic() + 5
        while r.returncode == 0 and not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(OSError, ValueError, psutil.Error):
            pinned = Pid.of(int(pidfile.read_text().strip()))
        if pinned is not None and wait_port(port, 5):
            break
        if pinned is not None:
            pinned.stop(NGINX_STOP)
            pinned = None
        problem = (state / "launch.log").read_text(errors="replace")
        with contextlib.suppress(OSError):
            problem += (state / "error.log").read_text(errors="replace")
    if pinned is None:
        raise RuntimeError(f"nginx did not start: {problem.strip()[-2000:]}")
    try:
        yield Server("nginx " + nginx_version(nginx), f"http://127.0.0.1:{port}", pinned.pid)
    finally:
        if not pinned.stop(NGINX_STOP):
            say(f"warning: nginx pid {pinned.pid} did not stop")


@contextlib.contextmanager
def aiohttp_server(root: Path, logs: Path) -> Iterator[Server]:
    """``python -m tests.sitegen --serve ROOT`` in a subprocess; it reports its port."""
    with logs.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.sitegen", "--serve", str(root), "--port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=REPO_ROOT,
            env=child_env(),
            start_new_session=True,
        )
    pinned = Pid.of(proc.pid)
    try:
        assert proc.stdout is not None
        line = b""
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + 30
            while b"\n" not in line and time.monotonic() < deadline and proc.poll() is None:
                if sel.select(timeout=0.2):
                    chunk = os.read(proc.stdout.fileno(), 4096)
                    if not chunk:
                        break
                    line += chunk
        base_url = line.decode().strip()
        if not base_url.startswith("http://"):
            raise RuntimeError(f"aiohttp server did not start: {logs.read_text()[-2000:]}")
        yield Server("aiohttp (subprocess)", base_url, proc.pid)
    finally:
        pinned.stop(((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)))
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


@dataclass(frozen=True)
class Site:
    pages: int
    manifest: Manifest
    server: Server
    root: Path
    generate_s: float


@contextlib.contextmanager
def hosted_site(pages: int, seed: int, work: Path, args: argparse.Namespace) -> Iterator[Site]:
    """Start a server on an empty folder (so the port is known), then generate the site into it."""
    root = work / f"site-{pages}"
    root.mkdir()
    nginx = find_nginx() if args.server in ("auto", "nginx") else None
    if args.server == "nginx" and nginx is None:
        raise SystemExit("--server nginx: nginx is not installed (Debian: apt-get install nginx)")
    with contextlib.ExitStack() as stack:
        if nginx is not None:
            state = work / f"nginx-{pages}"
            server = stack.enter_context(nginx_server(nginx, root, state, args.nginx_workers))
        else:
            server = stack.enter_context(aiohttp_server(root, work / f"aiohttp-{pages}.log"))
        started = time.perf_counter()
        manifest = generate(root, pages, server.base_url, seed)
        yield Site(pages, manifest, server, root, time.perf_counter() - started)


# --- one run of each side -------------------------------------------------------------------


@dataclass
class RunResult:
    tool: str  # "crawler" or "ceiling"
    measured: Measured
    report: dict[str, Any]  # the JSON object the tool printed ({} if none)
    check: str  # "OK (...)", "DIFF: ...", "not checked", "failed"
    check_ok: bool | None

    @property
    def ok(self) -> bool:
        return self.measured.returncode == 0 and bool(self.report)

    def fetched(self, fallback: int) -> int:
        for key in ("fetched", "pages"):
            value = self.report.get(key)
            if isinstance(value, int) and value > 0:
                return value
        return fallback


def last_json_object(text: str) -> dict[str, Any]:
    """The JSON object a tool printed: all of stdout, or its last line that parses as one."""
    with contextlib.suppress(ValueError):
        doc = json.loads(text)
        if isinstance(doc, dict):
            return doc
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if isinstance(doc, dict):
                    return doc
    return {}


def compare(found: set[str], expected: frozenset[str]) -> tuple[bool, str]:
    missing = sorted(expected - found)
    extra = sorted(found - expected)
    if not missing and not extra:
        return True, f"OK ({len(found)} URLs)"
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing, e.g. {', '.join(missing[:3])}")
    if extra:
        parts.append(f"{len(extra)} unexpected, e.g. {', '.join(extra[:3])}")
    return False, "DIFF: " + "; ".join(parts)


def crawler_urls(
    where: list[str], name: str, logs: Path, keep: set[int], data_dir: Path | None
) -> set[str] | str:
    """The URLs the crawl `name` stored as 200 text/html, via ``crawler sql`` with the
    database options `where`; an error text if not."""
    sql = PAGES_SQL + f" and crawl_id = (select id from crawls where name = '{name}')"
    cmd = [sys.executable, "-m", "crawler", "sql", *where, "--csv", sql]
    try:
        with logs.with_suffix(".sql.err").open("wb") as err:
            r = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=REPO_ROOT,
                env=child_env(),
                timeout=300,
                start_new_session=True,
            )
    except subprocess.TimeoutExpired:
        return "crawler sql timed out"
    finally:
        settle_descendants(keep, data_dir)
    if r.returncode != 0:
        tail = logs.with_suffix(".sql.err").read_text(errors="replace").strip()[-500:]
        return f"crawler sql failed (exit {r.returncode}): {tail}"
    rows = list(csv.reader(io.StringIO(r.stdout.decode(errors="replace"))))
    urls = {row[0].strip() for row in rows if row and row[0].strip()}
    urls.discard("url")  # the header row
    return urls


def run_crawler(
    site: Site, rep: int, work: Path, args: argparse.Namespace, keep: set[int]
) -> RunResult:
    data_dir: Path | None = None
    if args.database_url is None:  # a new embedded server in a new data dir, every rep
        data_dir = work / f"crawler-{site.pages}-{rep}"
        where = ["--data-dir", str(data_dir)]
        name = f"bench-{site.pages}"
    else:  # a crawl of its own in a running server's database
        where = ["--database-url", args.database_url]
        name = f"{args.crawl_prefix}{site.pages}-{rep}"
    cmd = [
        sys.executable, "-m", "crawler", "crawl", site.manifest.start_url,
        "--name", name,
        *where,
        "--concurrency", str(args.concurrency),
        "--host-concurrency", str(args.concurrency),
        "--delay", "0",
        "--json",
        *shlex.split(args.crawler_args),
    ]  # fmt: skip
    logs = work / f"crawler-{site.pages}-{rep}.log"
    server_cpu = postgres_cpu() if data_dir is None else None
    m = run_measured(
        cmd, logs=logs, timeout_s=args.timeout, keep=keep, subreaper=args.subreaper,
        data_dir=data_dir,
    )  # fmt: skip
    if server_cpu is not None and m.returncode is not None:
        # The running server is no descendant of the crawl: its CPU is read off its processes.
        time.sleep(SERVER_SETTLE_S)  # the crawl's backends exit, and are reaped
        m.cpu_total_s = (m.cpu_tree_s or 0.0) + postgres_cpu() - server_cpu
    report = last_json_object(m.stdout)
    check, check_ok = "not checked", None
    if m.returncode == 0 and not args.no_check:
        found = crawler_urls(where, name, logs, keep, data_dir)
        if isinstance(found, str):
            check, check_ok = found, False
        else:
            check_ok, check = compare(found, site.manifest.robots_html_200_urls)
    elif m.returncode != 0:
        check, check_ok = "failed", False
    if data_dir is not None and not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    return RunResult("crawler", m, report, check, check_ok)


def run_ceiling(
    site: Site, rep: int, work: Path, args: argparse.Namespace, keep: set[int]
) -> RunResult:
    urls_file = work / f"ceiling-{site.pages}-{rep}.urls.json"
    cmd = [
        sys.executable, "-m", "tests.benchmarks.ceiling", site.manifest.start_url,
        "--concurrency", str(args.concurrency),
        "--timeout", str(args.timeout),
        "--urls-out", str(urls_file),
    ]  # fmt: skip
    m = run_measured(
        cmd, logs=work / f"ceiling-{site.pages}-{rep}.log", timeout_s=args.timeout + 30,
        keep=keep, subreaper=args.subreaper,
    )  # fmt: skip
    report = last_json_object(m.stdout)
    check, check_ok = "failed", False
    if m.returncode == 0 and urls_file.exists():
        sets = json.loads(urls_file.read_text())
        mf = site.manifest
        oks = [
            compare(set(sets["html_200"]), mf.robots_html_200_urls),
            compare(set(sets["not_found"]), mf.robots_not_found_urls),
            compare(set(sets["assets"]), mf.robots_asset_urls),
        ]
        check_ok = all(ok for ok, _ in oks)
        check = oks[0][1] if check_ok else "; ".join(text for ok, text in oks if not ok)
    return RunResult("ceiling", m, report, check, check_ok)


# --- reporting ------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def number(report: dict[str, Any], *keys: str) -> float | None:
    value: Any = report
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def per_thousand(cpu: float | None, pages: int) -> float | None:
    return cpu / pages * 1000 if cpu is not None and pages > 0 else None


@dataclass(frozen=True)
class Row:
    label: str
    value: Callable[[RunResult, int], float | None]
    digits: int = 1
    ratio: bool = True


def own_pages_per_second(r: RunResult, expected: int) -> float | None:
    return number(r.report, "pages_per_second")


def wall_pages_per_second(r: RunResult, expected: int) -> float | None:
    return r.fetched(expected) / r.measured.wall_s if r.measured.wall_s else None


def wall_seconds(r: RunResult, expected: int) -> float | None:
    return r.measured.wall_s or None


def cpu_process(r: RunResult, expected: int) -> float | None:
    return per_thousand(r.measured.cpu_self_s, r.fetched(expected))


def cpu_all(r: RunResult, expected: int) -> float | None:
    return per_thousand(r.measured.cpu_total_s, r.fetched(expected))


def _minus(whole: float | None, part: float | None) -> float | None:
    return None if whole is None or part is None else whole - part


def cpu_loop(r: RunResult, expected: int) -> float | None:
    m = r.measured
    return per_thousand(_minus(m.cpu_self_s, m.cpu_helpers_s), r.fetched(expected))


def cpu_parse(r: RunResult, expected: int) -> float | None:
    return per_thousand(r.measured.cpu_helpers_s, r.fetched(expected))


def cpu_rest(r: RunResult, expected: int) -> float | None:
    m = r.measured
    return per_thousand(_minus(m.cpu_total_s, m.cpu_self_s), r.fetched(expected))


def steal(r: RunResult, expected: int) -> float | None:
    return r.measured.steal_pct


def peak_rss(r: RunResult, expected: int) -> float | None:
    return r.measured.peak_rss_mb


def lag(key: str) -> Callable[[RunResult, int], float | None]:
    return lambda r, expected: number(r.report, "loop_lag_ms", key)


def statements_per_page(r: RunResult, expected: int) -> float | None:
    statements = number(r.report, "db_statements")
    return statements / r.fetched(expected) if statements is not None else None


def errors(r: RunResult, expected: int) -> float | None:
    return number(r.report, "errors")


ROWS = (
    Row("pages/s (own clock)", own_pages_per_second),
    Row("pages/s (wall, incl. startup)", wall_pages_per_second),
    Row("wall s", wall_seconds, 2),
    Row("CPU s / 1,000 pages (crawler processes)", cpu_process, 2),
    Row("  the loop's process", cpu_loop, 2),
    Row("  parse processes", cpu_parse, 2, ratio=False),
    Row("CPU s / 1,000 pages (all, incl. PostgreSQL)", cpu_all, 2),
    Row("  PostgreSQL (and initdb, pg_ctl)", cpu_rest, 2, ratio=False),
    Row("peak RSS MB (crawler processes)", peak_rss),
    Row("loop lag p50 ms", lag("p50"), 2),
    Row("loop lag p99 ms", lag("p99"), 2),
    Row("loop lag max ms", lag("max"), 2),
    Row("DB statements / page", statements_per_page, 2, ratio=False),
    Row("errors", errors, 0, ratio=False),
    Row("CPU stolen by the hypervisor % (machine)", steal, 1, ratio=False),
)


def print_table(site: Site, results: dict[str, list[RunResult]]) -> dict[str, dict[str, Any]]:
    mf = site.manifest
    expected = (
        len(mf.robots_html_200_urls) + len(mf.robots_not_found_urls) + len(mf.robots_asset_urls)
    )
    tools = [t for t in ("crawler", "ceiling") if results.get(t)]
    header = f"{'median of ' + str(max(len(results[t]) for t in tools)) + ' reps':44}"
    names = {"crawler": "crawler (a)", "ceiling": "ceiling (b)"}
    header += "".join(f"{names[t]:>16}" for t in tools)
    both = len(tools) == 2
    if both:
        header += f"{'a/b':>10}"
    say("\n" + header)
    say("-" * len(header))
    summary: dict[str, dict[str, Any]] = {t: {} for t in tools}
    done = {t: [r for r in results[t] if r.measured.returncode == 0] for t in tools}
    for row in ROWS:
        meds = {t: median([row.value(r, expected) for r in done[t]]) for t in tools}
        line = f"{row.label:44}" + "".join(f"{fmt(meds[t], row.digits):>16}" for t in tools)
        if both:
            a, b = meds["crawler"], meds["ceiling"]
            ratio = a / b if row.ratio and a is not None and b else None
            line += f"{fmt(ratio, 2) if row.ratio else '':>10}"
        say(line)
        for t in tools:
            summary[t][row.label] = meds[t]
    line = f"{'page set = manifest (robots obeyed)':44}"
    for t in tools:
        good = sum(1 for r in results[t] if r.check_ok)
        line += f"{f'{good}/{len(results[t])} OK':>16}"
        summary[t]["checks_ok"] = good
    say(line)
    for t in tools:
        for i, r in enumerate(results[t], 1):
            if not r.check_ok:
                say(f"  {t} rep {i}: {r.check}")
    return summary


def describe(r: RunResult, expected: int) -> str:
    m = r.measured
    if m.returncode != 0:
        why = "timed out" if m.returncode is None else f"exit {m.returncode}"
        return f"FAILED ({why})\n{indent(m.stderr_tail)}"
    pps = number(r.report, "pages_per_second")
    text = (
        f"{fmt(pps)} pages/s, wall {m.wall_s:.2f}s, CPU {fmt(m.cpu_self_s, 2)}s process / "
        f"{fmt(m.cpu_total_s, 2)}s all, peak RSS {fmt(m.peak_rss_mb)} MB, "
        f"steal {fmt(m.steal_pct)}%, "
        f"fetched {r.fetched(expected)}; page set {r.check}"
    )
    if not r.report:
        text += "\n  (no JSON object on stdout)"
    for item in m.left_behind:
        text += f"\n  warning: left running after exit: {item}"
    return text


def indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines()) or "    (no stderr)"


# --- main -----------------------------------------------------------------------------------


def raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_site(
    site: Site, reps: int, work: Path, args: argparse.Namespace
) -> dict[str, list[RunResult]]:
    keep = {site.server.pid}
    mf = site.manifest
    expected = (
        len(mf.robots_html_200_urls) + len(mf.robots_not_found_urls) + len(mf.robots_asset_urls)
    )
    results: dict[str, list[RunResult]] = {"crawler": [], "ceiling": []}
    for rep in range(1, reps + 1):
        if args.only in ("both", "crawler"):
            r = run_crawler(site, rep, work, args, keep)
            results["crawler"].append(r)
            say(f"  rep {rep} crawler: {describe(r, expected)}")
        if args.only in ("both", "ceiling"):
            r = run_ceiling(site, rep, work, args, keep)
            results["ceiling"].append(r)
            say(f"  rep {rep} ceiling: {describe(r, expected)}")
    return results


def site_banner(site: Site, args: argparse.Namespace) -> str:
    mf = site.manifest
    return (
        f"site: {mf.pages:,} pages generated in {site.generate_s:.1f}s, "
        f"{mf.html_bytes_total / 2**20:,.0f} MB; a crawler obeying robots.txt must fetch "
        f"{len(mf.robots_html_200_urls):,} HTML URLs (200), {len(mf.robots_not_found_urls)} "
        f"404s, {len(mf.robots_asset_urls)} assets\n"
        f"served by {site.server.kind} at {site.server.base_url}; concurrency "
        f"{args.concurrency}; {os.cpu_count()} CPUs"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.bench_crawl",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--pages", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--sizes", default="", help="comma-separated site sizes for the RSS check")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", choices=("both", "crawler", "ceiling"), default="both")
    ap.add_argument("--server", choices=("auto", "nginx", "aiohttp"), default="auto")
    ap.add_argument("--nginx-workers", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per crawl")
    ap.add_argument("--crawler-args", default="", help="extra arguments for `crawler crawl`")
    ap.add_argument("--no-check", action="store_true", help="skip reading the crawler's pages")
    ap.add_argument("--workdir", type=Path, default=None, help="parent of the temporary folder")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--json-out", type=Path, help="write the medians as JSON here")
    ap.add_argument(
        "--database-url",
        help="crawl into this running server instead (each rep a crawl of its own, deleted at "
        "the end), not into a new embedded server in a new data dir",
    )
    args = ap.parse_args(argv)
    args.crawl_prefix = f"bench-{uuid.uuid4().hex[:8]}-"
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.reps < 1 or args.pages < 20 or any(s < 20 for s in sizes):
        ap.error("--reps must be >= 1 and site sizes >= 20")

    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    args.subreaper = become_subreaper()
    work = Path(tempfile.mkdtemp(prefix="crawler-bench-", dir=args.workdir))
    work.chmod(0o755)  # as root, the embedded PostgreSQL runs as another user that must enter it
    say(f"work folder: {work}{' (kept)' if args.keep else ''}")
    if not args.subreaper:
        say("note: not a child subreaper here; CPU 'all' excludes the PostgreSQL server")
    failed = False
    out: dict[str, Any] = {"pages": args.pages, "concurrency": args.concurrency, "reps": args.reps}
    try:
        with hosted_site(args.pages, args.seed, work, args) as site:
            say(site_banner(site, args))
            results = run_site(site, args.reps, work, args)
            out["medians"] = print_table(site, results)
            out["manifest"] = site.manifest.counts()
            out["server"] = site.server.kind
            runs = [r for rs in results.values() for r in rs]
            failed = any(not r.ok or r.check_ok is False for r in runs)
        if not args.keep:
            shutil.rmtree(work / f"site-{args.pages}", ignore_errors=True)
        by_size: dict[int, dict[str, list[RunResult]]] = {}
        for size in sizes:
            if size == args.pages:
                by_size[size] = results
                continue
            with hosted_site(size, args.seed, work, args) as site:
                say("\n" + site_banner(site, args))
                by_size[size] = run_site(site, 1, work, args)
                runs = [r for rs in by_size[size].values() for r in rs]
                failed = failed or any(not r.ok or r.check_ok is False for r in runs)
            if not args.keep:
                shutil.rmtree(work / f"site-{size}", ignore_errors=True)
        if by_size:
            out["sizes"] = print_sizes(by_size)
    except KeyboardInterrupt:
        say("\ninterrupted: stopped the processes started here")
        return 130
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        if args.database_url is not None:
            with contextlib.suppress(Exception):
                asyncio.run(delete_crawls(args.database_url, args.crawl_prefix))
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(out, indent=1, default=str))
    return 1 if failed else 0


def print_sizes(by_size: dict[int, dict[str, list[RunResult]]]) -> dict[int, Any]:
    say("\npeak RSS by site size (RSS flat in site size?)")
    header = f"{'pages':>10}" + "".join(
        f"{t + ' RSS MB':>20}{t + ' pages/s':>20}" for t in ("crawler", "ceiling")
    )
    say(header)
    say("-" * len(header))
    out: dict[int, Any] = {}
    for size in sorted(by_size):
        line = f"{size:>10,}"
        out[size] = {}
        for tool in ("crawler", "ceiling"):
            runs = [r for r in by_size[size].get(tool, []) if r.measured.returncode == 0]
            rss = median([r.measured.peak_rss_mb for r in runs])
            pps = median([number(r.report, "pages_per_second") for r in runs])
            line += f"{fmt(rss):>20}{fmt(pps):>20}"
            out[size][tool] = {"peak_rss_mb": rss, "pages_per_second": pps}
        say(line)
    return out


if __name__ == "__main__":
    sys.exit(main())
