"""What crosses the render package's boundary: options, the rules seam, the rendered result.

Nothing here imports Playwright, so the pool and run.py can use these types whether or not
the `render` extra is installed.

- `RenderOptions`: the browser's knobs, built from `Settings`.
- `RequestRules`: what the browser may request. The renderer asks it about every request a
  page makes (scripts, XHR, frames...) except the page's own document, which it serves from
  the static fetch. run.py passes the address guard and robots.txt of the crawl (guard.py).
- `Renderer`: the seam `RenderingFetcher` renders through (browser.py's `BrowserRenderer`).
- `RenderedResult`: a `FetchResult` whose body is the rendered DOM, with the static body
  kept beside it (`static_body`) for `--store-body`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from crawler.config import Settings
from crawler.errors import CrawlerError
from crawler.records import FetchResult

__all__ = [
    "BrowserUnavailable",
    "RenderOptions",
    "RenderedResult",
    "Renderer",
    "RequestRules",
]


NAVIGATION_TIMEOUT = 30.0


class BrowserUnavailable(CrawlerError):
    """No browser to render with: Playwright is not installed, or no Chromium was found."""


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """How the browser is found, started and given pages (see README, "JavaScript rendering")."""

    concurrency: int = 2
    browser_path: str | None = None
    cdp_url: str | None = None
    user_agent: str | None = None
    navigation_timeout: float = NAVIGATION_TIMEOUT  # until DOMContentLoaded
    settle_timeout: float = 10.0  # then until settled (settle.py: network and DOM quiet), capped
    read_timeout: float = 5.0  # reading the DOM (a page stuck in a script loop never answers)
    max_subrequests: int = 200  # requests a page may make beyond its document
    recycle_after: int = 50  # renders before a page's browser context is replaced
    max_html_bytes: int = 10 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> RenderOptions:
        return cls(
            concurrency=settings.render_concurrency,
            browser_path=settings.browser_path,
            cdp_url=settings.browser_cdp_url,
            user_agent=settings.user_agent,
            navigation_timeout=settings.total_timeout or NAVIGATION_TIMEOUT,
            max_html_bytes=settings.max_body_bytes,
        )


class RequestRules(Protocol):
    """May the browser, rendering `page_url`, request `url`? None: yes; else why not."""

    async def refuse(self, url: str, page_url: str) -> str | None: ...


class Renderer(Protocol):
    """Renders a page whose static fetch is `static` (an HTML 200)."""

    async def render(self, static: FetchResult) -> RenderedResult: ...


@dataclass(frozen=True, slots=True)
class RenderedResult(FetchResult):
    """A fetch whose body the browser rendered (UTF-8 HTML of the DOM after it settled).

    `static_body` is the body the server sent; `subrequests` counts the requests the page
    made that the browser was allowed (they count against the host's politeness budget);
    `refused` the ones the rules or the cap refused; `browser_url` is where the page ended
    (a `history.pushState` router moves it without a navigation).
    """

    static_body: bytes = b""
    subrequests: int = 0
    refused: int = 0
    browser_url: str = ""

    @property
    def rendered(self) -> bool:
        return True
