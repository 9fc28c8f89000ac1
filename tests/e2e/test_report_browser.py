"""`crawler report` opened in a real browser: the system's headless Chromium, driven by
Playwright, shows the report of the crawled fixture site from file:// with no console
error and no request but the file itself; every chart is drawn, visible and not empty; the
broken-links table holds the fixture's known broken links; the page fits a laptop screen.

Chromium comes from the system (Debian's `chromium`; .ci/run installs it), never from
Playwright's own download. It runs headless, talks to Playwright over a pipe (no debugging
port), with a fresh profile in the test's temporary folder, and is closed in every case.
Without a browser the test is skipped, except under CI=true, where it fails.

`CRAWLER_REPORT_SCREENSHOT=docs/report.png pytest tests/e2e/test_report_browser.py` also
saves the page as the README's screenshot.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from crawler.report.charts import CHARTS
from crawler.run import crawl
from tests.site import serve_site
from tests.speed import FAST_ENV, fast_settings

if TYPE_CHECKING:
    from playwright.async_api import ViewportSize

pytestmark = pytest.mark.db

CHILD_TIMEOUT = 60.0
LAPTOP: ViewportSize = {"width": 1280, "height": 800}
CHROMIUM_ARGS = [
    "--no-sandbox",  # as root Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
# The fixture's broken links, as (source path, target path, status, anchor).
KNOWN_BROKEN = {
    ("/", "/missing.html", "404", "Missing"),
    ("/b.html", "/missing.html", "404", "Missing again"),
}


def _no_browser(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (under CI=true the browser test must run)")
    pytest.skip(reason)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        _no_browser("no system Chromium (apt-get install chromium)")
    assert found is not None
    return found


async def _report(db_url: str, out: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")} | FAST_ENV
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "crawler",
        "report",
        "--out",
        str(out),
        "--database-url",
        db_url,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), CHILD_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, err.decode()


async def test_the_report_in_chromium(db_url: str, tmp_path: Path) -> None:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _no_browser("Playwright is not installed (pip install -e '.[test]')")
    executable = _chromium()

    async with serve_site() as base:
        settings = fast_settings({"seeds": (base + "/",), "database_url": db_url, "name": "site"})
        await crawl(settings)
        await crawl(settings)
    out = tmp_path / "report.html"
    await _report(db_url, out)

    problems: list[str] = []
    requests: list[str] = []
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=LAPTOP,
            timeout=60_000,
        )
        try:
            page = await context.new_page()
            page.on(
                "console",
                lambda m: (
                    problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning")
                    else None
                ),
            )
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url}"))
            page.on("request", lambda r: requests.append(r.url))
            response = await page.goto(out.as_uri(), wait_until="load")
            assert response is not None and response.ok

            for key, title, _ in CHARTS:
                chart = page.locator(f"#chart-{key}")
                assert await chart.locator("h3").inner_text() == title
                svg = chart.locator("svg")
                assert await svg.is_visible(), key
                box = await svg.bounding_box()
                assert box is not None and box["width"] > 200 and box["height"] > 100, key
                shapes = await svg.locator("path, rect").count()
                assert shapes > 5, f"chart {key} has {shapes} shapes"
                texts = await svg.locator("text").all_text_contents()
                assert not any(t.startswith("no ") for t in texts), f"chart {key} is empty"

            cells = await page.locator("#table-broken_links tbody tr").evaluate_all(
                "rows => rows.map(r => [...r.cells].map(c => c.innerText))"
            )
            found = {
                (s.removeprefix(base), t.removeprefix(base), status, anchor)
                for s, t, status, anchor, *_ in cells
            }
            assert found == KNOWN_BROKEN

            # Readable on a laptop: nothing wider than the window.
            width: Any = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= LAPTOP["width"]

            screenshot = os.environ.get("CRAWLER_REPORT_SCREENSHOT")
            if screenshot:
                await page.screenshot(path=screenshot, full_page=True)

            # Printable: in print media every chart still shows.
            await page.emulate_media(media="print")
            for key, _, _ in CHARTS:
                assert await page.locator(f"#chart-{key} svg").is_visible(), key
        finally:
            await context.close()

    assert problems == []
    assert requests == [out.as_uri()]
