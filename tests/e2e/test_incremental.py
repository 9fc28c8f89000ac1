"""Issue 5's check of incremental runs, as a user meets it: run 1 crawls a generated site;
then 10 pages are edited, 5 deleted and 5 added (each new page linked from one of the edited
pages), and run 2 (`crawl --name X`, a new run since run 1 finished) must report exactly 10
changed, 5 gone and 5 new pages, and every other page must have been fetched with a validator
and answered 304.

The site is served in the test's loop by aiohttp's FileResponse, which sends ETag and
Last-Modified and answers If-None-Match / If-Modified-Since with 304; a response hook records,
for every request, whether it carried a validator and what status it got.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import os
import random
import re
import sys
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import ada_url
import asyncpg
import pytest
from aiohttp import web

from tests.processes import wait_or_kill
from tests.sitegen import DISALLOW, Manifest, generate, served_path
from tests.speed import FAST_ENV
from tests.sql import plain_url

pytestmark = pytest.mark.db

NAME = "incremental"
PAGES = 300
CHILD_TIMEOUT = 60.0
FAST = ("--concurrency", "16", "--host-concurrency", "16", "--delay", "0")
NOT_INHERITED = frozenset({"FORCE_COLOR", "CLICOLOR_FORCE", "PY_COLORS", "TTY_COMPATIBLE"})
HREF = re.compile(r'<a href="([^"]*)"')
EDITED, DELETED, ADDED = 10, 5, 5


# -- the server -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    path_qs: str
    validator: bool  # If-None-Match or If-Modified-Since
    status: int


@dataclass
class Server:
    base_url: str
    root: Path
    requests: list[Request] = field(default_factory=list)


@contextlib.asynccontextmanager
async def static_server(root: Path) -> AsyncIterator[Server]:
    """Serve `root` like tests.sitegen.static_app, recording every answer."""
    await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
    resolved = await asyncio.to_thread(root.resolve)
    server = Server("", root)

    async def handle(request: web.Request) -> web.StreamResponse:
        rel = served_path(request.path)
        if rel is None:
            raise web.HTTPNotFound()
        return web.FileResponse(resolved / rel)  # 404 if missing; ETag, Last-Modified, 304

    async def record(request: web.Request, response: web.StreamResponse) -> None:
        headers = request.headers
        validator = "If-None-Match" in headers or "If-Modified-Since" in headers
        server.requests.append(Request(request.path_qs, validator, response.status))

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    app.on_response_prepare.append(record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        yield server
    finally:
        await runner.cleanup()


# -- the crawler ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


_numbers = itertools.count(1)


async def cli(*args: str, folder: Path) -> Done:
    """Run `python -m crawler ARGS` (its own process group, output in files) to the end."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CRAWLER_") and k not in NOT_INHERITED
    } | FAST_ENV
    n = next(_numbers)
    out_path, err_path = folder / f"cli-{n}.out", folder / f"cli-{n}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "crawler",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
            cwd=folder,
            start_new_session=True,
        )
    code = await wait_or_kill(proc, CHILD_TIMEOUT)
    return Done(code, out_path.read_text(), err_path.read_text())


# -- the site and its edits -------------------------------------------------------------------


class Site:
    """The generated files and their link graph, read back from disk."""

    def __init__(self, root: Path, base_url: str) -> None:
        self.root = root
        self.base_url = base_url
        self.prefix = base_url + "/"

    def url(self, rel: str) -> str:
        return self.prefix + rel

    def file_of(self, url: str) -> str | None:
        """The file that answers `url` (aliases: "/docs/" and "?query" variants)."""
        return served_path(urlsplit(url).path)

    def outlinks(self, rel: str) -> Iterator[str]:
        page_url = self.url(rel)
        text = (self.root / rel).read_text(encoding="utf-8")
        for href in HREF.findall(text):
            try:
                url = ada_url.join_url(page_url, html.unescape(href)).split("#", 1)[0]
            except ValueError:
                continue
            if url.startswith(self.prefix):
                yield url

    def reachable_pages(self) -> set[str]:
        """The HTML URLs a crawler obeying robots.txt reaches from /index.html now."""
        start = self.url("index.html")
        private = self.url(DISALLOW.lstrip("/"))
        seen, queue, pages = {start}, deque([start]), set()
        while queue:  # each URL enters the queue once: bounded by the URL count
            url = queue.popleft()
            rel = self.file_of(url)
            if rel is None or not rel.endswith(".html") or not (self.root / rel).is_file():
                continue
            pages.add(url)
            for link in self.outlinks(rel):
                if link not in seen and not link.startswith(private):
                    seen.add(link)
                    queue.append(link)
        return pages


@dataclass(frozen=True)
class Plan:
    edited: frozenset[str]  # URLs; the first ADDED of them (sorted) link to a new page each
    deleted: frozenset[str]
    added: frozenset[str]


def choose(site: Site, pages: set[str], rng: random.Random) -> tuple[list[str], list[str]]:
    """(10 pages to edit, 5 to delete): pages with one URL each (no "/dir/" or "?query"
    alias, not the index), whose deletion leaves every other page reachable, and each deleted
    one still linked from a page that stays (so run 2 asks for it and gets a 404)."""
    urls_of: dict[str, list[str]] = {}
    for url in pages:
        rel = site.file_of(url)
        assert rel is not None, url
        urls_of.setdefault(rel, []).append(url)
    single = sorted(
        urls[0]
        for rel, urls in urls_of.items()
        if len(urls) == 1
        and urls[0] == site.url(rel)
        and rel.count("/") >= 1
        and not rel.endswith("index.html")
    )
    linked_from: dict[str, set[str]] = {}
    for url in pages:
        for link in site.outlinks(site.file_of(url) or ""):
            linked_from.setdefault(link, set()).add(url)
    rng.shuffle(single)
    deleted: list[str] = []
    for url in single:  # bounded by the candidates
        if len(deleted) == DELETED:
            break
        gone = {*deleted, url}
        still_linked = all(linked_from.get(u, set()) - gone for u in gone)
        if still_linked and _still_reachable(site, pages, gone):
            deleted.append(url)
    edited = [url for url in single if url not in deleted][:EDITED]
    assert len(deleted) == DELETED and len(edited) == EDITED, (deleted, edited)
    return edited, deleted


def _still_reachable(site: Site, pages: set[str], gone: set[str]) -> bool:
    """Would every page but `gone` stay reachable with `gone`'s files deleted?"""
    hidden = [site.root / (site.file_of(url) or "") for url in gone]
    moved = [path.with_suffix(".hidden") for path in hidden]
    for path, away in zip(hidden, moved, strict=True):
        path.rename(away)
    try:
        return site.reachable_pages() == pages - gone
    finally:
        for path, away in zip(hidden, moved, strict=True):
            away.rename(path)


def apply_edits(site: Site, edited: list[str], deleted: list[str]) -> Plan:
    added = []
    for k, url in enumerate(sorted(edited)):
        rel = site.file_of(url)
        assert rel is not None
        path = site.root / rel
        text = path.read_text(encoding="utf-8")
        extra = f"<p>Edited for run 2 (change {k}).</p>\n"
        if k < ADDED:
            new_rel = f"fresh/new-{k}.html"
            extra = f'<p>Edited for run 2: <a href="/{new_rel}">new page {k}</a>.</p>\n'
            (site.root / "fresh").mkdir(exist_ok=True)
            (site.root / new_rel).write_text(
                f"<!DOCTYPE html>\n<html><head><title>New page {k}</title></head><body>"
                f'<h1>New page {k}</h1><p><a href="/index.html">Home</a></p></body></html>\n',
                encoding="utf-8",
            )
            added.append(site.url(new_rel))
        assert "</article>" in text, rel
        path.write_text(text.replace("</article>", extra + "</article>", 1), encoding="utf-8")
    for url in deleted:
        (site.root / (site.file_of(url) or "")).unlink()
    return Plan(frozenset(edited), frozenset(deleted), frozenset(added))


@dataclass(frozen=True)
class Outcome:
    manifest: Manifest
    first_pages: frozenset[str]
    plan: Plan
    second: Done
    changes: Done
    requests: tuple[Request, ...]  # those of run 2
    fetches: dict[str, list[tuple[int | None, bool]]]  # run 2: url -> [(status, not_modified)]

    @property
    def unchanged(self) -> frozenset[str]:
        return self.first_pages - self.plan.edited - self.plan.deleted


async def crawl_edit_crawl(db_url: str, folder: Path) -> Outcome:
    """Run 1, the edits, run 2 and `crawler changes --json`."""
    async with static_server(folder / "site") as server:
        manifest = await asyncio.to_thread(generate, server.root, PAGES, server.base_url)
        site = Site(server.root, server.base_url)
        first = await cli(
            "crawl", manifest.start_url, "--name", NAME, "--database-url", db_url, *FAST,
            folder=folder,
        )  # fmt: skip
        assert first.code == 0, first
        conn = await asyncpg.connect(plain_url(db_url))
        try:
            first_pages = frozenset(r["url"] for r in await conn.fetch("SELECT url FROM pages"))
            assert first_pages == manifest.robots_html_200_urls, "run 1 did not crawl the site"

            edited, deleted = await asyncio.to_thread(
                choose, site, set(first_pages), random.Random(5)
            )
            plan = await asyncio.to_thread(apply_edits, site, edited, deleted)
            expected = (first_pages - plan.deleted) | plan.added
            assert await asyncio.to_thread(site.reachable_pages) == expected, "bad test edit"

            server.requests.clear()
            second = await cli(
                "crawl", "--name", NAME, "--database-url", db_url, *FAST, "--json", folder=folder
            )
            requests = tuple(server.requests)
            run_id = await conn.fetchval("SELECT max(id) FROM crawl_runs")
            rows = await conn.fetch(
                "SELECT url, status, not_modified FROM fetches WHERE run_id = $1 ORDER BY id",
                run_id,
            )
        finally:
            await conn.close()
    changes = await cli(
        "changes", "--name", NAME, "--json", "--database-url", db_url, folder=folder
    )
    fetches: dict[str, list[tuple[int | None, bool]]] = {}
    for r in rows:
        fetches.setdefault(r["url"], []).append((r["status"], bool(r["not_modified"])))
    return Outcome(manifest, first_pages, plan, second, changes, requests, fetches)


# -- the checks -------------------------------------------------------------------------------


async def test_second_run_reports_exactly_what_changed(db_url: str, tmp_path: Path) -> None:
    outcome = await crawl_edit_crawl(db_url, tmp_path)
    plan = outcome.plan
    assert outcome.second.code == 0, outcome.second
    summary = json.loads(outcome.second.out)
    assert summary["status"] == "finished" and not summary["resumed"], summary

    assert outcome.changes.code == 0, outcome.changes
    report = json.loads(outcome.changes.out)
    counts = {key: report[key] for key in ("new", "changed", "gone", "unchanged")}
    assert counts == {
        "new": ADDED,
        "changed": EDITED,
        "gone": DELETED,
        "unchanged": len(outcome.unchanged),
    }, counts
    urls = report["urls"]
    assert set(urls["new"]) == plan.added, urls["new"]
    assert set(urls["changed"]) == plan.edited, urls["changed"]
    assert set(urls["gone"]) == plan.deleted, urls["gone"]
    assert set(urls["unchanged"]) == outcome.unchanged


async def test_unchanged_pages_are_revalidated_with_304(db_url: str, tmp_path: Path) -> None:
    outcome = await crawl_edit_crawl(db_url, tmp_path)
    assert outcome.second.code == 0, outcome.second
    unchanged = outcome.unchanged
    base = outcome.manifest.base_url

    answered: dict[str, list[Request]] = {}
    for request in outcome.requests:
        answered.setdefault(base + request.path_qs, []).append(request)
    not_revalidated = sorted(
        url
        for url in unchanged
        if [(r.validator, r.status) for r in answered.get(url, [])] != [(True, 304)]
    )
    assert not_revalidated == [], (
        f"{len(not_revalidated)} of {len(unchanged)} unchanged pages were not asked once with "
        f"a validator and answered 304, e.g. "
        + "; ".join(f"{u}: {answered.get(u)}" for u in not_revalidated[:3])
    )
    not_recorded = sorted(u for u in unchanged if outcome.fetches.get(u) != [(304, True)])
    assert not_recorded == [], (
        f"{len(not_recorded)} unchanged pages have no single 304 fetch with not_modified, "
        f"e.g. " + "; ".join(f"{u}: {outcome.fetches.get(u)}" for u in not_recorded[:3])
    )
    edited_or_new = outcome.plan.edited | outcome.plan.added
    refetched = {u: outcome.fetches.get(u) for u in edited_or_new}
    assert all(f is not None and f[-1] == (200, False) for f in refetched.values()), refetched
