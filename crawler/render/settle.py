"""When a rendered page is done: the settle rule of browser.py.

A page is settled once it has loaded (`document.readyState` is "complete"), no request of its
tab has been in flight for `QUIET_SECONDS`, and its DOM has had no node or text added,
removed or changed for `QUIET_SECONDS` (a `MutationObserver` that `INIT_SCRIPT` installs in
every document before the page's own scripts). Attribute changes are not counted: an
animation that moves a style every frame would otherwise keep a finished page busy. The wait
is capped by the caller (`settle_timeout`); a page still busy then is read as it is.

This replaces Playwright's "networkidle" (500 ms without any network connection), which made
every page wait half a second after its last request even when its DOM was complete. The DOM
half of the rule keeps a script that renders a little after its last response (a timer, a
promise chain) from being cut short.

`Traffic` counts a tab's requests in flight from its page's request events (`request`,
then `requestfinished` or `requestfailed`; a request our route handler aborts fails at once).
The page's, not the context's: a popup, closed as it opens, would leave its request open.
"""

from __future__ import annotations

import asyncio
import time

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Request

__all__ = ["INIT_SCRIPT", "QUIET_SECONDS", "Traffic", "settle"]

# Long enough to cover a script's own hops between a response and the next request or DOM
# write (a microtask chain, a setTimeout(0), a render batched to the next frame, about 16 ms),
# even on a busy machine; short enough that it costs a page little: the rule waits it once
# after the page's last activity.
QUIET_SECONDS = 0.15

# The milliseconds since the document's content last changed, 0 until it has loaded. Defined
# non-writable before the page's scripts run, with its own references to what it uses.
INIT_SCRIPT = """(() => {
  const now = performance.now.bind(performance);
  let last = now();
  new MutationObserver(() => { last = now(); }).observe(
    document, {childList: true, characterData: true, subtree: true});
  Object.defineProperty(window, "__crawlerQuietMs", {
    value: () => (document.readyState === "complete" ? now() - last : 0),
  });
})();"""

_QUIET_MS = "window.__crawlerQuietMs ? window.__crawlerQuietMs() : Infinity"


class Traffic:
    """The requests of one tab's page in flight, and when that last changed."""

    def __init__(self, page: Page) -> None:
        self._open: set[Request] = set()
        self.changed = time.monotonic()
        page.on("request", self._start)
        page.on("requestfinished", self._end)
        page.on("requestfailed", self._end)

    @property
    def in_flight(self) -> int:
        return len(self._open)

    def reset(self) -> None:
        """Forget the previous page's requests (a new render starts)."""
        self._open.clear()
        self.changed = time.monotonic()

    def _start(self, request: Request) -> None:
        self._open.add(request)
        self.changed = time.monotonic()

    def _end(self, request: Request) -> None:
        self._open.discard(request)
        self.changed = time.monotonic()


async def settle(page: Page, traffic: Traffic, cap: float) -> bool:
    """Wait until `page` has settled (see the module's docstring); False if not in `cap` s.

    Polls: the network from `traffic` at no cost, the DOM by one evaluation per check once
    the network is quiet (bounded: a page stuck in a script loop never answers).
    """
    deadline = time.monotonic() + cap
    while True:
        now = time.monotonic()
        left = deadline - now
        if left <= 0:
            return False
        if traffic.in_flight:
            wait = QUIET_SECONDS / 3
        else:
            wait = traffic.changed + QUIET_SECONDS - now
            if wait <= 0:
                try:
                    async with asyncio.timeout(left):
                        quiet_ms = float(await page.evaluate(_QUIET_MS))
                except TimeoutError:
                    return False
                except PlaywrightError:  # the page went away: nothing more to wait for
                    return True
                wait = QUIET_SECONDS - quiet_ms / 1000
                if wait <= 0:
                    return True
        await asyncio.sleep(min(wait, left))
