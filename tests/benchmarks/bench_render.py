"""Benchmark rendering: our render package against Crawlee for Python's PlaywrightCrawler.

    python -m tests.benchmarks.bench_render --pages 500 --concurrency 2
        [--only both|ours|crawlee] [--crawlee-venv DIR] [--browser PATH] [--database-url URL]

Run it from the root of a clone. It serves a single-page-app site of PAGES pages on
127.0.0.1 (a subprocess of this script): every page is an empty app root whose script
fetches /api/p/N.json and inserts the page's text and its links (to 5 other pages), so a
crawler that does not render finds nothing. Then, one after the other:

(a) ours: `crawler crawl SEED --render always --render-concurrency C --json`, into an
    embedded PostgreSQL made for the run (`--data-dir` in a temp folder; its server is counted
    while it is a descendant of the crawl) or `--database-url` (a run of its own each time);
(b) Crawlee: `PlaywrightCrawler` from a separate virtualenv (`--crawlee-venv`, made with
    `pip install 'crawlee[playwright]'`; never one of the project's dependencies), driving
    the same system Chromium through `browser_launch_options={"executable_path": ...}`. Its
    handler waits for network idle (Playwright's, as a Crawlee user would; ours has its own
    settle rule, crawler/render/settle.py) before enqueueing links.

Both use `--concurrency` pages at once. Each is measured from here: wall time, pages/s, CPU
(user + system) of the process and every descendant (Playwright's driver, every Chromium
process), sampled every 100 ms, and the peak of their summed RSS. Every process started
here is stopped by its pid (process group), also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).parents[2]
LINKS_PER_PAGE = 5

SHELL = """<!doctype html><html><head><title>App</title></head><body><div id="app"></div>
<script>
const n = location.pathname.split("/").pop();
fetch("/api/p/" + n + ".json").then(r => r.json()).then(d => {
  const app = document.getElementById("app");
  const h1 = document.createElement("h1"); h1.textContent = d.title; app.append(h1);
  const p = document.createElement("p"); p.textContent = d.text; app.append(p);
  for (const href of d.links) {
    const a = document.createElement("a"); a.href = href; a.textContent = href; app.append(a);
  }
});
</script></body></html>"""

CRAWLEE = """
import asyncio, json, os, sys
from crawlee import ConcurrencySettings
from crawlee.crawlers import PlaywrightCrawler, PlaywrightCrawlingContext

async def main(seed: str, pages: int, concurrency: int, chromium: str) -> None:
    crawler = PlaywrightCrawler(
        max_requests_per_crawl=pages,
        headless=True,
        browser_type="chromium",
        # The sandbox as ours: off only as root (Chromium refuses it then).
        browser_launch_options={
            "executable_path": chromium, "chromium_sandbox": os.geteuid() != 0,
        },
        concurrency_settings=ConcurrencySettings(
            min_concurrency=concurrency, max_concurrency=concurrency,
            desired_concurrency=concurrency,
        ),
    )
    done = 0

    @crawler.router.default_handler
    async def handler(context: PlaywrightCrawlingContext) -> None:
        nonlocal done
        await context.page.wait_for_load_state("networkidle")
        await context.enqueue_links(strategy="same-origin")
        done += 1

    await crawler.run([seed])
    print(json.dumps({"pages": done}), flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
"""


# --- the site -------------------------------------------------------------------------------


def page_data(n: int, pages: int) -> dict[str, Any]:
    links = sorted(
        {(n * 7 + k * 13 + 1) % pages for k in range(LINKS_PER_PAGE)} | {(n + 1) % pages}
    )
    return {
        "title": f"Page {n}",
        "text": f"Page {n} of the benchmark app. " * 20,
        "links": [f"/p/{m}" for m in links],
    }


async def serve(pages: int) -> None:
    from aiohttp import web

    async def shell(request: web.Request) -> web.Response:
        return web.Response(text=SHELL, content_type="text/html")

    async def data(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if not 0 <= n < pages:
            raise web.HTTPNotFound()
        return web.json_response(page_data(n, pages))

    async def robots(request: web.Request) -> web.Response:
        return web.Response(text="User-agent: *\nAllow: /\n")

    app = web.Application()
    app.router.add_get("/p/{n:\\d+}", shell)
    app.router.add_get("/api/p/{n:\\d+}.json", data)
    app.router.add_get("/robots.txt", robots)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(port, flush=True)
    # Serve until our parent closes our stdin.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


# --- our side -------------------------------------------------------------------------------


def ours_command(seed: str, args: argparse.Namespace, data_dir: Path) -> list[str]:
    """`crawler crawl --render always` on the site, into a database of its own."""
    cmd = [sys.executable, "-m", "crawler", "crawl", seed, "--render", "always", "--json"]
    cmd += ["--render-concurrency", str(args.concurrency), "--browser-path", args.browser]
    cmd += ["--max-pages", str(args.pages), "--name", "bench-render"]
    if args.database_url:
        return [*cmd, "--database-url", args.database_url, "--new-run"]
    return [*cmd, "--data-dir", str(data_dir)]


# --- measuring --------------------------------------------------------------------------------


def measure(cmd: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `cmd`; wall time, CPU and peak RSS of it and all its descendants; its JSON line."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    cpu: dict[int, float] = {}
    peak = 0
    try:
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            rss = 0
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for p in tree:
                try:
                    times = p.cpu_times()
                    cpu[p.pid] = times.user + times.system
                    rss += p.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
            peak = max(peak, rss)
            time.sleep(0.1)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    wall = time.perf_counter() - started
    lines = [line for line in out.splitlines() if line.startswith("{")]
    result: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    result.update(
        exit=proc.returncode,
        wall_s=round(wall, 2),
        pages_per_s=round(result.get("pages", 0) / wall, 2),
        cpu_s=round(sum(cpu.values()), 1),
        peak_rss_mib=round(peak / 2**20),
    )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--only", choices=("both", "ours", "crawlee"), default="both")
    parser.add_argument(
        "--crawlee-venv", default=os.path.join(tempfile.gettempdir(), "crawlee-venv")
    )
    parser.add_argument("--browser", default="/usr/bin/chromium")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--database-url", help="the crawl's database (default: an embedded one, made for the run)"
    )
    args = parser.parse_args(argv)
    if args.serve is not None:
        asyncio.run(serve(args.serve))
        return 0
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.benchmarks.bench_render", "--serve", str(args.pages)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert server.stdout is not None
        seed = f"http://127.0.0.1:{int(server.stdout.readline())}/p/0"
        results = {}
        if args.only in ("both", "ours"):
            with tempfile.TemporaryDirectory() as work:
                env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")}
                cmd = ours_command(seed, args, Path(work) / "data")
                results["ours"] = measure(cmd, Path(work), env)
        if args.only in ("both", "crawlee"):
            with tempfile.TemporaryDirectory() as work:
                script = Path(work) / "crawlee_side.py"
                script.write_text(CRAWLEE, encoding="utf-8")
                python = str(Path(args.crawlee_venv) / "bin" / "python")
                cmd = [python, str(script), seed, str(args.pages), str(args.concurrency)]
                env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLEE_")}
                results["crawlee"] = measure([*cmd, args.browser], Path(work), env)
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    print(json.dumps({"pages": args.pages, "concurrency": args.concurrency, **results}, indent=2))
    complete = all(r.get("exit") == 0 and r.get("pages") == args.pages for r in results.values())
    return 0 if complete else 1


if __name__ == "__main__":
    raise SystemExit(main())
