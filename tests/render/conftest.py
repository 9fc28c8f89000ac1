"""Fixtures of the render tests: the system's Chromium (or CRAWLER_TEST_BROWSER; missing: a
skip, or under CI=true a failure), the fixture site on 127.0.0.1, a second server on
127.0.0.2 that nothing may reach, and a renderer with short caps whose rules trust only the
site's own host."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator

import pytest

from crawler.guard import AddressPolicy
from crawler.render.chromium import find_browser
from crawler.render.contract import RenderOptions
from crawler.render.guard import BrowserRules
from tests.render.site import Site, start

# Modules that import crawler.render.browser (so Playwright) are not collected without
# Playwright, except under CI=true, where their import error fails the run.
collect_ignore = (
    ["test_render_browser.py", "test_render_memory.py"]
    if importlib.util.find_spec("playwright") is None and os.environ.get("CI") != "true"
    else []
)


def need_browser() -> str:
    """The Chromium to test with. Missing: a skip, but a failure under CI=true."""
    why = None
    if importlib.util.find_spec("playwright") is None:
        why = "Playwright is not installed (pip install -e '.[test]')"
    else:
        given = os.environ.get("CRAWLER_TEST_BROWSER")
        found = find_browser(given)
        if found is not None:
            return found
        why = f"no browser at {given}" if given else "no Chromium on PATH (apt install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"render tests need a browser under CI: {why}")
    pytest.skip(why)


@pytest.fixture
def chromium() -> str:
    return need_browser()


@pytest.fixture
async def site() -> AsyncIterator[tuple[Site, str]]:
    """The fixture site and its base URL (no trailing slash)."""
    fixture, other_site = Site(), Site()
    fixture.other_hits = other_site.hits
    other = await start(other_site, host="127.0.0.2")
    fixture.other = str(other.make_url("")).rstrip("/")
    server = await start(fixture)
    try:
        yield fixture, str(server.make_url("")).rstrip("/")
    finally:
        fixture.stop.set()
        await server.close()
        await other.close()


def rules_for(robots_disallow: str = "/robots-disallowed/") -> BrowserRules:
    async def robots(url: str) -> bool:
        return robots_disallow not in url

    return BrowserRules(AddressPolicy.of(hosts=["127.0.0.1"]), robots=robots)


def options(chromium: str, **overrides: float) -> RenderOptions:
    values: dict[str, float] = {
        "navigation_timeout": 10.0,
        "settle_timeout": 3.0,
        "read_timeout": 3.0,
    }
    values.update(overrides)
    return RenderOptions(browser_path=chromium, **values)  # type: ignore[arg-type]
