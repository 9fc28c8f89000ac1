"""Fixture sites for crawls that render: a single-page app, a static site, a page never idle.

- The app (`/app`, `/app/`, `/app/p/N`): every route serves the same shell, an empty
  `<div id="root">` and `/app.js`; the script asks `/api/page?path=…` for the route's title,
  text and links and writes them into the page. Its router moves `/app` to `/app/` with
  `history.pushState` at load, and follows clicks on its links the same way. Without a
  browser a crawler finds no link and no text in it.
- The static site (`/static/N`): server-rendered pages with plenty of text, links and an
  analytics script, which a browser would show the same.
- `/busy`: a page whose script keeps a request open, so a render of it stays under way.

Every route counts its hits (`AppSite.hits`); nothing waits without bound.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer

APP_PAGES = 5  # /app/p/1 … /app/p/5
STATIC_PAGES = 6  # /static/1 … /static/6

SHELL = """<!doctype html><html><head><title>App</title></head>
<body><div id="root">Loading…</div>
<noscript>You need to enable JavaScript to run this app.</noscript>
<script src="/app.js"></script></body></html>"""

APP_JS = """
function show(path) {
  fetch("/api/page?path=" + encodeURIComponent(path)).then(r => r.json()).then(page => {
    document.title = page.title;
    const root = document.getElementById("root");
    root.textContent = "";
    const h1 = document.createElement("h1");
    h1.textContent = page.title;
    const p = document.createElement("p");
    p.textContent = page.text;
    root.append(h1, p);
    for (const [href, label] of page.links) {
      const a = document.createElement("a");
      a.href = href;
      a.textContent = label;
      a.addEventListener("click", e => {
        e.preventDefault(); history.pushState({}, "", href); show(href);
      });
      root.append(a);
    }
  });
}
if (location.pathname === "/app") history.pushState({}, "", "/app/");
show(location.pathname);
"""

BUSY = """<!doctype html><html><body><div id="root"></div><script>
document.getElementById("root").textContent = "busy";
function poll() { fetch("/poll").then(() => poll(), () => setTimeout(poll, 100)); }
poll();
</script></body></html>"""


def app_text(path: str) -> str:
    """The text the app writes into the page at `path`."""
    return f"Rendered words of {path}, written by the app's script after it loaded."


def app_links(path: str) -> list[tuple[str, str]]:
    if path in ("/app", "/app/"):
        return [(f"/app/p/{n}", f"Part {n}") for n in range(1, APP_PAGES + 1)]
    n = int(path.rsplit("/", 1)[1])
    links = [("/app/", "Home")]
    if n < APP_PAGES:
        links.append((f"/app/p/{n + 1}", f"Part {n + 1}"))
    return links


def app_paths() -> set[str]:
    """Every page of the app a crawl from /app must store."""
    return {"/app", "/app/", *(f"/app/p/{n}" for n in range(1, APP_PAGES + 1))}


def static_page(n: int) -> str:
    paragraphs = "".join(
        f"<p>Paragraph {k} of static page {n}, whose server sends all of its words.</p>"
        for k in range(30)
    )
    links = "".join(
        f'<a href="/static/{k}">static {k}</a> ' for k in range(1, STATIC_PAGES + 1) if k != n
    )
    return (
        f"<!doctype html><html><head><title>Static {n}</title>"
        "<script>window.analytics = {queue: []};</script></head>"
        f"<body><h1>Static page {n}</h1>{paragraphs}<nav>{links}</nav></body></html>"
    )


def static_paths() -> set[str]:
    return {f"/static/{n}" for n in range(1, STATIC_PAGES + 1)}


@dataclass
class AppSite:
    hits: Counter[str] = field(default_factory=Counter)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    polled: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/app", self._shell)
        app.router.add_get("/app/", self._shell)
        app.router.add_get("/app/p/{n:[0-9]+}", self._shell)
        app.router.add_get("/app.js", self._script)
        app.router.add_get("/api/page", self._page)
        app.router.add_get("/static/{n:[0-9]+}", self._static)
        app.router.add_get("/busy", self._busy)
        app.router.add_get("/poll", self._poll)
        return app  # anything else: aiohttp's 404 (robots.txt included)

    async def _shell(self, request: web.Request) -> web.Response:
        self.hits[request.path] += 1
        return web.Response(text=SHELL, content_type="text/html")

    async def _script(self, request: web.Request) -> web.Response:
        self.hits[request.path] += 1
        return web.Response(text=APP_JS, content_type="text/javascript")

    async def _page(self, request: web.Request) -> web.Response:
        self.hits[request.path] += 1
        path = request.query.get("path", "")
        if path not in app_paths():
            raise web.HTTPNotFound()
        title = "Home" if path in ("/app", "/app/") else f"Part {path.rsplit('/', 1)[1]}"
        return web.json_response({"title": title, "text": app_text(path), "links": app_links(path)})

    async def _static(self, request: web.Request) -> web.Response:
        self.hits[request.path] += 1
        n = int(request.match_info["n"])
        if not 1 <= n <= STATIC_PAGES:
            raise web.HTTPNotFound()
        return web.Response(text=static_page(n), content_type="text/html")

    async def _busy(self, request: web.Request) -> web.Response:
        self.hits[request.path] += 1
        return web.Response(text=BUSY, content_type="text/html")

    async def _poll(self, request: web.Request) -> web.Response:
        self.hits[request.path] += 1
        self.polled.set()
        try:
            async with asyncio.timeout(60):
                await self.stop.wait()
        except TimeoutError:
            pass
        return web.Response(text="{}", content_type="application/json")


@asynccontextmanager
async def serve_app_site() -> AsyncIterator[tuple[AppSite, str]]:
    """The site on 127.0.0.1, and its base URL (no trailing slash)."""
    site = AppSite()
    server = TestServer(site.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield site, str(server.make_url("")).rstrip("/")
    finally:
        site.stop.set()
        await server.close()
