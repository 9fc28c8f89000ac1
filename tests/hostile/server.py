"""A hostile web server for tests: more than fifty ways to misbehave, each bounded.

`serve()` starts, in the caller's event loop and on 127.0.0.1 port 0:

- an aiohttp.web app for what well-formed HTTP can still do wrong: slow, trickling and
  endless bodies, compression bombs, redirect loops, chains and odd schemes, redirects to
  private addresses, bad encodings, huge or deeply nested HTML, link traps, rate limits,
  failing robots.txt files;
- a raw asyncio socket server for what aiohttp.web will not send: broken framing, bad status
  lines, huge or endless headers, dropped connections, garbage;
- one tiny site per robots.txt variant (500, 429, timeout, redirect loop, 2 MB, garbage), since
  robots.txt is per origin, each with a /sitemap.xml listing its /page;
- a site whose every page answers 503 with a Retry-After of two hours (the crawl leaves such a
  host for the next run, so it has an origin of its own).

Its index page (`/` of the web app) links every endpoint, so a crawl from it meets them all.
`ENDPOINTS` says what each one does and what a fetch of it must come back with, for the tests
in this folder. Nothing runs forever: endless bodies stop after 50 MB or 60 s, waits end when
the server closes, and handlers are cancelled when the client hangs up.

`serve_in_subprocess()` runs the same servers in a child process (`python -m
tests.hostile.server`, which prints the base URLs as one JSON line and serves until its stdin
closes). The tests use it: a crawler that blocks its event loop for a moment (parsing 20000
nested divs takes lexbor up to a second) would otherwise stall the servers too, and
turn a slow answer into a spurious timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import json
import sys
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from time import time

from aiohttp import web

KIB = 1024
MIB = 1024 * KIB
REPO = Path(__file__).resolve().parents[2]  # where `tests` is importable from

# Server-side bounds: nothing here outlives these, even if the client never hangs up.
MAX_STREAM_BYTES = 50 * MIB
MAX_STREAM_SECONDS = 60.0
MAX_WAIT_SECONDS = 30.0

HTML = "text/html"
HTML_UTF8 = "text/html; charset=utf-8"

CLOSING = web.AppKey("closing", asyncio.Event)
BASES = web.AppKey("bases", dict)  # server name -> base URL, for links between servers


@dataclass(frozen=True)
class Endpoint:
    """One hostile behaviour: where it is, and what a fetch of it must return.

    `kind` is the expected error_kind (None: a completed exchange) and `status` the expected
    HTTP status (None: not checked; mostly "no response came"). `server` is "web", "raw" or
    the name of a robots.txt site.
    """

    path: str
    server: str
    kind: str | None
    status: int | None
    what: str


# --- payloads, built once ----------------------------------------------------------------


@functools.cache
def gzip_bomb() -> bytes:
    """64 MiB of zeros, gzipped to about 64 KiB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MIB)
    return b"".join(packer.compress(zeros) for _ in range(64)) + packer.flush()


@functools.cache
def deflate_bomb() -> bytes:
    """64 MiB of zeros, zlib-wrapped deflate (what Content-Encoding: deflate means)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS)
    zeros = bytes(MIB)
    return b"".join(packer.compress(zeros) for _ in range(64)) + packer.flush()


@functools.cache
def deep_nesting(depth: int = 20_000) -> bytes:
    return b"<!doctype html><title>deep</title>" + b"<div>" * depth + b"x" + b"</div>" * depth


@functools.cache
def many_links(count: int = 100_000) -> bytes:
    # Links to a host outside the crawl's scope: stored, not followed.
    links = "".join(f"<a href=//elsewhere.invalid/{n}>{n}</a>\n" for n in range(count))
    return f"<!doctype html><title>links</title>{links}".encode()


@functools.cache
def big_robots(size: int = 2 * MIB) -> bytes:
    line = b"Disallow: /nothing-here/" + b"x" * 40 + b"\n"
    head = b"User-agent: *\n"
    return head + line * ((size - len(head)) // len(line))


GARBAGE = bytes(range(256)) * 16
X_GZIP = gzip.compress(b"<p>gzip under another name</p>")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


# --- the aiohttp.web app -----------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page(body: str | bytes, content_type: str = HTML_UTF8, **headers: str) -> web.Response:
    data = body.encode() if isinstance(body, str) else body
    return web.Response(body=data, headers={"Content-Type": content_type, **headers})


def redirect(location: str, status: int = 302) -> web.Response:
    return web.Response(status=status, headers={"Location": location})


async def wait_closing(request: web.Request, seconds: float = MAX_WAIT_SECONDS) -> None:
    """Sleep until the server closes (or `seconds`); the client is meant to give up first."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await request.app[CLOSING].wait()


async def stream(
    request: web.Request, chunk: bytes, pause: float, content_type: str = HTML
) -> web.StreamResponse:
    """Send `chunk` every `pause` seconds until the client leaves or a server bound is hit."""
    resp = web.StreamResponse(headers={"Content-Type": content_type})
    await resp.prepare(request)
    sent = 0
    started = asyncio.get_running_loop().time()
    closing = request.app[CLOSING]
    with contextlib.suppress(ConnectionError):
        while sent < MAX_STREAM_BYTES and not closing.is_set():
            if asyncio.get_running_loop().time() - started > MAX_STREAM_SECONDS:
                break
            await resp.write(chunk)
            sent += len(chunk)
            if pause:
                await asyncio.sleep(pause)
    return resp


async def index(request: web.Request) -> web.Response:
    """Links to every endpoint of every server, and a link the robots.txt disallows."""
    bases = request.app[BASES]
    links = [f'<a href="{bases[e.server]}{e.path}">{e.what}</a>' for e in ENDPOINTS]
    links.append('<a href="/private/secret">disallowed by robots.txt</a>')
    body = "<!doctype html><title>hostile</title><ul>\n<li>" + "\n<li>".join(links) + "\n</ul>"
    return page(body)


async def ok(request: web.Request) -> web.Response:
    return page("<!doctype html><title>ok</title><p>a well-behaved page</p>")


async def robots(request: web.Request) -> web.Response:
    return page("User-agent: *\nDisallow: /private/\n", "text/plain")


async def slow_body(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": HTML})
    await resp.prepare(request)
    await resp.write(b"<html><body>a start, then nothing")
    await wait_closing(request)
    return resp


async def slow_start(request: web.Request) -> web.Response:
    """No status line at all until the wait is over."""
    await wait_closing(request)
    return page("<p>too late</p>")


async def trickle(request: web.Request) -> web.StreamResponse:
    """A byte every 100 ms: never trips the read timeout, only the total one."""
    return await stream(request, b"x", 0.1)


async def endless(request: web.Request) -> web.StreamResponse:
    return await stream(request, b"<p>" + b"a" * (64 * KIB - 3), 0)


async def endless_chunked_text(request: web.Request) -> web.StreamResponse:
    return await stream(request, b"b" * (64 * KIB), 0, "text/plain")


async def huge_body(request: web.Request) -> web.Response:
    return page(b"<p>" + b"h" * (16 * MIB))


async def gzip_bomb_page(request: web.Request) -> web.Response:
    return page(gzip_bomb(), HTML, **{"Content-Encoding": "gzip"})


async def deflate_bomb_page(request: web.Request) -> web.Response:
    return page(deflate_bomb(), HTML, **{"Content-Encoding": "deflate"})


async def bad_gzip(request: web.Request) -> web.Response:
    return page(b"this is not gzip at all" * 10, HTML, **{"Content-Encoding": "gzip"})


async def truncated_gzip(request: web.Request) -> web.Response:
    data = gzip.compress(b"<p>" + b"z" * 10_000 + b"</p>")
    return page(data[: len(data) // 2], HTML, **{"Content-Encoding": "gzip"})


async def redirect_loop_a(request: web.Request) -> web.Response:
    return redirect("/redirect-loop-b", 301)


async def redirect_loop_b(request: web.Request) -> web.Response:
    return redirect("/redirect-loop", 301)


async def redirect_self(request: web.Request) -> web.Response:
    return redirect(request.path, 307)


async def redirect_empty(request: web.Request) -> web.Response:
    return redirect("")


async def redirect_chain(request: web.Request) -> web.Response:
    n = int(request.match_info["n"])
    return redirect(f"/redirect-chain/{n - 1}") if n > 0 else await ok(request)


def redirect_to(location: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return redirect(location.format(port=request.url.port))

    return handler


async def wrong_charset(request: web.Request) -> web.Response:
    return page(b"<p>caf\xe9 cr\xe8me br\xfbl\xe9e</p>", "text/html; charset=utf-8")


async def undecodable(request: web.Request) -> web.Response:
    return page(b"<p>" + bytes(range(0x80, 0x100)) * 8 + b"</p>", "text/html; charset=utf-8")


async def utf16_no_bom(request: web.Request) -> web.Response:
    return page("<!doctype html><title>utf-16</title><p>wide</p>".encode("utf-16-le"), HTML)


async def bytes_codec_label(request: web.Request) -> web.Response:
    return page(b"<p>base64 is a codec, not a charset</p>", "text/html; charset=base64")


async def binary_html(request: web.Request) -> web.Response:
    return page(PNG, HTML)


async def nul_bytes(request: web.Request) -> web.Response:
    return page(
        b"<html><title>n\x00ul</title><body>a\x00b<a href='/ok\x00x'>l</a>\x00</body>", HTML
    )


async def garbage_content_type(request: web.Request) -> web.Response:
    return page(b"<p>?</p>", ";;;charset==;=;text/html")


async def empty(request: web.Request) -> web.Response:
    return page(b"", HTML)


async def deep(request: web.Request) -> web.Response:
    return page(deep_nesting())


async def links(request: web.Request) -> web.Response:
    return page(many_links())


async def trap(request: web.Request) -> web.Response:
    """Every page links one level deeper, relatively: /trap/a/, /trap/a/a/, ..."""
    return page('<!doctype html><title>trap</title><a href="a/">deeper</a><a href="b/a/">b</a>')


async def calendar(request: web.Request) -> web.Response:
    n = int(request.query.get("page", "0") or 0)
    return page(f'<title>page {n}</title><a href="?page={n + 1}">next</a>')


async def grow(request: web.Request) -> web.Response:
    q = request.query.get("q", "x")
    return page(f'<title>grow</title><a href="?q={q}{q}">more</a>')


async def status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    return web.Response(status=code, text=f"status {code}")


async def too_many_requests(request: web.Request) -> web.Response:
    return web.Response(status=429, text="slow down", headers={"Retry-After": "1"})


async def unavailable_until(request: web.Request) -> web.Response:
    return web.Response(
        status=503, text="later", headers={"Retry-After": formatdate(time() + 2, usegmt=True)}
    )


async def robots_status(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["code"]), text="no robots for you")


async def robots_timeout(request: web.Request) -> web.Response:
    await wait_closing(request)
    return page("User-agent: *\nDisallow:\n", "text/plain")


async def robots_loop(request: web.Request) -> web.Response:
    return redirect(request.path + "x" if len(request.path) < 200 else "/robots/loop.txt")


async def robots_big(request: web.Request) -> web.Response:
    return page(big_robots(), "text/plain")


async def robots_garbage(request: web.Request) -> web.Response:
    return page(GARBAGE, "text/plain")


# aiohttp routes; ENDPOINTS below names the URLs to fetch and what each must give.
WEB_ROUTES: list[tuple[str, Handler]] = [
    ("/", index),
    ("/robots.txt", robots),
    ("/ok", ok),
    ("/slow-body", slow_body),
    ("/slow-start", slow_start),
    ("/trickle", trickle),
    ("/endless", endless),
    ("/endless-text", endless_chunked_text),
    ("/huge-body", huge_body),
    ("/gzip-bomb", gzip_bomb_page),
    ("/deflate-bomb", deflate_bomb_page),
    ("/bad-gzip", bad_gzip),
    ("/truncated-gzip", truncated_gzip),
    ("/redirect-loop", redirect_loop_a),
    ("/redirect-loop-b", redirect_loop_b),
    ("/redirect-self", redirect_self),
    ("/redirect-empty", redirect_empty),
    ("/redirect-chain/{n}", redirect_chain),
    ("/redirect-ftp", redirect_to("ftp://127.0.0.1/file.txt")),
    ("/redirect-mailto", redirect_to("mailto:someone@example.invalid")),
    ("/redirect-javascript", redirect_to("javascript:alert(1)")),
    ("/redirect-data", redirect_to("data:text/html,<p>hi</p>")),
    ("/redirect-file", redirect_to("file:///etc/passwd")),
    ("/redirect-private", redirect_to("http://10.255.255.1/")),
    ("/redirect-metadata", redirect_to("http://169.254.169.254/latest/meta-data/")),
    ("/redirect-ipv6-loopback", redirect_to("http://[::1]:{port}/ok")),
    ("/redirect-localhost", redirect_to("http://localhost:{port}/ok")),
    ("/redirect-long", redirect_to("/ok?" + "l" * 5000)),
    ("/redirect-bad-port", redirect_to("http://127.0.0.1:99999/")),
    ("/redirect-bad-host", redirect_to("http://[not-ipv6/")),
    ("/wrong-charset", wrong_charset),
    ("/undecodable", undecodable),
    ("/utf16-no-bom", utf16_no_bom),
    ("/bytes-codec-label", bytes_codec_label),
    ("/binary-html", binary_html),
    ("/nul-bytes", nul_bytes),
    ("/garbage-content-type", garbage_content_type),
    ("/empty", empty),
    ("/deep-nesting", deep),
    ("/many-links", links),
    ("/trap/{tail:.*}", trap),
    ("/calendar", calendar),
    ("/grow", grow),
    ("/status/{code}", status),
    ("/429", too_many_requests),
    ("/503-until", unavailable_until),
    ("/robots/status-{code}.txt", robots_status),
    ("/robots/timeout.txt", robots_timeout),
    ("/robots/loop.txt{tail:x*}", robots_loop),
    ("/robots/big.txt", robots_big),
    ("/robots/garbage.txt", robots_garbage),
]


def make_app(closing: asyncio.Event, bases: dict[str, str]) -> web.Application:
    app = web.Application()
    app[CLOSING] = closing
    app[BASES] = bases
    for path, handler in WEB_ROUTES:
        app.router.add_get(path, handler)
    return app


# --- robots.txt sites: one origin per robots.txt behaviour ----------------------------------

ROBOTS_SITES: dict[str, Handler] = {
    "robots-500": robots_status,
    "robots-429": robots_status,
    "robots-timeout": robots_timeout,
    "robots-loop": robots_loop,
    "robots-big": robots_big,
    "robots-garbage": robots_garbage,
}


def make_robots_site(name: str, closing: asyncio.Event) -> web.Application:
    """A site whose /robots.txt misbehaves as `name` says; '/' and '/page' are plain pages."""
    app = web.Application()
    app[CLOSING] = closing
    app[BASES] = {}
    handler = ROBOTS_SITES[name]
    code = name.removeprefix("robots-")

    async def robots_txt(request: web.Request) -> web.StreamResponse:
        if handler is robots_status:
            return web.Response(status=int(code), text="no robots for you")
        return await handler(request)

    async def home(request: web.Request) -> web.Response:
        return page(f'<title>{name}</title><a href="/page">page</a>')

    app.router.add_get("/robots.txt{tail:x*}", robots_txt)
    app.router.add_get("/", home)
    app.router.add_get("/page", ok)
    app.router.add_get("/sitemap.xml", sitemap)
    return app


async def sitemap(request: web.Request) -> web.Response:
    """A sitemap listing the site's /page: read, it puts /page in the frontier."""
    loc = f"{request.scheme}://{request.host}/page"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{loc}</loc></url></urlset>"
    )
    return page(body, "application/xml")


LATER_SITE = "retry-after-hours"


def make_later_site(closing: asyncio.Event) -> web.Application:
    """Every page answers 503 with Retry-After: 7200 (two hours); there is no robots.txt."""
    app = web.Application()
    app[CLOSING] = closing
    app[BASES] = {}

    async def later(request: web.Request) -> web.Response:
        return web.Response(status=503, text="back in two hours", headers={"Retry-After": "7200"})

    async def no_robots(request: web.Request) -> web.Response:
        return web.Response(status=404, text="no robots.txt")

    app.router.add_get("/robots.txt", no_robots)
    app.router.add_get("/{tail:.*}", later)
    return app


# --- the raw socket server ---------------------------------------------------------------

RawHandler = Callable[[asyncio.StreamWriter, asyncio.Event], Awaitable[None]]


def canned(data: bytes, *, hang: bool = False) -> RawHandler:
    async def send(writer: asyncio.StreamWriter, closing: asyncio.Event) -> None:
        writer.write(data)
        await writer.drain()
        if hang:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(MAX_WAIT_SECONDS):
                    await closing.wait()

    return send


def dribble(data: bytes, pause: float) -> RawHandler:
    """Send `data` one byte at a time (a slowloris in reverse)."""

    async def send(writer: asyncio.StreamWriter, closing: asyncio.Event) -> None:
        for i in range(len(data)):
            if closing.is_set():
                return
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(pause)

    return send


async def endless_headers(writer: asyncio.StreamWriter, closing: asyncio.Event) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\n")
    for n in range(100_000):
        if closing.is_set():
            return
        writer.write(b"X-Endless-%d: v\r\n" % n)
        await writer.drain()


def ok_head(extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n" + extra


RAW_ROUTES: dict[str, RawHandler] = {
    "/robots.txt": canned(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
    "/slow-headers": canned(b"HTTP/1.1 200 OK\r\n", hang=True),
    "/slowloris-headers": dribble(ok_head(b"X-Slow: " + b"s" * 1000 + b"\r\n\r\n"), 0.1),
    "/drop-mid-body": canned(ok_head(b"Content-Length: 100000\r\n\r\n") + b"x" * 1000),
    "/drop-mid-chunked": canned(
        ok_head(b"Transfer-Encoding: chunked\r\n\r\n") + b"1000\r\n" + b"y" * 100
    ),
    "/bad-chunk": canned(
        ok_head(b"Transfer-Encoding: chunked\r\n\r\n") + b"zz\r\nnot a chunk\r\n0\r\n\r\n"
    ),
    "/huge-chunk-size": canned(
        ok_head(b"Transfer-Encoding: chunked\r\n\r\n") + b"fffffffffffffffffff\r\nabc"
    ),
    "/bad-status-line": canned(b"SPDY/9 weird\r\n\r\n"),
    "/no-status-line": canned(b"<html><p>HTTP/0.9 style, no headers at all</p></html>"),
    "/garbage": canned(GARBAGE),
    "/hang-up": canned(b""),
    "/huge-header": canned(
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (64 * KIB) + b"\r\nContent-Length: 0\r\n\r\n"
    ),
    "/huge-status-line": canned(b"HTTP/1.1 200 " + b"O" * (64 * KIB) + b"\r\n\r\n"),
    "/300-headers": canned(
        b"HTTP/1.1 200 OK\r\n"
        + b"".join(b"X-H%d: v\r\n" % i for i in range(300))
        + b"Content-Length: 0\r\n\r\n"
    ),
    "/endless-headers": endless_headers,
    "/negative-length": canned(ok_head(b"Content-Length: -5\r\n\r\nabc")),
    "/conflicting-length": canned(ok_head(b"Content-Length: 3\r\nContent-Length: 9\r\n\r\nabc")),
    "/header-without-colon": canned(ok_head(b"this is not a header\r\n\r\n")),
    "/binary-content-type": canned(
        b'HTTP/1.1 200 OK\r\nContent-Type: \xff\xfe/\x80; charset="\xc3\r\n'
        b"Content-Length: 8\r\n\r\n<p>?</p>"
    ),
    "/x-gzip": canned(
        ok_head(b"Content-Encoding: x-gzip\r\nContent-Length: %d\r\n\r\n" % len(X_GZIP)) + X_GZIP
    ),
    "/two-codings": canned(
        ok_head(b"Content-Encoding: gzip, gzip\r\nContent-Length: %d\r\n\r\n" % len(X_GZIP))
        + X_GZIP
    ),
    "/unknown-encoding": canned(
        ok_head(b"Content-Encoding: x-snappy-framed\r\nContent-Length: 5\r\n\r\nabcde")
    ),
}


class RawServer:
    """asyncio.start_server on 127.0.0.1:0; the request path picks a canned reply."""

    def __init__(self, routes: dict[str, RawHandler], closing: asyncio.Event | None = None) -> None:
        self.routes = routes
        self.closing = closing or asyncio.Event()
        self.handlers: set[asyncio.Future[None]] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self.server is None:
            return
        self.server.close()
        self.closing.set()  # waiting handlers return instead of being cancelled
        await asyncio.gather(*self.handlers)
        await self.server.wait_closed()

    async def __aenter__(self) -> str:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.handlers.add(done)
        try:
            async with asyncio.timeout(MAX_STREAM_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode("latin-1")
                handler = self.routes.get(path)
                if handler is None:
                    handler = canned(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                await handler(writer, self.closing)
        except (
            ConnectionError,
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            IndexError,  # a request line without a path
        ):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            done.set_result(None)
            self.handlers.discard(done)


# --- what a fetch of each endpoint must return -------------------------------------------

W, R = "web", "raw"
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("/ok", W, None, 200, "a well-behaved page (control)"),
    # time
    Endpoint("/slow-body", W, "timeout", 200, "headers, a few bytes, then silence"),
    Endpoint("/slow-start", W, "timeout", None, "accepts, then no response at all"),
    Endpoint("/trickle", W, "timeout", 200, "one byte every 100 ms, forever"),
    Endpoint("/slow-headers", R, "timeout", None, "a status line, then silence"),
    Endpoint("/slowloris-headers", R, "timeout", None, "headers one byte at a time"),
    # size
    Endpoint("/endless", W, "too_large", 200, "an endless HTML body"),
    Endpoint("/endless-text", W, "too_large", 200, "an endless text body"),
    Endpoint("/huge-body", W, "too_large", 200, "16 MiB with a Content-Length"),
    Endpoint("/gzip-bomb", W, "too_large", 200, "64 MiB of zeros, gzipped"),
    Endpoint("/deflate-bomb", W, "too_large", 200, "64 MiB of zeros, deflated"),
    Endpoint("/huge-header", R, "header_too_large", None, "a 64 KiB header"),
    Endpoint("/huge-status-line", R, "header_too_large", None, "a 64 KiB status line"),
    Endpoint("/300-headers", R, "header_too_large", None, "300 headers"),
    Endpoint("/endless-headers", R, "header_too_large", None, "headers that never end"),
    # framing
    Endpoint("/drop-mid-body", R, "bad_response", 200, "hangs up 1000 bytes into 100000"),
    Endpoint("/drop-mid-chunked", R, "bad_response", 200, "hangs up inside a chunk"),
    Endpoint("/bad-chunk", R, "bad_response", None, "a chunk size that is not hex"),
    Endpoint("/huge-chunk-size", R, "bad_response", None, "a chunk size of 2^76"),
    Endpoint("/bad-status-line", R, "bad_response", None, "SPDY/9 weird"),
    Endpoint("/no-status-line", R, "bad_response", None, "HTML with no status line"),
    Endpoint("/garbage", R, "bad_response", None, "binary garbage instead of HTTP"),
    Endpoint("/hang-up", R, "bad_response", None, "closes without a word"),
    Endpoint("/negative-length", R, "bad_response", None, "Content-Length: -5"),
    Endpoint("/conflicting-length", R, "bad_response", None, "two Content-Lengths"),
    Endpoint("/header-without-colon", R, "bad_response", None, "a header line without ':'"),
    # content encodings
    Endpoint("/bad-gzip", W, "bad_content", 200, "Content-Encoding: gzip, not gzip"),
    # aiohttp notices a truncated deflate stream, not a gzip one: like a browser, the
    # crawler keeps what decodes.
    Endpoint("/truncated-gzip", W, None, 200, "half a gzip stream"),
    Endpoint("/unknown-encoding", R, "bad_content", 200, "an encoding nobody offered"),
    Endpoint("/x-gzip", R, "bad_content", 200, "Content-Encoding: x-gzip"),
    Endpoint("/two-codings", R, "bad_content", 200, "Content-Encoding: gzip, gzip"),
    # redirects
    Endpoint("/redirect-loop", W, "too_many_redirects", 301, "a -> b -> a"),
    Endpoint("/redirect-self", W, "too_many_redirects", 307, "a redirect to itself"),
    Endpoint("/redirect-empty", W, "too_many_redirects", 302, "Location: (empty)"),
    Endpoint("/redirect-chain/20", W, "too_many_redirects", 302, "20 redirects in a row"),
    Endpoint("/redirect-ftp", W, "bad_redirect", 302, "to ftp:"),
    Endpoint("/redirect-mailto", W, "bad_redirect", 302, "to mailto:"),
    Endpoint("/redirect-javascript", W, "bad_redirect", 302, "to javascript:"),
    Endpoint("/redirect-data", W, "bad_redirect", 302, "to data:"),
    Endpoint("/redirect-file", W, "bad_redirect", 302, "to file:"),
    Endpoint("/redirect-bad-port", W, "bad_redirect", None, "to port 99999"),
    Endpoint("/redirect-bad-host", W, "bad_redirect", 302, "to http://[not-ipv6/"),
    Endpoint("/redirect-long", W, "url_too_long", 302, "to a 5000-character URL"),
    Endpoint("/redirect-private", W, "blocked_address", 302, "to http://10.255.255.1/"),
    Endpoint("/redirect-metadata", W, "blocked_address", 302, "to 169.254.169.254"),
    Endpoint("/redirect-ipv6-loopback", W, "blocked_address", 302, "to http://[::1]/"),
    Endpoint("/redirect-localhost", W, "blocked_address", None, "to localhost (a name)"),
    # encodings and markup
    Endpoint("/wrong-charset", W, None, 200, "latin-1 bytes labelled utf-8"),
    Endpoint("/undecodable", W, None, 200, "bytes no charset decodes"),
    Endpoint("/utf16-no-bom", W, None, 200, "UTF-16 without a BOM or label"),
    Endpoint("/bytes-codec-label", W, None, 200, "charset=base64"),
    Endpoint("/binary-html", W, None, 200, "a PNG labelled text/html"),
    Endpoint("/nul-bytes", W, None, 200, "NUL bytes in HTML"),
    Endpoint("/garbage-content-type", W, None, 200, "a Content-Type of punctuation"),
    Endpoint("/binary-content-type", R, None, 200, "a Content-Type of binary bytes"),
    Endpoint("/empty", W, None, 200, "an empty HTML body"),
    Endpoint("/deep-nesting", W, None, 200, "20000 nested divs"),
    Endpoint("/many-links", W, None, 200, "100000 links"),
    # link traps
    Endpoint("/trap/", W, None, 200, "relative links one level deeper, forever"),
    Endpoint("/calendar?page=0", W, None, 200, "next page, forever"),
    Endpoint("/grow?q=x", W, None, 200, "an ever-longer query"),
    # statuses
    Endpoint("/status/500", W, None, 500, "always 500"),
    Endpoint("/status/404", W, None, 404, "not found"),
    Endpoint("/429", W, None, 429, "429 with Retry-After: 1"),
    Endpoint("/503-until", W, None, 503, "503 with Retry-After as an HTTP date"),
    # robots.txt files, fetched as pages (the robots sites below serve them as robots.txt)
    Endpoint("/robots/status-500.txt", W, None, 500, "robots.txt: 500"),
    Endpoint("/robots/timeout.txt", W, "timeout", None, "robots.txt: never answers"),
    Endpoint("/robots/loop.txt", W, "too_many_redirects", 302, "robots.txt: redirect loop"),
    Endpoint("/robots/big.txt", W, None, 200, "robots.txt: 2 MB"),
    Endpoint("/robots/garbage.txt", W, None, 200, "robots.txt: binary garbage"),
    *(
        Endpoint("/", name, None, 200, f"a site whose robots.txt is {name}")
        for name in ROBOTS_SITES
    ),
    Endpoint("/", LATER_SITE, None, 503, "503 with Retry-After: 7200 (two hours)"),
)


# --- serving it all ----------------------------------------------------------------------


@dataclass
class Hostile:
    """The running servers: base URLs by server name ("web", "raw", "robots-500", ...)."""

    bases: dict[str, str]

    @property
    def index(self) -> str:
        return self.bases["web"] + "/"

    def url(self, endpoint: Endpoint) -> str:
        return self.bases[endpoint.server] + endpoint.path


@contextlib.asynccontextmanager
async def serve() -> AsyncIterator[Hostile]:
    """Start every server on 127.0.0.1:0 in this loop; stop them all on exit."""
    closing = asyncio.Event()
    bases: dict[str, str] = {}
    runners: list[web.AppRunner] = []
    raw = RawServer(RAW_ROUTES, closing)
    # Build the bombs before serving, so the first request does not pay for them.
    await asyncio.to_thread(lambda: (gzip_bomb(), deflate_bomb(), many_links(), deep_nesting()))
    try:
        bases["raw"] = await raw.start()
        apps = {"web": make_app(closing, bases)}
        apps.update({name: make_robots_site(name, closing) for name in ROBOTS_SITES})
        apps[LATER_SITE] = make_later_site(closing)
        for name, app in apps.items():
            # Cancel a handler when its client hangs up; never wait long for one on exit.
            runner = web.AppRunner(
                app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
            )
            await runner.setup()
            runners.append(runner)
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            bases[name] = f"http://127.0.0.1:{port}"
        yield Hostile(bases)
    finally:
        closing.set()
        for runner in runners:
            await runner.cleanup()
        await raw.close()


@contextlib.asynccontextmanager
async def serve_in_subprocess() -> AsyncIterator[Hostile]:
    """`serve()` in a child process; it stops when this context exits (or this process dies)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.hostile.server",
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            line = await proc.stdout.readline()
        if not line:
            raise RuntimeError("the hostile server exited before it served")
        yield Hostile(json.loads(line))
    finally:
        proc.stdin.close()
        try:
            async with asyncio.timeout(10):
                await proc.stdout.read()
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _main() -> None:
    async with serve() as hostile:
        sys.stdout.write(json.dumps(hostile.bases) + "\n")
        sys.stdout.flush()
        await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin


if __name__ == "__main__":
    asyncio.run(_main())
