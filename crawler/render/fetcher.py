"""`RenderingFetcher`: a fetcher that renders, in a browser, the pages that need it.

It has the fetcher's shape (`fetch(url, *, headers, max_redirects) -> FetchResult`, the
pool's `Fetcher` Protocol) and wraps a plain fetcher. Each HTML 200 the plain fetcher
returns is then, by `--render`:

- `never`: returned as it is;
- `always`: rendered;
- `auto`: rendered when the host's mode and the detector say so (learn.py, detect.py); the
  static and rendered results of each rendered page teach the host's mode. A page the quick
  byte check clears (`clearly_static`) is not parsed again for the detector.

A redirect is not rendered (its target is crawled, and rendered, under its own URL). A render
that timed out returns what was rendered so far (`error_kind` None, the timeout in `error`);
one that failed returns the static result, with the failure in `error`: either way the page
is stored, and the fetch's `error` says what happened.

A rendered page comes back as a `RenderedResult` (the DOM as body, the static body beside
it; `isinstance(result, RenderedResult)` tells the pool it was rendered). When a page
should be rendered but no browser can be had, one line on stderr says how to get one,
once, and the static result is returned: the crawl goes on without rendering.

The browser starts on the first render and is shut down when the fetcher's `async with`
ends, whatever ends it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from collections.abc import Callable, Mapping
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from crawler.kinds import ErrorKind
from crawler.records import FetchResult
from crawler.render.contract import (
    BrowserUnavailable,
    Renderer,
    RenderOptions,
    RequestRules,
)
from crawler.render.detect import clearly_static, looks_client_rendered, page_facts
from crawler.render.learn import Choice, HostMode, RenderLearner
from crawler.urls import host_key

if TYPE_CHECKING:
    from crawler.render.browser import BrowserRenderer

__all__ = ["HINT", "PlainFetcher", "RenderMode", "RenderingFetcher"]

HINT = (
    "crawler: pages of {host} look client-rendered, but there is no browser to render them "
    "({why}). To render them: pip install 'crawler[render]' and install Chromium (Debian: apt "
    "install chromium), or give --browser-path or --browser-cdp-url; --render never hides this."
)


# Encodings whose bytes are not ASCII where the markup is: the quick byte check cannot read them.
WIDE_ENCODINGS = frozenset({"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"})


class RenderMode(StrEnum):
    NEVER = "never"
    AUTO = "auto"
    ALWAYS = "always"


class PlainFetcher(Protocol):
    """What the pool fetches with (crawler.seams.Fetcher)."""

    async def fetch(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_redirects: int | None = None,
    ) -> FetchResult: ...


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class RenderingFetcher:
    """`async with RenderingFetcher(plain, mode, options, rules) as f: await f.fetch(url)`.

    `renderer` replaces the browser (tests pass a fake); otherwise one is made from
    `options` on the first page to render, if Playwright and a browser are there.
    """

    def __init__(
        self,
        inner: PlainFetcher,
        mode: RenderMode,
        options: RenderOptions,
        rules: RequestRules,
        *,
        renderer: Renderer | None = None,
        learner: RenderLearner | None = None,
        warn: Callable[[str], None] = _stderr,
    ) -> None:
        self._inner = inner
        self._mode = mode
        self._options = options
        self._rules = rules
        self._renderer = renderer
        self._owned: BrowserRenderer | None = None
        self._unavailable: str | None = None
        self.learner = learner or RenderLearner()
        self._warn = warn
        self._warned = False
        self.rendered = 0  # pages rendered (counted in the run's summary)

    async def __aenter__(self) -> RenderingFetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        owned, self._owned = self._owned, None
        if owned is not None:
            await owned.close()

    async def fetch(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_redirects: int | None = None,
    ) -> FetchResult:
        static = await self._inner.fetch(url, headers=headers, max_redirects=max_redirects)
        if self._mode is RenderMode.NEVER or not static.ok or static.status != 200:
            return static
        # A redirect is crawled under its target's URL, and rendered there.
        if static.encoding is None or static.redirects:
            return static
        host = host_key(static.final_url)
        if (
            self._mode is RenderMode.AUTO
            and self.learner.mode(host) is not HostMode.RENDER
            and static.encoding.lower().replace("_", "-") not in WIDE_ENCODINGS
            and clearly_static(static.body)
        ):
            return static
        text = static.text or ""
        facts = page_facts(text)
        if self._mode is RenderMode.ALWAYS:
            choice = Choice(True, "always")
        else:
            choice = self.learner.choose(host, looks_client_rendered(facts))
        if not choice.render:
            return static
        renderer = self._get_renderer()
        if renderer is None:
            self._hint(host)
            return static
        try:
            rendered = await renderer.render(static)
        except BrowserUnavailable as exc:
            self._unavailable = str(exc)
            self._hint(host)
            return static
        self.rendered += 1
        if rendered.error_kind is ErrorKind.RENDER_FAILED:
            # The static HTML is all there is: the page is stored from it, with the note.
            return dataclasses.replace(static, error=f"{rendered.error_kind}: {rendered.error}")
        if rendered.error_kind is ErrorKind.RENDER_TIMEOUT:
            # What was rendered so far is the page (the static HTML if the DOM could not be
            # read): stored and parsed; the fetch keeps the timeout as its note.
            return dataclasses.replace(
                rendered, error_kind=None, error=f"{rendered.error_kind}: {rendered.error}"
            )
        if self._mode is RenderMode.AUTO:
            self.learner.update(host, facts, page_facts(rendered.text or ""))
        return rendered

    def _get_renderer(self) -> Renderer | None:
        if self._renderer is not None or self._unavailable is not None:
            return None if self._unavailable is not None else self._renderer
        if importlib.util.find_spec("playwright") is None:
            self._unavailable = "Playwright is not installed"
            return None
        # Imported only here, at the first page to render: the browser's modules (psutil
        # among them) are no part of a crawl that renders nothing.
        from crawler.render.chromium import find_browser

        o = self._options
        if o.cdp_url is None and find_browser(o.browser_path) is None:
            self._unavailable = (
                f"{o.browser_path} is not an executable"
                if o.browser_path
                else "no Chromium on PATH"
            )
            return None
        from crawler.render.browser import BrowserRenderer

        renderer = BrowserRenderer(o, self._rules)
        self._renderer = self._owned = renderer
        return renderer

    def _hint(self, host: str) -> None:
        if not self._warned:
            self._warned = True
            self._warn(HINT.format(host=host, why=self._unavailable or "none found"))
