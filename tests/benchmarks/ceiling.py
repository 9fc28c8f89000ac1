"""The no-database ceiling: the least a Python crawler must do, for benchmark comparisons.

One ``aiohttp.ClientSession``, N workers on an ``asyncio.Queue``, an in-memory seen set,
selectolax (lexbor) for ``<a href>`` and ``<base href>``, ada-url (WHATWG) to resolve hrefs,
fragments dropped, queries kept, same origin only, robots.txt obeyed with protego, no
redirects followed (a Location is treated as a link). Nothing is stored. What it fetched with
status 200 and ``text/html`` is the page set a real crawler must match on the same site.

    python -m tests.benchmarks.ceiling http://127.0.0.1:PORT/index.html [--concurrency 32]
        [--ignore-robots] [--urls-out FILE]

prints one JSON object of stats (pages/s counts every response, HTML or not).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ada_url
import aiohttp
from protego import Protego
from selectolax.lexbor import LexborHTMLParser

USER_AGENT = "crawler-ceiling/0.1"
LAG_INTERVAL_S = 0.01


@dataclass(frozen=True)
class CeilingResult:
    """What one ceiling crawl fetched, and how fast."""

    html_200_urls: frozenset[str]
    not_found_urls: frozenset[str]
    asset_urls: frozenset[str]  # 200, not text/html
    other_urls: frozenset[str]  # any other status
    fetched: int  # HTTP responses
    errors: int  # transport errors and timeouts
    duration_s: float
    loop_lag_ms: dict[str, float] = field(default_factory=dict)

    @property
    def pages_per_second(self) -> float:
        return self.fetched / self.duration_s if self.duration_s > 0 else 0.0

    def stats(self) -> dict[str, Any]:
        return {
            "pages": len(self.html_200_urls),
            "fetched": self.fetched,
            "errors": self.errors,
            "not_found": len(self.not_found_urls),
            "assets": len(self.asset_urls),
            "other": len(self.other_urls),
            "duration_s": round(self.duration_s, 4),
            "pages_per_second": round(self.pages_per_second, 1),
            "html_pages_per_second": round(len(self.html_200_urls) / self.duration_s, 1)
            if self.duration_s > 0
            else 0.0,
            "loop_lag_ms": self.loop_lag_ms,
        }

    def urls_json(self) -> str:
        return json.dumps(
            {
                "html_200": sorted(self.html_200_urls),
                "not_found": sorted(self.not_found_urls),
                "assets": sorted(self.asset_urls),
                "other": sorted(self.other_urls),
            }
        )


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / max of ``samples`` (seconds) in milliseconds."""
    if not samples:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50": round(pick(0.5), 3), "p99": round(pick(0.99), 3), "max": round(pick(1.0), 3)}


async def _watch_loop_lag(samples: list[float]) -> None:
    """Record how late a short sleep wakes up; runs until cancelled with the crawl."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.sleep(LAG_INTERVAL_S)
        samples.append(max(0.0, loop.time() - started - LAG_INTERVAL_S))


class _Crawl:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        origin: str,
        robots: Protego | None,
        max_urls: int,
    ) -> None:
        self.session = session
        self.prefix = origin + "/"
        self.robots = robots
        self.max_urls = max_urls
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.seen: set[str] = set()
        self.html: set[str] = set()
        self.not_found: set[str] = set()
        self.assets: set[str] = set()
        self.other: set[str] = set()
        self.fetched = 0
        self.errors = 0

    def offer(self, base: str, href: str) -> None:
        try:
            url = ada_url.join_url(base, href)
        except ValueError:
            return
        cut = url.find("#")
        if cut >= 0:
            url = url[:cut]
        if not url.startswith(self.prefix) or url in self.seen:
            return
        if len(self.seen) >= self.max_urls:
            return
        self.seen.add(url)
        if self.robots is not None and not self.robots.can_fetch(url, USER_AGENT):
            return
        self.queue.put_nowait(url)

    async def worker(self) -> None:
        # Each pass takes one queued URL; every URL is queued at most once (seen set, capped at
        # max_urls), and the crawl cancels the workers once the queue is drained.
        while True:
            url = await self.queue.get()
            try:
                await self.visit(url)
            finally:
                self.queue.task_done()

    async def visit(self, url: str) -> None:
        try:
            async with self.session.get(url, allow_redirects=False) as resp:
                body = await resp.read()
                status = resp.status
                ctype = resp.headers.get("Content-Type", "")
                location = resp.headers.get("Location")
        except (aiohttp.ClientError, TimeoutError):
            self.errors += 1
            return
        self.fetched += 1
        if status == 200 and ctype.startswith("text/html"):
            self.html.add(url)
            self.parse(url, body)
        elif status == 200:
            self.assets.add(url)
        elif status == 404:
            self.not_found.add(url)
        else:
            self.other.add(url)
            if location and 300 <= status < 400:
                self.offer(url, location)

    def parse(self, url: str, body: bytes) -> None:
        tree = LexborHTMLParser(body)
        base = url
        base_node = tree.css_first("base[href]")
        if base_node is not None:
            try:
                base = ada_url.join_url(url, base_node.attributes.get("href") or "")
            except ValueError:
                base = url
        for node in tree.css("a[href]"):
            href = node.attributes.get("href")
            if href:
                self.offer(base, href)


async def _fetch_robots(session: aiohttp.ClientSession, origin: str) -> Protego | None:
    try:
        async with session.get(origin + "/robots.txt") as resp:
            if resp.status != 200:
                return None
            return Protego.parse(await resp.text(errors="replace"))
    except (aiohttp.ClientError, TimeoutError):
        return None


async def crawl(
    seed_url: str,
    *,
    concurrency: int = 32,
    obey_robots: bool = True,
    max_urls: int = 2_000_000,
    timeout_s: float = 3600.0,
) -> CeilingResult:
    """Crawl the origin of ``seed_url`` breadth-first; bounded by ``max_urls`` and ``timeout_s``."""
    origin = ada_url.URL(seed_url).origin
    lag: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=30, connect=10)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers={"User-Agent": USER_AGENT}
    ) as session:
        started = time.perf_counter()
        robots = await _fetch_robots(session, origin) if obey_robots else None
        state = _Crawl(session, origin, robots, max_urls)
        state.offer(seed_url, seed_url)
        tasks = [asyncio.create_task(state.worker()) for _ in range(concurrency)]
        tasks.append(asyncio.create_task(_watch_loop_lag(lag)))
        try:
            async with asyncio.timeout(timeout_s):
                await state.queue.join()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        duration = time.perf_counter() - started
    return CeilingResult(
        html_200_urls=frozenset(state.html),
        not_found_urls=frozenset(state.not_found),
        asset_urls=frozenset(state.assets),
        other_urls=frozenset(state.other),
        fetched=state.fetched,
        errors=state.errors,
        duration_s=duration,
        loop_lag_ms=percentiles(lag),
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.benchmarks.ceiling", description=__doc__)
    ap.add_argument("seed_url")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--ignore-robots", action="store_true")
    ap.add_argument("--max-urls", type=int, default=2_000_000)
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds for the whole crawl")
    ap.add_argument("--urls-out", type=Path, help="write the URL sets found as JSON here")
    args = ap.parse_args(argv)
    result = asyncio.run(
        crawl(
            args.seed_url,
            concurrency=args.concurrency,
            obey_robots=not args.ignore_robots,
            max_urls=args.max_urls,
            timeout_s=args.timeout,
        )
    )
    if args.urls_out is not None:
        args.urls_out.write_text(result.urls_json())
    print(json.dumps(result.stats()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
