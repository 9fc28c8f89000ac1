"""The client's CPU per request: `HttpFetcher.fetch` against a local server, nothing else.

    python -m tests.benchmarks.bench_fetch [--requests 5000] [--concurrency 16] [--reps 5]
        [--size 27000]

Run it from the root of a clone. A child process serves one HTML page of `--size` bytes on
127.0.0.1 (aiohttp.web, so its CPU is not this process's); this process fetches it
`--requests` times, `--concurrency` at a time, through one `HttpFetcher`, and prints the CPU
time of this process per request (user + system) for each repetition, then the median. The
crawl's own work (parse, store, pacing) is not in it: run it in two trees to compare their
fetchers. The server is stopped by its pid when done, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys

from crawler.config import Settings
from crawler.fetch import HttpFetcher
from crawler.loop_health import tuned_gc
from tests.benchmarks.bench_crawl import free_port, wait_port


def _serve(port: int, size: int) -> None:
    from aiohttp import web

    body = (b"<p>" + b"x" * size)[:size]

    async def page(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/html")

    app = web.Application()
    app.router.add_get("/page", page)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


async def _rep(url: str, requests: int, concurrency: int) -> float:
    """CPU microseconds of this process per request."""
    settings = Settings(seeds=(url,), concurrency=concurrency, host_concurrency=concurrency)
    async with HttpFetcher(settings, allowed_private_hosts=frozenset({"127.0.0.1"})) as fetcher:
        left = iter(range(requests))

        async def worker() -> None:
            for _ in left:
                result = await fetcher.fetch(url)
                if result.status != 200:
                    raise SystemExit(f"{url}: {result.error_kind or result.status}")

        await fetcher.fetch(url)  # the connection made, the modules warm
        with tuned_gc():  # as the crawl's pool runs
            before = os.times()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            after = os.times()
    cpu = (after.user - before.user) + (after.system - before.system)
    return cpu * 1e6 / requests


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--size", type=int, default=27_000, help="bytes of the page")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the child: its port
    args = ap.parse_args(argv)
    if args.serve is not None:
        _serve(args.serve, args.size)
        return 0
    port = free_port()
    cmd = [sys.executable, "-m", "tests.benchmarks.bench_fetch", "--serve", str(port)]
    server = subprocess.Popen([*cmd, "--size", str(args.size)])
    try:
        if not wait_port(port, 10.0):
            raise SystemExit(f"the server did not listen on 127.0.0.1:{port} within 10 s")
        url = f"http://127.0.0.1:{port}/page"
        figures = []
        for rep in range(1, args.reps + 1):
            figures.append(asyncio.run(_rep(url, args.requests, args.concurrency)))
            print(f"rep {rep}: {figures[-1]:.1f} CPU-us a request", flush=True)
        print(f"median of {args.reps}: {statistics.median(figures):.1f} CPU-us a request")
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
