"""HttpFetcher against real local servers with misbehaving endpoints (127.0.0.1, port 0).

An aiohttp.web app serves well-formed HTTP; a raw asyncio socket server sends the bytes
aiohttp.web would refuse to (broken framing, huge headers, no Content-Type, dropped bodies).
The servers are on loopback, a non-public address: the fetcher is told to allow 127.0.0.1
(as a run does when its seed is there), and the last section checks that it refuses it, and
`localhost`, otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from crawler.config import Settings
from crawler.fetch import ACCEPT_ENCODING, HttpFetcher
from crawler.headers import KEPT_HEADERS
from crawler.records import FetchResult
from tests.decoded import html_text, text_of
from tests.hostile.server import RawHandler, RawServer, canned

pytestmark = pytest.mark.timeout(10)

KIB = 1024
MIB = 1024 * KIB

SETTINGS = Settings(
    connect_timeout=2.0,
    read_timeout=1.0,
    total_timeout=5.0,
    max_body_bytes=1 * MIB,
    max_header_bytes=8 * KIB,
    max_redirects=5,
)

HTML = "text/html"
LOOPBACK = frozenset({"127.0.0.1"})


# --- the aiohttp.web app ----------------------------------------------------------------


def html(
    body: bytes, content_type: str = "text/html; charset=utf-8", **headers: str
) -> web.Response:
    return web.Response(body=body, headers={"Content-Type": content_type, **headers})


async def utf8(request: web.Request) -> web.Response:
    return html("<p>héllo €</p>".encode())


async def latin1_header(request: web.Request) -> web.Response:
    # 0xE9 is é in both; 0x80 is € only in windows-1252, which browsers use for this label.
    return html(b"<p>caf\xe9 \x80</p>", "text/html; charset=ISO-8859-1")


async def latin1_meta(request: web.Request) -> web.Response:
    body = b'<html><head><meta charset="iso-8859-1"></head><body>caf\xe9</body></html>'
    return html(body, "text/html")


async def http_equiv(request: web.Request) -> web.Response:
    head = b'<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'
    return html(head + "Привет".encode("cp1251"), "text/html")


async def bom(request: web.Request) -> web.Response:
    # The header claims latin-1 but the body starts with a UTF-8 BOM: the BOM wins.
    return html(b"\xef\xbb\xbf<p>na\xc3\xafve</p>", "text/html; charset=iso-8859-1")


async def unknown_charset(request: web.Request) -> web.Response:
    return html("<p>é</p>".encode(), "text/html; charset=x-klingon")


async def xhtml(request: web.Request) -> web.Response:
    return html(b"<html xmlns='http://www.w3.org/1999/xhtml'>ok</html>", "application/xhtml+xml")


async def png(request: web.Request) -> web.Response:
    return web.Response(body=b"\x89PNG\r\n\x1a\n" + bytes(100), content_type="image/png")


async def status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    return web.Response(status=code, text=f"status {code}", headers={"Retry-After": "7"})


async def redirect_chain(request: web.Request) -> web.Response:
    n = int(request.match_info["n"])
    # Relative Locations: "2" from /r/3 is /r/2; the last hop carries a fragment to drop.
    location = str(n - 1) if n > 0 else "/utf8#section"
    return web.Response(status=302, headers={"Location": location})


async def loop_redirect(request: web.Request) -> web.Response:
    other = "b" if request.match_info["name"] == "a" else "a"
    return web.Response(status=301, headers={"Location": f"/loop/{other}"})


async def to_ftp(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": "ftp://127.0.0.1/file.txt"})


async def to_port(request: web.Request) -> web.Response:
    return web.Response(
        status=302, headers={"Location": f"http://127.0.0.1:{request.query['port']}/"}
    )


async def no_location(request: web.Request) -> web.Response:
    return web.Response(status=302, text="moved, somewhere")


async def slow_body(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": HTML})
    await resp.prepare(request)
    await resp.write(b"<html>")
    await asyncio.sleep(30)  # cancelled when the client hangs up
    return resp


async def trickle(request: web.Request) -> web.StreamResponse:
    """A byte every 50 ms: never trips sock_read, only the total timeout."""
    resp = web.StreamResponse(headers={"Content-Type": HTML})
    await resp.prepare(request)
    while True:
        await resp.write(b"x")
        await asyncio.sleep(0.05)


async def endless(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": HTML})
    await resp.prepare(request)
    chunk = b"a" * (64 * KIB)
    while True:
        await resp.write(chunk)


_BOMB: list[bytes] = []


def gzip_bomb() -> bytes:
    """16 MiB of zeros, gzipped to about 16 KiB."""
    if not _BOMB:
        _BOMB.append(gzip.compress(bytes(16 * MIB), compresslevel=9))
    return _BOMB[0]


async def bomb(request: web.Request) -> web.Response:
    return html(gzip_bomb(), "text/html", **{"Content-Encoding": "gzip"})


async def small_gzip(request: web.Request) -> web.Response:
    return html(gzip.compress("<p>zipped é</p>".encode()), **{"Content-Encoding": "gzip"})


async def bad_gzip(request: web.Request) -> web.Response:
    return html(b"this is not gzip at all" * 10, **{"Content-Encoding": "gzip"})


async def etag(request: web.Request) -> web.Response:
    if request.headers.get("If-None-Match") == '"v1"':
        return web.Response(status=304, headers={"ETag": '"v1"'})
    return html(b"<p>v1</p>", ETag='"v1"', **{"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"})


async def echo(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "user-agent": request.headers.get("User-Agent"),
            "accept-encoding": request.headers.get("Accept-Encoding"),
            "x-extra": request.headers.get("X-Extra"),
        }
    )


async def many_headers(request: web.Request) -> web.Response:
    return html(
        b"<p>h</p>",
        **{
            "X-Robots-Tag": "noindex",
            "Set-Cookie": "a=b",
            "Server-Timing": "x",
            "Retry-After": "3",
        },
    )


async def to_private(request: web.Request) -> web.Response:
    # 10.255.255.1 is never connected to: the IP literal is refused before any request.
    return web.Response(status=302, headers={"Location": "http://10.255.255.1/admin"})


async def to_localhost(request: web.Request) -> web.Response:
    location = f"http://localhost:{request.query['port']}/utf8"
    return web.Response(status=302, headers={"Location": location})


# Paths the app was asked for since the `server` fixture started (tests run one at a time).
served: list[str] = []
arrived: dict[str, float] = {}  # path_qs: when the server saw the request (time.monotonic())


@web.middleware
async def record_hits(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    served.append(request.path_qs)
    arrived[request.path_qs] = time.monotonic()
    return await handler(request)


def make_app() -> web.Application:
    app = web.Application(middlewares=[record_hits])
    app.router.add_get("/utf8", utf8)
    app.router.add_get("/latin1-header", latin1_header)
    app.router.add_get("/latin1-meta", latin1_meta)
    app.router.add_get("/http-equiv", http_equiv)
    app.router.add_get("/bom", bom)
    app.router.add_get("/unknown-charset", unknown_charset)
    app.router.add_get("/xhtml", xhtml)
    app.router.add_get("/png", png)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/r/{n}", redirect_chain)
    app.router.add_get("/loop/{name}", loop_redirect)
    app.router.add_get("/to-ftp", to_ftp)
    app.router.add_get("/no-location", no_location)
    app.router.add_get("/to-port", to_port)
    app.router.add_get("/to-private", to_private)
    app.router.add_get("/to-localhost", to_localhost)
    app.router.add_get("/slow-body", slow_body)
    app.router.add_get("/trickle", trickle)
    app.router.add_get("/endless", endless)
    app.router.add_get("/bomb", bomb)
    app.router.add_get("/gzip", small_gzip)
    app.router.add_get("/bad-gzip", bad_gzip)
    app.router.add_get("/etag", etag)
    app.router.add_get("/echo", echo)
    app.router.add_get("/headers", many_headers)
    return app


@pytest.fixture
async def server() -> AsyncIterator[str]:
    served.clear()
    arrived.clear()
    async with TestServer(make_app(), host="127.0.0.1", port=0) as srv:
        yield str(srv.make_url("")).rstrip("/")


# --- a raw socket server for what aiohttp.web will not send ------------------------------

# A handler gets the connection's writer and an event set when the server shuts down.
SNIFF_BODY = b"\n  <!doctype html><p>caf\xc3\xa9</p>"
RAW_ROUTES: dict[str, RawHandler] = {
    "/no-content-type": canned(
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(SNIFF_BODY), SNIFF_BODY)
    ),
    "/huge-header": canned(
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (20 * KIB) + b"\r\nContent-Length: 0\r\n\r\n"
    ),
    "/too-many-headers": canned(
        b"HTTP/1.1 200 OK\r\n"
        + b"".join(b"X-H%d: v\r\n" % i for i in range(300))
        + b"Content-Length: 0\r\n\r\n"
    ),
    # Promises 100000 bytes, sends 1000, hangs up.
    "/drop": canned(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n"
        + b"x" * 1000
    ),
    "/bad-chunk": canned(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\nnot a chunk\r\n0\r\n\r\n"
    ),
    "/bad-status-line": canned(b"SPDY/9 weird\r\n\r\n"),
    # An encoding this client did not offer and may not decode.
    "/zstd": canned(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: zstd\r\n"
        b"Content-Length: 5\r\n\r\nabcde"
    ),
    # Latin-1 bytes in headers, where aiohttp expects UTF-8.
    "/latin1-headers": canned(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=\xff\r\n"
        b"X-Robots-Tag: caf\xe9\r\nContent-Length: 9\r\n\r\n<p>\xc3\xa9</p>"
    ),
    "/latin1-location": canned(
        b"HTTP/1.1 301 Moved\r\nLocation: /caf\xe9%20x?q=1#frag\r\nContent-Length: 0\r\n\r\n"
    ),
    "/caf%E9%20x?q=1": canned(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 4\r\n\r\n<p/>"
    ),
    "/hang-up": canned(b""),
    "/slow-headers": canned(b"HTTP/1.1 200 OK\r\n", hang=True),
}


@pytest.fixture
async def raw() -> AsyncIterator[str]:
    async with RawServer(RAW_ROUTES) as base:
        yield base


async def fetch(url: str, settings: Settings = SETTINGS, **kwargs: object) -> FetchResult:
    async with HttpFetcher(settings, allowed_private_hosts=LOOPBACK) as fetcher:
        return await fetcher.fetch(url, **kwargs)  # type: ignore[arg-type]


def assert_ok(result: FetchResult) -> None:
    assert result.error_kind is None, result.error
    assert result.error is None


# --- decoding ---------------------------------------------------------------------------


async def test_plain_html_with_charset(server: str) -> None:
    result = await fetch(server + "/utf8")
    assert_ok(result)
    assert result.status == 200
    assert result.content_type == "text/html"
    assert text_of(result) == "<p>héllo €</p>"
    assert result.body == "<p>héllo €</p>".encode()
    assert result.final_url == server + "/utf8"
    assert result.redirects == ()
    assert result.retryable is False
    assert result.header("Content-Type") == "text/html; charset=utf-8"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/latin1-header", "<p>café €</p>"),
        ("/bom", "<p>naïve</p>"),
        ("/unknown-charset", "<p>é</p>"),
    ],
)
async def test_charset_from_header_bom_or_fallback(server: str, path: str, expected: str) -> None:
    result = await fetch(server + path)
    assert_ok(result)
    assert text_of(result) == expected


async def test_charset_from_meta(server: str) -> None:
    result = await fetch(server + "/latin1-meta")
    assert_ok(result)
    assert text_of(result) is not None
    assert html_text(result).endswith("<body>café</body></html>")


async def test_charset_from_http_equiv(server: str) -> None:
    result = await fetch(server + "/http-equiv")
    assert_ok(result)
    assert text_of(result) is not None
    assert html_text(result).endswith("Привет")


async def test_xhtml_is_html(server: str) -> None:
    result = await fetch(server + "/xhtml")
    assert result.content_type == "application/xhtml+xml"
    assert text_of(result) is not None and html_text(result).endswith("ok</html>")


async def test_non_html_keeps_bytes_and_no_text(server: str) -> None:
    result = await fetch(server + "/png")
    assert_ok(result)
    assert result.content_type == "image/png"
    assert text_of(result) is None
    assert len(result.body) == 108


async def test_missing_content_type_sniffed_as_html(raw: str) -> None:
    result = await fetch(raw + "/no-content-type")
    assert_ok(result)
    assert result.content_type is None
    assert text_of(result) == SNIFF_BODY.decode()


async def test_gzip_body_is_decompressed(server: str) -> None:
    result = await fetch(server + "/gzip")
    assert_ok(result)
    assert text_of(result) == "<p>zipped é</p>"


# --- statuses -----------------------------------------------------------------------------


async def test_404_is_a_completed_exchange(server: str) -> None:
    result = await fetch(server + "/status/404")
    assert_ok(result)
    assert result.status == 404
    assert result.retryable is False
    assert text_of(result) is None  # text/plain


@pytest.mark.parametrize("code", [503, 500, 429])
async def test_5xx_and_429_are_retryable_not_errors(server: str, code: int) -> None:
    result = await fetch(server + f"/status/{code}")
    assert_ok(result)
    assert result.status == code
    assert result.retryable is True
    assert result.header("retry-after") == "7"


# --- redirects ----------------------------------------------------------------------------


async def test_redirect_chain_recorded_and_fragment_dropped(server: str) -> None:
    result = await fetch(server + "/r/3")
    assert_ok(result)
    assert result.status == 200
    assert result.url == server + "/r/3"
    assert result.redirects == tuple(server + f"/r/{n}" for n in (3, 2, 1, 0))
    assert result.final_url == server + "/utf8"
    assert text_of(result) == "<p>héllo €</p>"


async def test_too_many_redirects(server: str) -> None:
    settings = Settings(max_redirects=2)
    result = await fetch(server + "/r/3", settings)
    assert result.error_kind == "too_many_redirects"
    assert result.retryable is False
    assert result.status == 302
    assert result.redirects == (server + "/r/3", server + "/r/2")
    assert result.final_url == server + "/r/1"


async def test_redirect_loop(server: str) -> None:
    result = await fetch(server + "/loop/a")
    assert result.error_kind == "too_many_redirects"
    assert result.error is not None and "loop" in result.error
    assert result.redirects == (server + "/loop/a",)
    assert result.final_url == server + "/loop/b"


async def test_redirect_to_ftp_is_bad_redirect(server: str) -> None:
    result = await fetch(server + "/to-ftp")
    assert result.error_kind == "bad_redirect"
    assert result.retryable is False
    assert result.status == 302
    assert result.final_url == server + "/to-ftp"
    assert result.header("location") == "ftp://127.0.0.1/file.txt"


async def test_redirect_status_without_location_is_returned(server: str) -> None:
    result = await fetch(server + "/no-location")
    assert_ok(result)
    assert result.status == 302
    assert result.redirects == ()


# --- limits and timeouts ------------------------------------------------------------------


async def test_slow_body_hits_read_timeout(server: str) -> None:
    settings = Settings(read_timeout=0.3, connect_timeout=1.0, total_timeout=20.0)
    result = await fetch(server + "/slow-body", settings)
    assert result.error_kind == "timeout"
    # aiohttp's socket-read timer fired, not the total one (which says nothing of sockets).
    assert result.error is not None and "reading data from socket" in result.error
    assert result.retryable is True
    assert result.status == 200  # headers had arrived
    assert text_of(result) is None and result.body == b""


async def test_slow_headers_hit_read_timeout(raw: str) -> None:
    settings = Settings(read_timeout=0.3, connect_timeout=1.0, total_timeout=5.0)
    result = await fetch(raw + "/slow-headers", settings)
    assert result.error_kind == "timeout"
    assert result.status is None


async def test_trickling_body_hits_total_timeout(server: str) -> None:
    """The body never ends and never pauses for read_timeout: only the total timer ends it."""
    settings = Settings(read_timeout=5.0, connect_timeout=5.0, total_timeout=0.5)
    result = await asyncio.wait_for(fetch(server + "/trickle", settings), 30)
    assert result.error_kind == "timeout"
    assert result.retryable is True
    assert result.error is not None and "total 0.5s" in result.error


async def test_endless_body_over_cap_is_too_large(server: str) -> None:
    settings = Settings(max_body_bytes=256 * KIB)
    result = await fetch(server + "/endless", settings)
    assert result.error_kind == "too_large"
    assert result.retryable is False
    assert result.status == 200
    assert result.body == b""


async def test_gzip_bomb_stops_early(server: str) -> None:
    """Counted decompressed: the cap stops the bomb after 1 MiB of its 16 inflated."""
    result = await asyncio.wait_for(fetch(server + "/bomb"), 30)
    assert result.error_kind == "too_large"
    assert result.error == f"body is over the {SETTINGS.max_body_bytes}-byte limit"
    assert result.body == b""


async def test_body_exactly_at_cap_is_fine(server: str) -> None:
    settings = Settings(max_body_bytes=108)
    result = await fetch(server + "/png", settings)
    assert_ok(result)
    assert len(result.body) == 108
    result = await fetch(server + "/png", Settings(max_body_bytes=107))
    assert result.error_kind == "too_large"


async def test_undecodable_gzip_is_bad_content(server: str) -> None:
    result = await fetch(server + "/bad-gzip")
    assert result.error_kind == "bad_content"
    assert result.retryable is False


async def test_unsupported_content_encoding_is_bad_content(raw: str) -> None:
    result = await fetch(raw + "/zstd")
    assert result.error_kind == "bad_content", result.error
    assert result.retryable is False


async def test_non_utf8_header_bytes_do_not_break_anything(raw: str) -> None:
    result = await fetch(raw + "/latin1-headers")
    assert_ok(result)
    assert result.header("x-robots-tag") == "caf\ufffd"
    assert text_of(result) == "<p>é</p>"  # the unusable charset falls back to UTF-8


async def test_raw_bytes_in_location_are_percent_encoded(raw: str) -> None:
    result = await fetch(raw + "/latin1-location")
    assert_ok(result)
    assert result.redirects == (raw + "/latin1-location",)
    assert result.final_url == raw + "/caf%E9%20x?q=1"
    assert text_of(result) == "<p/>"


async def test_huge_header_is_header_too_large(raw: str) -> None:
    result = await fetch(raw + "/huge-header")
    assert result.error_kind == "header_too_large"
    assert result.retryable is False
    assert result.error is not None and "\n" not in result.error


async def test_too_many_headers_is_header_too_large(raw: str) -> None:
    result = await fetch(raw + "/too-many-headers")
    assert result.error_kind == "header_too_large"


# --- broken responses ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/drop", "/bad-chunk", "/bad-status-line", "/hang-up"])
async def test_broken_responses_are_bad_response(raw: str, path: str) -> None:
    result = await fetch(raw + path)
    assert result.error_kind == "bad_response", result.error
    assert result.retryable is True
    assert result.error is not None and "\n" not in result.error


async def test_connection_refused_is_connect(unused_port: int) -> None:
    result = await fetch(f"http://127.0.0.1:{unused_port}/")
    assert result.error_kind == "connect"
    assert result.retryable is True
    assert result.status is None


async def test_failure_after_a_redirect_keeps_the_chain(server: str, unused_port: int) -> None:
    result = await fetch(server + f"/to-port?port={unused_port}")
    assert result.error_kind == "connect"
    assert result.redirects == (server + f"/to-port?port={unused_port}",)
    assert result.final_url == f"http://127.0.0.1:{unused_port}/"
    assert result.status is None  # status belongs to final_url, which never answered


async def test_tls_to_a_plain_http_port_is_tls() -> None:
    async def answer_in_plain_http(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    server = await asyncio.start_server(answer_in_plain_http, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        result = await fetch(f"https://127.0.0.1:{port}/")
    assert result.error_kind == "tls", result.error
    assert result.retryable is False


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- request headers ----------------------------------------------------------------------


async def test_sends_user_agent_accept_encoding_and_extra_headers(server: str) -> None:
    settings = Settings(user_agent="testbot/1.0")
    result = await fetch(server + "/echo", settings, headers={"X-Extra": "yes"})
    assert_ok(result)
    assert text_of(result) is None
    sent = json.loads(result.body)
    assert sent == {
        "user-agent": "testbot/1.0",
        "accept-encoding": ACCEPT_ENCODING,
        "x-extra": "yes",
    }
    assert ACCEPT_ENCODING in ("gzip, deflate", "gzip, deflate, br")


async def test_conditional_request_gets_304(server: str) -> None:
    first = await fetch(server + "/etag")
    assert_ok(first)
    assert first.status == 200
    assert first.header("etag") == '"v1"'
    assert first.header("last-modified") == "Mon, 01 Jan 2024 00:00:00 GMT"
    second = await fetch(server + "/etag", headers={"If-None-Match": '"v1"'})
    assert_ok(second)
    assert second.status == 304
    assert second.body == b""


async def test_only_useful_headers_are_kept(server: str) -> None:
    result = await fetch(server + "/headers")
    names = {name for name, _ in result.headers}
    assert names <= KEPT_HEADERS
    assert result.header("x-robots-tag") == "noindex"
    assert result.header("retry-after") == "3"
    assert result.header("set-cookie") is None


async def test_one_fetcher_many_fetches(server: str) -> None:
    async with HttpFetcher(SETTINGS, allowed_private_hosts=LOOPBACK) as fetcher:
        results = await asyncio.gather(*(fetcher.fetch(server + "/utf8") for _ in range(20)))
    assert all(r.error_kind is None and r.status == 200 for r in results)


# --- when a request went out (politeness paces from it: crawler.hosts) ---------------------


async def test_sent_at_is_when_the_request_went_out_under_a_busy_loop(server: str) -> None:
    async with HttpFetcher(SETTINGS, allowed_private_hosts=LOOPBACK) as fetcher:
        began = time.monotonic()
        task = asyncio.create_task(fetcher.fetch(server + "/utf8"))
        await asyncio.sleep(0)  # the fetch starts, and waits for its connection
        time.sleep(0.2)  # noqa: ASYNC251 (on purpose: a busy loop, no request goes out)
        result = await task
    assert_ok(result)
    assert began + 0.2 <= result.sent_at <= arrived["/utf8"]


async def test_sent_at_after_redirects_is_the_last_requests(server: str) -> None:
    result = await fetch(server + "/r/1")
    assert_ok(result)
    assert arrived["/r/0"] <= result.sent_at <= arrived["/utf8"]


async def test_concurrent_fetches_each_stamp_their_own_request(server: str) -> None:
    async with HttpFetcher(SETTINGS, allowed_private_hosts=LOOPBACK) as fetcher:
        began = time.monotonic()
        paths = [f"/utf8?n={n}" for n in range(20)]
        results = await asyncio.gather(*(fetcher.fetch(server + path) for path in paths))
    for path, result in zip(paths, results, strict=True):
        assert_ok(result)
        assert began <= result.sent_at <= arrived[path]


# --- non-public addresses -----------------------------------------------------------------


async def test_loopback_is_refused_without_an_allowance(server: str) -> None:
    async with HttpFetcher(SETTINGS) as fetcher:  # no seeds, nothing allowed
        result = await fetcher.fetch(server + "/utf8")
    assert result.error_kind == "blocked_address"
    assert result.retryable is False
    assert result.status is None
    assert result.error is not None and "127.0.0.1" in result.error
    assert served == []  # refused before connecting


async def test_seed_hosts_at_private_addresses_are_allowed_by_default(server: str) -> None:
    settings = Settings(seeds=(server + "/",))
    async with HttpFetcher(settings) as fetcher:
        result = await fetcher.fetch(server + "/utf8")
    assert_ok(result)
    assert served == ["/utf8"]


async def test_allow_private_allows_every_host(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    async with HttpFetcher(SETTINGS, allow_private=True) as fetcher:
        result = await fetcher.fetch(f"http://localhost:{port}/utf8")
    assert_ok(result)
    assert text_of(result) == "<p>héllo €</p>"


async def test_redirect_to_a_private_ip_literal_is_refused_before_connecting(server: str) -> None:
    result = await fetch(server + "/to-private")
    assert result.error_kind == "blocked_address"
    assert result.retryable is False
    assert result.status == 302
    assert result.final_url == server + "/to-private"
    assert result.header("location") == "http://10.255.255.1/admin"
    assert result.error == "10.255.255.1 is a private address, not a public one"


async def test_redirect_to_a_name_of_a_private_address_is_refused(server: str) -> None:
    """`localhost` is not the allowed `127.0.0.1`: refused on the address it resolves to."""
    port = server.rsplit(":", 1)[1]
    result = await fetch(server + f"/to-localhost?port={port}")
    assert result.error_kind == "blocked_address", result.error
    assert result.redirects == (server + f"/to-localhost?port={port}",)
    assert result.final_url == f"http://localhost:{port}/utf8"
    assert result.status is None
    assert result.error is not None and "localhost" in result.error
    assert served == [f"/to-localhost?port={port}"]  # the target was never asked
