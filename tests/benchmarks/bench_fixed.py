"""Benchmark the fixed cost of ``crawler crawl``: start-up and shut-down around a one-page crawl.

    python -m tests.benchmarks.bench_fixed [--reps 7] [--database-url URL] [--baseline DIR]

Run it from the root of a clone. It serves one page (its robots.txt a 404) with aiohttp on
127.0.0.1 in a thread of its own, and per repetition runs

(a) ``python -m crawler crawl URL --name fixed-TAG-N --json --quiet --delay 0``,
(b) the same through the installed ``crawler`` console script,
(c) the same under a probe (``python tests/benchmarks/bench_fixed.py probe``) that marks the
    time at its phases: importing crawler.cli, the command's start of its event loop (after
    parsing its arguments, importing the crawl's modules, building Settings), opening the
    database (connect, schema check or migration), the pool's start and end, closing the
    database, the loop's end, atexit and the exit (the probe's own imports, asyncio among
    them, count in its start-up, not in importing crawler.cli),

each with ``CRAWLER_DATABASE_URL`` set to a running server (default
postgresql://postgres@127.0.0.1:5432/test; the first, unmeasured run migrates it if it must).
Each child is timed from here, from its start to its exit, with its CPU time (user and
system, its children's included); its JSON gives the crawl's own time (``duration_s``: the
pool's run), and the fixed cost is the difference. It also times
``python -c 'import crawler.cli'`` and ``python -c 'import crawler.run'`` against a bare
``python -c pass``. Medians of the repetitions are printed; the exit status is 1 when a run
failed or the median fixed cost of (a) is above --max-fixed.

With ``--baseline DIR`` (a tree of another version, say ``git archive main | tar -x -C DIR``)
every measurement is also made with ``PYTHONPATH=DIR``, interleaved with this tree's, so the two
compare on a machine whose load changes (a clone keeps migrations/ outside the package: the
installed crawler.migrations serves both). Other environment variables starting with CRAWLER_
are not passed on, nor PYTHONDONTWRITEBYTECODE: an installed package has its bytecode
compiled, so the children may write theirs (in __pycache__) on the unmeasured first run. The
crawls made here are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test"
PAGE = "<html><head><title>fixed</title></head><body><p>One page.</p></body></html>"
TIMEOUT_S = 120.0
# The probe's marks, in order; the phases are the gaps between consecutive marks.
MARKS = (
    "spawn",
    "probe",
    "cli imported",
    "loop start",
    "db open",
    "db ready",
    "pool start",
    "pool end",
    "db closing",
    "db closed",
    "loop end",
    "atexit",
    "exit",
)
PHASES = {
    "probe": "interpreter start-up",
    "cli imported": "import crawler.cli",
    "loop start": "arguments; the crawl's imports; settings",
    "db open": "the event loop's start",
    "db ready": "database: connect, schema check",
    "pool start": "crawl, lock, run, fetcher, parser",
    "pool end": "the pool's run (duration_s)",
    "db closing": "run's end: totals, summary",
    "db closed": "closing the database",
    "loop end": "the event loop's end",
    "atexit": "output, exit code",
    "exit": "interpreter shut-down",
}


@contextlib.contextmanager
def serve_one_page() -> Iterator[str]:
    """One HTML page at /, nothing else (robots.txt: 404), on 127.0.0.1 in a thread."""
    from aiohttp import web

    loop = asyncio.new_event_loop()
    ready: list[str] = []

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        ready.append(f"http://127.0.0.1:{port}/")

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    try:
        yield ready[0]
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@dataclass
class Series:
    """The measurements of one command on one tree, a repetition each."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    crawl: list[float] = field(default_factory=list)
    phases: dict[str, list[float]] = field(default_factory=dict)
    failures: int = 0

    @property
    def fixed(self) -> list[float]:
        return [w - c for w, c in zip(self.wall, self.crawl, strict=True)]


def _env(database_url: str, tree: Path | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CRAWLER_") and k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")
    }
    env["CRAWLER_DATABASE_URL"] = database_url
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    return env


def _script() -> str:
    """The `crawler` console script installed next to this Python."""
    beside = Path(sys.executable).parent / "crawler"
    found = str(beside) if beside.exists() else shutil.which("crawler")
    if found is None:
        raise SystemExit("no `crawler` console script: pip install -e . first")
    return found


@dataclass(frozen=True)
class Ran:
    code: int
    started: float  # wall clock, at its start and at its exit
    ended: float
    cpu: float  # user and system time of the process and its children
    out: str
    err: str


def _run(cmd: Sequence[str], env: dict[str, str], cwd: Path) -> Ran:
    """Run `cmd` in `cwd`, an empty folder (so that PYTHONPATH picks the tree)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S)
    ended = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Ran(done.returncode, started, ended, cpu, done.stdout, done.stderr)


def crawl_once(
    kind: str, url: str, name: str, env: dict[str, str], series: Series, marks: Path
) -> None:
    args = ["crawl", url, "--name", name, "--json", "--quiet", "--delay", "0"]
    if kind == "module":
        cmd = [sys.executable, "-m", "crawler", *args]
    elif kind == "script":
        cmd = [_script(), *args]
    else:
        marks.unlink(missing_ok=True)
        cmd = [sys.executable, __file__, "probe", str(marks), *args]
    ran = _run(cmd, env, marks.parent)
    try:
        lines = ran.out.strip().splitlines()
        if not lines:
            raise ValueError(f"exit code {ran.code}, no summary on stdout")
        summary = json.loads(lines[-1])
        if ran.code != 0 or summary.get("pages") != 1:
            raise ValueError(f"exit code {ran.code}, pages {summary.get('pages')}")
    except ValueError as exc:
        series.failures += 1
        print(f"  {kind} {name} failed: {exc}: {ran.err.strip()[-400:]}", file=sys.stderr)
        return
    series.wall.append(ran.ended - ran.started)
    series.cpu.append(ran.cpu)
    series.crawl.append(float(summary["duration_s"]))
    if kind == "probe":
        at = {"spawn": ran.started, **json.loads(marks.read_text()), "exit": ran.ended}
        for before, after in itertools.pairwise(MARKS):
            if before in at and after in at:
                series.phases.setdefault(after, []).append(at[after] - at[before])


def import_once(code: str, env: dict[str, str], cwd: Path) -> float:
    ran = _run([sys.executable, "-c", code], env, cwd)
    if ran.code != 0:
        raise SystemExit(f"python -c {code!r} failed: {ran.err}")
    return ran.ended - ran.started


async def delete_crawls(database_url: str, prefix: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        deleted = await conn.execute("DELETE FROM crawls WHERE name LIKE $1", prefix + "%")
        return int(deleted.split()[-1])
    finally:
        await conn.close()


def _median_ms(values: Sequence[float]) -> str:
    return f"{statistics.median(values) * 1000:7.0f}" if values else "    n/a"


def report(trees: dict[str, Path | None], results: dict[tuple[str, str], Series]) -> None:
    kinds = ("module", "script", "probe")
    commands = {
        "module": "python -m crawler crawl",
        "script": "crawler crawl (console script)",
        "probe": "python -m crawler crawl, probed",
    }
    print(
        "\nmedians, ms: wall (start to exit), crawl (duration_s), fixed (the difference),"
        " cpu (user + system)"
    )
    for kind in kinds:
        for tree in trees:
            s = results[(tree, kind)]
            print(
                f"  {commands[kind]:<33} {tree:<9} wall {_median_ms(s.wall)}  crawl"
                f" {_median_ms(s.crawl)}  fixed {_median_ms(s.fixed)}  cpu {_median_ms(s.cpu)}"
                + (f"  ({s.failures} failed)" if s.failures else "")
            )
    print("\nthe probed runs by phase, medians, ms:")
    print(f"  {'':<40}" + "".join(f"{tree:>10}" for tree in trees))
    for mark in MARKS[1:]:
        row = "".join(
            f"{_median_ms(results[(t, 'probe')].phases.get(mark, [])):>10}" for t in trees
        )
        print(f"  {PHASES[mark]:<40}{row}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--baseline", type=Path, help="a tree of another version to compare")
    parser.add_argument("--max-fixed", type=float, default=0.5, help="seconds")
    args = parser.parse_args(argv)

    trees: dict[str, Path | None] = {"this": None}
    if args.baseline is not None:
        trees["baseline"] = args.baseline.resolve()
    tag = uuid.uuid4().hex[:6]
    prefix = f"fixed-{tag}-"
    results = {(t, k): Series() for t in trees for k in ("module", "script", "probe")}
    imports: dict[tuple[str, str], list[float]] = {}
    work = Path(tempfile.mkdtemp(prefix="crawler-bench-fixed-"))
    marks = work / "marks.json"
    n = 0
    try:
        with serve_one_page() as url:
            print(f"site: {url}, database: {args.database_url}, crawls: {prefix}N", file=sys.stderr)
            for tree, path in trees.items():  # unmeasured: bytecode, migrations
                crawl_once(
                    "module",
                    url,
                    f"{prefix}warm-{tree}",
                    _env(args.database_url, path),
                    Series(),
                    marks,
                )
            for rep in range(args.reps):
                print(f"  repetition {rep + 1}/{args.reps}", file=sys.stderr)
                for kind in ("module", "script", "probe"):
                    for tree, path in trees.items():
                        n += 1
                        env = _env(args.database_url, path)
                        crawl_once(kind, url, f"{prefix}{n}", env, results[(tree, kind)], marks)
                for tree, path in trees.items():
                    env = _env(args.database_url, path)
                    for label, code in (
                        ("python -c pass", "pass"),
                        ("import crawler.cli", "import crawler.cli"),
                        ("import crawler.run", "import crawler.run"),
                    ):
                        imports.setdefault((tree, label), []).append(import_once(code, env, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(Exception):
            deleted = asyncio.run(delete_crawls(args.database_url, prefix))
            print(f"deleted {deleted} crawls {prefix}*", file=sys.stderr)
    report(trees, results)
    print("\nimports, medians of wall time, ms (python -c ...):")
    for label in ("python -c pass", "import crawler.cli", "import crawler.run"):
        row = "".join(f"{_median_ms(imports[(t, label)]):>10}" for t in trees)
        print(f"  {label:<40}{row}")
    module = results[("this", "module")]
    failed = sum(s.failures for s in results.values())
    ok = not failed and bool(module.fixed) and statistics.median(module.fixed) <= args.max_fixed
    print(f"\ncommand: python -m crawler crawl URL --name {prefix}N --json --quiet --delay 0")
    print("OK" if ok else f"FAILED (limit {args.max_fixed * 1000:.0f} ms, {failed} runs failed)")
    return 0 if ok else 1


def probe(marks_path: str, argv: Sequence[str]) -> None:
    """Run `crawler ARGV` in this process, writing the time of its phases to `marks_path`."""
    marks: dict[str, float] = {"probe": time.time()}
    atexit.register(
        lambda: Path(marks_path).write_text(json.dumps({**marks, "atexit": time.time()}))
    )
    import crawler.cli

    marks["cli imported"] = time.time()
    asyncio_run = asyncio.run

    def probed_asyncio_run(main: Any, **kwargs: Any) -> Any:
        # Called by the crawl command once it has imported crawler.run and built Settings.
        marks["loop start"] = time.time()
        import crawler.pool
        import crawler.run

        open_database = crawler.run.open_database
        pool_run = crawler.pool.Pool.run

        @contextlib.asynccontextmanager
        async def probed_open(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            marks["db open"] = time.time()
            async with open_database(*args, **kwargs) as db:
                marks["db ready"] = time.time()
                try:
                    yield db
                finally:
                    marks["db closing"] = time.time()
            marks["db closed"] = time.time()

        async def probed_run(self: Any) -> Any:
            marks["pool start"] = time.time()
            try:
                return await pool_run(self)
            finally:
                marks["pool end"] = time.time()

        crawler.run.open_database = probed_open
        crawler.pool.Pool.run = probed_run  # type: ignore[method-assign]
        try:
            return asyncio_run(main, **kwargs)
        finally:
            marks["loop end"] = time.time()

    asyncio.run = probed_asyncio_run
    sys.argv = ["crawler", *argv]
    crawler.cli.main()


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "probe":
        probe(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(main())
