"""A local fixture site for the render tests: pages that need JavaScript, and nasty ones.

Every route counts its hits (`Site.hits`), so a test can tell that the browser did not ask
for something. Nothing here waits without bound: the long poll gives up after a minute.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer

ITEMS = [
    {
        "href": f"/spa/item/{n}",
        "title": f"Item {n}",
        "text": f"Item {n} is a rendered paragraph with enough words to count as text.",
    }
    for n in range(30)
]

SPA = """<!doctype html><html><head><title>App</title></head>
<body><div id="app">Loading…</div>
<noscript>You need to enable JavaScript to run this app.</noscript>
<script>
const routes = {"/spa/": "Home", "/spa/about": "About us"};
function show(path) {
  const root = document.getElementById("app");
  root.textContent = "";
  const h1 = document.createElement("h1");
  h1.textContent = routes[path] || "Not found";
  root.append(h1);
  fetch("/api/items").then(r => r.json()).then(items => {
    for (const item of items) {
      const p = document.createElement("p");
      p.textContent = item.text;
      const a = document.createElement("a");
      a.href = item.href;
      a.textContent = item.title;
      a.addEventListener("click", e => {
        e.preventDefault(); history.pushState({}, "", item.href); show(item.href);
      });
      root.append(p, a);
    }
    document.body.dataset.ready = "1";
  });
}
// The router: /spa is the app's entry, moved to /spa/ without a navigation.
if (location.pathname === "/spa") history.pushState({}, "", "/spa/");
show(location.pathname);
</script></body></html>"""

STATIC = (
    "<!doctype html><html><head><title>Plain</title>"
    "<script>window.analytics = 1;</script></head><body><h1>A plain page</h1>"
    + "".join(
        f"<p>Paragraph {n} of a page whose server sends all of its text.</p>" for n in range(20)
    )
    + '<a href="/static/next">next</a><img src="/img.png"></body></html>'
)

BUSY = """<!doctype html><html><body><div id="root"></div><script>
document.getElementById("root").innerHTML = "<p>busy page text</p><a href='/busy/more'>more</a>";
function poll() { fetch("/poll").then(() => poll(), () => setTimeout(poll, 100)); }
poll();
</script></body></html>"""

LOOP = """<!doctype html><html><body><div id="root"></div><script>
while (true) {}
</script><p>never reached</p></body></html>"""

DIALOGS = """<!doctype html><html><body><div id="root"></div><script>
alert("hello");
confirm("sure?");
prompt("name?");
window.open("/popup-target");
window.onbeforeunload = () => "stay";
document.getElementById("root").innerHTML = "<p>after the dialogs</p>";
</script></body></html>"""

IMAGES = """<!doctype html><html><body><div id="root"></div>
<img src="/img.png"><video src="/movie.mp4"></video>
<style>@font-face { font-family: x; src: url(/font.woff2); } p { font-family: x; }</style>
<script>document.getElementById("root").innerHTML = "<p>images page</p>";</script>
</body></html>"""

# Written in steps a timer apart, after its one request: no network between the steps.
TIMERS = """<!doctype html><html><body><div id="root"></div><script>
const root = document.getElementById("root");
let step = 0;
function more() {
  const p = document.createElement("p"); p.textContent = "timer step " + step; root.append(p);
  if (++step < 8) setTimeout(more, 40);
}
fetch("/api/items").then(() => setTimeout(more, 40));
</script></body></html>"""

# A DOM that never stops changing (a ticker), with no network at all.
TICKER = """<!doctype html><html><body><p>ticker page text</p><div id="tick"></div><script>
const tick = document.getElementById("tick");
setInterval(() => { tick.textContent = "tick " + Date.now(); }, 20);
</script></body></html>"""


PRIVATE = """<!doctype html><html><body><div id="root"></div><script>
const root = document.getElementById("root");
function note(name, ok) {
  const p = document.createElement("p"); p.textContent = name + ":" + ok; root.append(p);
}
fetch("/api/items").then(() => note("own", "ok"), () => note("own", "refused"));
fetch("OTHER/secret").then(() => note("other", "ok"), () => note("other", "refused"));
fetch("http://169.254.169.254/latest/meta-data/").then(
  () => note("metadata", "ok"), () => note("metadata", "refused"));
fetch("/robots-disallowed/data").then(() => note("robots", "ok"), () => note("robots", "refused"));
function socket(name, url) {
  let opened = false;
  const ws = new WebSocket(url);
  ws.onmessage = () => { opened = true; note(name, "ok"); ws.close(); };
  ws.onclose = () => { if (!opened) note(name, "refused"); };
}
socket("ownws", location.origin.replace("http", "ws") + "/ws");
socket("otherws", "OTHER/ws".replace("http", "ws"));
const work = "fetch('OTHER/worker').then(() => postMessage('ok'), () => postMessage('refused'))";
const worker = new Worker(URL.createObjectURL(new Blob([work], {type: "text/javascript"})));
worker.onmessage = e => note("worker", e.data);
</script></body></html>"""


def private_page(other: str) -> str:
    """A page whose scripts ask for their own host, another private address, the metadata
    address and a path robots.txt disallows, by fetch, WebSocket and from a worker."""
    return PRIVATE.replace("OTHER", other)


@dataclass
class Site:
    """The fixture server and its hit counts."""

    hits: Counter[str] = field(default_factory=Counter)
    other: str = ""  # a second server, on another private address, that nothing should reach
    other_hits: Counter[str] = field(default_factory=Counter)  # its hits
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application()
        html = {
            "/spa": SPA,
            "/spa/": SPA,
            "/static": STATIC,
            "/busy": BUSY,
            "/loop": LOOP,
            "/dialogs": DIALOGS,
            "/images": IMAGES,
            "/timers": TIMERS,
            "/ticker": TICKER,
        }
        for path, body in html.items():
            app.router.add_get(path, self._html(body))
        app.router.add_get("/private", self._private)
        app.router.add_get("/api/items", self._items)
        app.router.add_get("/poll", self._poll)
        app.router.add_get("/ws", self._socket)
        app.router.add_get("/{tail:.*}", self._other)
        return app

    def _html(self, body: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            self.hits[request.path] += 1
            return web.Response(text=body, content_type="text/html")

        return handler

    async def _private(self, request: web.Request) -> web.Response:
        self.hits[request.path] += 1
        return web.Response(text=private_page(self.other), content_type="text/html")

    async def _items(self, request: web.Request) -> web.Response:
        self.hits[request.path] += 1
        return web.json_response(ITEMS)

    async def _poll(self, request: web.Request) -> web.Response:
        self.hits[request.path] += 1
        try:
            async with asyncio.timeout(60):
                await self.stop.wait()
        except TimeoutError:
            pass
        return web.Response(text="{}", content_type="application/json")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        self.hits[request.path] += 1
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("hi")
        await ws.close()
        return ws

    async def _other(self, request: web.Request) -> web.Response:
        self.hits[request.path] += 1
        return web.Response(text="x", content_type="text/plain")


async def start(site: Site, host: str = "127.0.0.1") -> TestServer:
    server = TestServer(site.app(), host=host)
    await server.start_server()
    return server
