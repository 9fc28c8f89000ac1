"""A small handcrafted site served by aiohttp in the test's own loop, on 127.0.0.1:0.

It has what the core crawl must get right: titles and metadata, a link graph with relative,
absolute, fragment and query links, a <base href>, a redirect, a 404, a non-HTML file, an
external link, a nofollow link and robots.txt disallowing /private/.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

PAGES: dict[str, str] = {
    "/": """<!doctype html><html lang="en"><head><title>Home</title>
        <meta name="description" content="The home page">
        <link rel="canonical" href="/"></head>
        <body><h1>Welcome</h1><p>Hello <b>world</b></p><script>var x = 1;</script>
        <a href="/a.html">Page A</a> <a href="b.html#top">Page B</a>
        <a href="/a.html?x=1">A with query</a>
        <a href="/missing.html">Missing</a> <a href="/file.pdf">PDF</a>
        <a href="https://elsewhere.example/">Elsewhere</a>
        <a href="/moved">Moved</a> <a href="/private/secret.html">Secret</a>
        <a href="/nofollow.html" rel="nofollow">Nofollow</a>
        <a href="mailto:x@example.com">mail</a> <a href="javascript:void(0)">js</a>
        </body></html>""",
    "/a.html": """<html><head><title>Page A</title></head><body><h1>A</h1>
        <a href="/">Home</a> <a href="sub/c.html">C</a></body></html>""",
    "/a.html?x=1": """<html><head><title>Page A (query)</title></head><body>
        <a href="/">Home</a></body></html>""",
    "/b.html": """<html><head><title>Page B</title><base href="/sub/"></head><body>
        <a href="c.html">C via base</a> <a href="/missing.html">Missing again</a></body></html>""",
    "/sub/c.html": """<html><head><title>Page C</title>
        <meta name="robots" content="noindex"></head>
        <body><a href="../a.html">A</a></body></html>""",
    "/target.html": """<html><head><title>Redirect target</title></head><body>
        <a href="/">Home</a></body></html>""",
    "/nofollow.html": "<html><head><title>Nofollow</title></head><body></body></html>",
    "/private/secret.html": "<html><head><title>Secret</title></head><body></body></html>",
}

ROBOTS = "User-agent: *\nDisallow: /private/\n"

# What a correct crawl from "/" stores (robots obeyed; nofollow links not followed).
EXPECTED_HTML = {"/", "/a.html", "/a.html?x=1", "/b.html", "/sub/c.html", "/target.html"}
EXPECTED_TITLES = {
    "/": "Home",
    "/a.html": "Page A",
    "/a.html?x=1": "Page A (query)",
    "/b.html": "Page B",
    "/sub/c.html": "Page C",
    "/target.html": "Redirect target",
}


async def _handle(request: web.Request) -> web.StreamResponse:
    path = request.path_qs
    if request.path == "/robots.txt":
        return web.Response(text=ROBOTS, content_type="text/plain")
    if request.path == "/moved":
        raise web.HTTPMovedPermanently("/target.html")
    if request.path == "/file.pdf":
        return web.Response(body=b"%PDF-1.4 fake", content_type="application/pdf")
    body = PAGES.get(path)
    if body is None:
        return web.Response(
            status=404, text="<html><title>Not found</title></html>", content_type="text/html"
        )
    return web.Response(text=body, content_type="text/html", charset="utf-8")


@asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Serve an aiohttp app on 127.0.0.1 (a free port); yield its base URL (no slash)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def serve_site() -> AsyncIterator[str]:
    """Serve the site; yield its base URL (no trailing slash)."""
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", _handle)
    async with serve_app(app) as base:
        yield base


@asynccontextmanager
async def serve_endless_site(pause: float) -> AsyncIterator[str]:
    """An endless binary tree of pages (/1 links /2 and /3, …), each answered after `pause`
    seconds: a crawl of it only ends when something stops it."""

    async def page(request: web.Request) -> web.Response:
        if request.path == "/robots.txt":
            return web.Response(status=404)
        await asyncio.sleep(pause)
        n = int(request.match_info["n"] or 1)
        links = f'<a href="/{2 * n}">a</a> <a href="/{2 * n + 1}">b</a>'
        return web.Response(
            text=f"<html><title>{n}</title><body>{links}</body></html>", content_type="text/html"
        )

    app = web.Application()
    app.router.add_get(r"/{n:\d*}", page)
    app.router.add_get("/robots.txt", page)
    async with serve_app(app) as base:
        yield base
