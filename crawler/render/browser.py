"""Headless Chromium through Playwright: the one module that imports playwright.

`BrowserRenderer` is an async context manager that owns Playwright's driver, one browser and
a small pool of tabs (`RenderOptions.concurrency`), each in its own browser context that is
replaced after `recycle_after` renders, or at once after a render that timed out or failed.
The browser starts on the first render, so a crawl that renders nothing starts none; it is
the system's Chromium (chromium.py launches it so it dies with the driver), or a running
browser attached over CDP (`--browser-cdp-url`: its contexts are closed, not the browser).

`render(static)` serves the page's own document from the static fetch (the server is not
asked twice), lets the page run until DOMContentLoaded (`navigation_timeout`), then until it
has settled (settle.py: loaded, and network and DOM quiet; capped by `settle_timeout`), and
returns the DOM as a `RenderedResult`. Every
other request goes through `RequestRules` and a per-page cap; images, media and fonts are
refused; further navigations of the tab, popups, dialogs and downloads are refused or
dismissed; service workers are blocked (their requests would bypass the rules). WebSockets
are refused: the request rules do not see them, a page served from the static fetch could
not open them anyway (Chromium fails them, as tried), and they keep a page busy. Failures
become `render_timeout` / `render_failed` results, never exceptions, except
`BrowserUnavailable` when no browser can be started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from playwright.async_api import (
    Browser,
    BrowserContext,
    Dialog,
    Page,
    Playwright,
    Request,
    Route,
    WebSocketRoute,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from crawler.kinds import ErrorKind
from crawler.records import FetchResult
from crawler.render.chromium import Workdir, as_root, chromium_args, find_browser
from crawler.render.contract import (
    BrowserUnavailable,
    RenderedResult,
    RenderOptions,
    RequestRules,
)
from crawler.render.settle import INIT_SCRIPT, Traffic, settle

__all__ = ["BLOCKED_TYPES", "BrowserRenderer"]

BLOCKED_TYPES = frozenset({"image", "media", "font"})
_ANY = re.compile(".*")
_CLOSE_SECONDS = 10.0
MAX_LAUNCHES = 5  # a browser that keeps crashing is given up
_MESSAGE_MAX = 300


@dataclass(slots=True, eq=False)
class _Tab:
    """One tab of the pool, and what it knows about the render under way."""

    context: BrowserContext
    page: Page
    traffic: Traffic
    renders: int = 0
    document: FetchResult | None = None
    served: bool = False
    subrequests: int = 0
    refused: int = 0
    spoiled: bool = False  # a render timed out or failed: replace before the next one


class BrowserRenderer:
    """`async with BrowserRenderer(options, rules) as r: await r.render(static)`."""

    def __init__(self, options: RenderOptions, rules: RequestRules) -> None:
        self._options = options
        self._rules = rules
        self._lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(options.concurrency)
        self._idle: list[_Tab] = []
        self._busy: set[_Tab] = set()
        self._pw: Playwright | None = None
        self._browser: Browser | None = None
        self._workdir: Workdir | None = None
        self._closed = False
        self._launches = 0
        self.renders = 0

    async def __aenter__(self) -> BrowserRenderer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def workdir(self) -> Workdir | None:
        return self._workdir

    # --- the browser's life ----------------------------------------------------------------

    async def _ensure_browser(self) -> Browser:
        if self._closed:
            raise BrowserUnavailable("the renderer is closed")
        async with self._lock:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            await self._stop_browser()
            if self._launches >= MAX_LAUNCHES:
                raise BrowserUnavailable(f"the browser was lost {self._launches} times")
            self._launches += 1
            try:
                self._browser = await self._start()
            except PlaywrightError as exc:
                await self._stop_browser()
                raise BrowserUnavailable(f"cannot start the browser: {_one_line(exc)}") from None
            except BaseException:
                await self._stop_browser()
                raise
            return self._browser

    async def _start(self) -> Browser:
        o = self._options
        executable = None
        if o.cdp_url is None:
            executable = find_browser(o.browser_path)
            if executable is None:
                raise BrowserUnavailable(
                    f"no browser at {o.browser_path}"
                    if o.browser_path
                    else "no Chromium on PATH (install it, or give --browser-path)"
                )
        self._workdir = Workdir()
        # Playwright's driver puts the browser profile in its temp folder: make that ours.
        # (The driver copies the environment when it starts, at the top of start(); Python's
        # own tempfile has cached its folder already.)
        saved = os.environ.get("TMPDIR")
        os.environ["TMPDIR"] = str(self._workdir.path)
        try:
            self._pw = await async_playwright().start()
        finally:
            if saved is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = saved
        if o.cdp_url is not None:
            return await self._pw.chromium.connect_over_cdp(
                o.cdp_url, timeout=o.navigation_timeout * 1000
            )
        assert executable is not None
        return await self._pw.chromium.launch(
            executable_path=self._workdir.launcher(executable),
            args=chromium_args(),
            headless=True,
            chromium_sandbox=not as_root(),
            timeout=o.navigation_timeout * 1000,
        )

    async def _stop_browser(self) -> None:
        """Close tabs, browser and driver (each step bounded), then clean the workdir."""
        tabs = [*self._idle, *self._busy]
        self._idle.clear()
        for tab in tabs:
            await _bounded(tab.context.close())
        browser, self._browser = self._browser, None
        if browser is not None:
            await _bounded(browser.close())
        pw, self._pw = self._pw, None
        if pw is not None:
            await _bounded(pw.stop())
        workdir, self._workdir = self._workdir, None
        if workdir is not None:
            workdir.close()

    async def close(self) -> None:
        """Shut the browser down (idempotent). Runs even when the task is being cancelled."""
        self._closed = True
        async with self._lock:
            await asyncio.shield(self._stop_browser())

    # --- the tab pool ------------------------------------------------------------------------

    async def _new_tab(self, browser: Browser) -> _Tab:
        o = self._options
        context = await browser.new_context(
            user_agent=o.user_agent,
            accept_downloads=False,
            service_workers="block",
            java_script_enabled=True,
        )
        try:
            await context.add_init_script(INIT_SCRIPT)
            page = await context.new_page()
            tab = _Tab(context, page, Traffic(page))
            await context.route("**/*", lambda route, request: self._route(tab, route, request))
            await context.route_web_socket(_ANY, lambda ws: self._route_socket(tab, ws))
            context.on("page", lambda other: None if other is page else _spawn(other.close()))
            page.on("dialog", _dismiss)
            page.set_default_timeout(o.navigation_timeout * 1000)
        except BaseException:
            await _bounded(context.close())
            raise
        return tab

    async def _take_tab(self) -> _Tab:
        browser = await self._ensure_browser()
        while self._idle:
            tab = self._idle.pop()
            if tab.spoiled or tab.renders >= self._options.recycle_after or tab.page.is_closed():
                await _bounded(tab.context.close())
                continue
            break
        else:
            tab = await self._new_tab(browser)
        self._busy.add(tab)
        return tab

    def _give_back(self, tab: _Tab) -> None:
        self._busy.discard(tab)
        tab.document = None
        if self._closed or tab.spoiled:
            _spawn(_bounded(tab.context.close()))
        else:
            self._idle.append(tab)

    # --- one render ------------------------------------------------------------------------

    async def render(self, static: FetchResult) -> RenderedResult:
        """The page of `static` (an HTML 200) as the browser shows it."""
        async with self._slots:
            tab = await self._take_tab()
            try:
                return await self._render_in(tab, static)
            except BaseException:  # cancelled half-way: the tab is in an unknown state
                tab.spoiled = True
                raise
            finally:
                self._give_back(tab)

    async def _render_in(self, tab: _Tab, static: FetchResult) -> RenderedResult:
        o = self._options
        started = time.perf_counter()
        tab.renders += 1
        self.renders += 1
        tab.document, tab.served, tab.subrequests, tab.refused = static, False, 0, 0
        tab.traffic.reset()
        kind: ErrorKind | None = None
        message: str | None = None
        html: str | None = None
        try:
            await tab.page.goto(
                static.final_url,
                wait_until="domcontentloaded",
                timeout=o.navigation_timeout * 1000,
            )
            if not await settle(tab.page, tab.traffic, o.settle_timeout):
                kind = ErrorKind.RENDER_TIMEOUT
                message = f"the page was still busy after {o.settle_timeout:g} s"
        except PlaywrightTimeout:
            kind = ErrorKind.RENDER_TIMEOUT
            message = f"the page did not load within {o.navigation_timeout:g} s"
        except PlaywrightError as exc:
            kind, message = ErrorKind.RENDER_FAILED, _one_line(exc)
        if kind is not ErrorKind.RENDER_FAILED:
            html = await self._read_dom(tab)
            if html is None and kind is None:
                kind = ErrorKind.RENDER_TIMEOUT
                message = f"the page's DOM could not be read within {o.read_timeout:g} s"
        if kind is not None:
            tab.spoiled = True
        body = static.body if html is None else html.encode("utf-8", "replace")
        encoding = static.encoding if html is None else "utf-8"
        if len(body) > o.max_html_bytes:
            body, encoding = static.body, static.encoding
        return RenderedResult(
            url=static.url,
            final_url=static.final_url,
            status=static.status,
            content_type=static.content_type,
            headers=static.headers,
            body=body,
            encoding=encoding,
            elapsed_ms=static.elapsed_ms + int((time.perf_counter() - started) * 1000),
            redirects=static.redirects,
            error_kind=kind,
            error=message,
            retryable=False,
            static_body=static.body,
            subrequests=tab.subrequests,
            refused=tab.refused,
            browser_url=tab.page.url if not tab.page.is_closed() else static.final_url,
        )

    async def _read_dom(self, tab: _Tab) -> str | None:
        """The page's HTML now, or None when the page does not answer (a script loop)."""
        try:
            async with asyncio.timeout(self._options.read_timeout):
                return await tab.page.content()
        except (TimeoutError, PlaywrightError):
            tab.spoiled = True
            return None

    async def _route(self, tab: _Tab, route: Route, request: Request) -> None:
        """Decide one request of a tab's page: serve, continue or abort it."""
        try:
            document = tab.document
            if request.frame.page is not tab.page:  # a popup: closed as it opens
                await route.abort("blockedbyclient")
                return
            if request.is_navigation_request() and request.frame.parent_frame is None:
                # The tab's first navigation is the goto to the document (Chromium may spell
                # its URL otherwise: an IDN, escapes): answer it with the static body.
                if document is not None and not tab.served:
                    tab.served = True
                    await route.fulfill(
                        status=document.status or 200,
                        content_type="text/html; charset=utf-8",
                        body=(document.text or "").encode("utf-8", "replace"),
                    )
                    return
                # The page navigating itself elsewhere (location = ...): not followed.
                tab.refused += 1
                await route.abort("blockedbyclient")
                return
            if document is None or request.resource_type in BLOCKED_TYPES:
                await route.abort("blockedbyclient")
                return
            if tab.subrequests >= self._options.max_subrequests:
                tab.refused += 1
                await route.abort("blockedbyclient")
                return
            reason = await self._rules.refuse(request.url, document.final_url)
            if reason is not None:
                tab.refused += 1
                await route.abort("blockedbyclient")
                return
            tab.subrequests += 1
            await route.continue_()
        except PlaywrightError:
            return  # the page closed while deciding: nothing to do

    async def _route_socket(self, tab: _Tab, ws: WebSocketRoute) -> None:
        """A WebSocket of a tab's page: refused (see the module's docstring)."""
        tab.refused += 1
        with contextlib.suppress(PlaywrightError):
            await ws.close()


async def _dismiss(dialog: Dialog) -> None:
    with contextlib.suppress(PlaywrightError):
        await dialog.dismiss()


_BACKGROUND: set[asyncio.Task[None]] = set()


def _spawn(coro: Coroutine[Any, Any, None]) -> None:
    """Run a clean-up coroutine in the background, keeping a reference until it ends."""
    task = asyncio.ensure_future(coro)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


async def _bounded(call: Awaitable[object]) -> None:
    """Await a close call, giving up after a while; its errors are of no interest."""
    with contextlib.suppress(PlaywrightError, TimeoutError, OSError):
        async with asyncio.timeout(_CLOSE_SECONDS):
            await call


def _one_line(exc: BaseException) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 1] + "…"
