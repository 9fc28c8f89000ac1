"""The renderer with the system's Chromium against the local fixture site.

Each test starts its own browser (lazily, on its first render) and checks that it is gone,
its private folder with it, when the renderer closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import stat
import tempfile
import time

import psutil
import pytest

from crawler.config import Settings
from crawler.fetch import HttpFetcher
from crawler.parse import parse_html
from crawler.records import FetchResult
from crawler.render.browser import BrowserRenderer
from crawler.render.chromium import as_root, chromium_args
from crawler.render.contract import RenderedResult
from crawler.render.fetcher import RenderingFetcher, RenderMode
from tests.render.conftest import options, rules_for
from tests.render.site import ITEMS, Site

pytestmark = pytest.mark.timeout(180)


async def _static(url: str) -> FetchResult:
    async with HttpFetcher(Settings(seeds=(url,))) as fetcher:
        result = await fetcher.fetch(url)
    assert result.ok and result.status == 200, result
    return result


def _gone(renderer: BrowserRenderer, pids: list[int]) -> None:
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert not alive, f"browser processes left behind: {alive}"


async def test_single_page_app_is_rendered_fully_and_parses(
    chromium: str, site: tuple[Site, str]
) -> None:
    fixture, base = site
    url = base + "/spa"
    async with HttpFetcher(Settings(seeds=(url,))) as plain:
        renderer = BrowserRenderer(options(chromium), rules_for())
        async with (
            renderer,
            RenderingFetcher(
                plain, RenderMode.AUTO, options(chromium), rules_for(), renderer=renderer
            ) as fetcher,
        ):
            result = await fetcher.fetch(url)
            workdir = renderer.workdir
            assert workdir is not None
            assert stat.S_IMODE(workdir.path.stat().st_mode) == 0o700
            procs = workdir.processes()
            assert procs
            pids = [p.pid for p in procs]
            for proc in procs:  # a pipe, never a debugging port
                listening = [c for c in proc.net_connections("inet") if c.status == "LISTEN"]
                assert not listening, f"{proc.pid} listens on {listening}"
            assert fetcher.rendered == 1
    assert isinstance(result, RenderedResult)
    assert result.error_kind is None, result.error
    assert result.static_body.startswith(b"<!doctype html>")
    assert result.browser_url == base + "/spa/"  # moved by the pushState router
    assert fixture.hits["/spa"] == 1  # the document is served from the static fetch
    page = parse_html(result.text or "", result.final_url)
    hrefs = {link[0] for link in page.links}
    assert {base + item["href"] for item in ITEMS} <= hrefs
    assert ITEMS[-1]["text"] in page.text
    assert page.h1 == "Home"
    assert not workdir.path.exists()
    _gone(renderer, pids)


async def test_static_page_is_left_alone_in_auto(chromium: str, site: tuple[Site, str]) -> None:
    _, base = site
    url = base + "/static"
    renderer = BrowserRenderer(options(chromium), rules_for())
    async with (
        HttpFetcher(Settings(seeds=(url,))) as plain,
        RenderingFetcher(
            plain, RenderMode.AUTO, options(chromium), rules_for(), renderer=renderer
        ) as fetcher,
    ):
        result = await fetcher.fetch(url)
    assert not isinstance(result, RenderedResult)
    assert renderer.renders == 0 and renderer.workdir is None  # no browser was started


async def test_page_that_never_goes_idle_ends_at_the_cap_with_what_it_rendered(
    chromium: str, site: tuple[Site, str]
) -> None:
    _, base = site
    static = await _static(base + "/busy")
    async with BrowserRenderer(options(chromium, settle_timeout=2.0), rules_for()) as renderer:
        started = time.monotonic()
        result = await renderer.render(static)
        took = time.monotonic() - started
        # The tab was replaced: the next render works.
        again = await renderer.render(await _static(base + "/spa"))
    assert result.error_kind == "render_timeout"
    assert "busy page text" in (result.text or "")
    assert took < 60
    assert again.error_kind is None and "Item 29" in (again.text or "")


async def test_a_page_written_by_timers_after_its_last_request_is_read_whole(
    chromium: str, site: tuple[Site, str]
) -> None:
    _, base = site
    async with BrowserRenderer(options(chromium), rules_for()) as renderer:
        result = await renderer.render(await _static(base + "/timers"))
    assert result.error_kind is None, result.error
    assert "timer step 7" in (result.text or "")  # the DOM's quiet counts, not only the network


async def test_a_dom_that_never_stops_changing_ends_at_the_cap_with_what_it_rendered(
    chromium: str, site: tuple[Site, str]
) -> None:
    _, base = site
    async with BrowserRenderer(options(chromium, settle_timeout=2.0), rules_for()) as renderer:
        started = time.monotonic()
        result = await renderer.render(await _static(base + "/ticker"))
        took = time.monotonic() - started
    assert result.error_kind == "render_timeout"
    assert "ticker page text" in (result.text or "") and "tick " in (result.text or "")
    assert took < 60


async def test_an_endless_script_loop_ends_at_the_cap(
    chromium: str, site: tuple[Site, str]
) -> None:
    _, base = site
    static = await _static(base + "/loop")
    opts = options(chromium, navigation_timeout=4.0, read_timeout=2.0)
    async with BrowserRenderer(opts, rules_for()) as renderer:
        started = time.monotonic()
        result = await renderer.render(static)
        took = time.monotonic() - started
        again = await renderer.render(await _static(base + "/spa"))
    assert result.error_kind == "render_timeout"
    assert result.body == static.body  # nothing readable was rendered: the static HTML
    assert took < 60
    assert again.error_kind is None and "Item 29" in (again.text or "")


async def test_dialogs_are_dismissed_and_popups_refused(
    chromium: str, site: tuple[Site, str]
) -> None:
    fixture, base = site
    async with BrowserRenderer(options(chromium), rules_for()) as renderer:
        result = await renderer.render(await _static(base + "/dialogs"))
    assert result.error_kind is None, result.error
    assert "after the dialogs" in (result.text or "")
    assert fixture.hits["/popup-target"] == 0


async def test_private_addresses_and_robots_are_refused_inside_the_browser(
    chromium: str, site: tuple[Site, str]
) -> None:
    fixture, base = site
    async with BrowserRenderer(options(chromium), rules_for()) as renderer:
        result = await renderer.render(await _static(base + "/private"))
    text = parse_html(result.text or "", result.final_url).text
    assert "own:ok" in text  # the crawled seed's own host (on 127.0.0.1) is allowed
    assert "other:refused" in text  # 127.0.0.2: another private address
    assert "metadata:refused" in text
    assert "robots:refused" in text
    assert "ownws:refused" in text and "otherws:refused" in text  # WebSockets: never
    assert "worker:refused" in text
    assert fixture.hits["/robots-disallowed/data"] == 0
    assert not fixture.other_hits, fixture.other_hits
    assert result.refused >= 6
    assert result.subrequests == 1


async def test_images_media_and_fonts_are_not_fetched(
    chromium: str, site: tuple[Site, str]
) -> None:
    fixture, base = site
    async with BrowserRenderer(options(chromium), rules_for()) as renderer:
        result = await renderer.render(await _static(base + "/images"))
    assert "images page" in (result.text or "")
    assert (
        fixture.hits["/img.png"] == fixture.hits["/movie.mp4"] == fixture.hits["/font.woff2"] == 0
    )


async def test_attaches_to_a_running_browser_over_cdp(
    chromium: str, site: tuple[Site, str]
) -> None:
    _, base = site
    profile = tempfile.mkdtemp(prefix="cdp", dir="/tmp")
    sandbox = ["--no-sandbox"] if as_root() else []
    proc = await asyncio.create_subprocess_exec(
        chromium,
        "--headless",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        *sandbox,
        *chromium_args(),
        "about:blank",
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    drain: asyncio.Task[bytes] | None = None
    try:
        assert proc.stderr is not None
        url = ""
        async with asyncio.timeout(60):
            while not url:
                line = (await proc.stderr.readline()).decode()
                assert line, "the browser ended before it listened"
                if line.startswith("DevTools listening on "):
                    url = line.split()[-1]
        drain = asyncio.create_task(proc.stderr.read())
        opts = dataclasses.replace(options(chromium), browser_path=None, cdp_url=url)
        async with BrowserRenderer(opts, rules_for()) as renderer:
            result = await renderer.render(await _static(base + "/spa"))
        assert result.error_kind is None, result.error
        assert ITEMS[-1]["text"] in (result.text or "")
        assert proc.returncode is None  # an attached browser is left running
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        if drain is not None:
            await drain
        shutil.rmtree(profile, ignore_errors=True)
