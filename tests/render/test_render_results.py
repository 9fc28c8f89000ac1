"""What the crawl gets from the `RenderingFetcher` (no browser: fakes), and the quick check.

- `clearly_static` never clears a page the full detector would render;
- a redirect is not rendered; a render that timed out is the page (the note in `error`), a
  render that failed gives the static page back (the note in `error`);
- `rendered` tells a browser's result from a plain one.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from crawler.guard import AddressPolicy
from crawler.kinds import ErrorKind
from crawler.records import FetchResult
from crawler.render.contract import RenderedResult, RenderOptions
from crawler.render.detect import clearly_static, looks_client_rendered, page_facts
from crawler.render.fetcher import RenderingFetcher, RenderMode
from crawler.render.guard import BrowserRules
from tests.render.site import BUSY, DIALOGS, IMAGES, LOOP, PRIVATE, SPA, STATIC

PROSE = "<p>" + "A sentence that a server rendered for its readers. " * 60 + "</p>"
GTM = (
    '<noscript><iframe src="https://www.googletagmanager.com/ns.html?id=GTM-X" height="0">'
    "</iframe></noscript>"
)
PAGES = [
    SPA,
    STATIC,
    BUSY,
    LOOP,
    DIALOGS,
    IMAGES,
    PRIVATE,
    "<html><body>" + PROSE + "</body></html>",
    "<html><head><script>track()</script></head><body>" + PROSE + "</body></html>",
    "<html><body>" + GTM + PROSE + "<script>track()</script></body></html>",
    "<html><body><noscript>Please enable JavaScript.</noscript><script></script>"
    + PROSE
    + "</body></html>",
    '<html><body><div id="root"></div><script>' + "var x = 'words';" * 500 + "</script></body>",
    "<html><body><h1>Hi</h1><SCRIPT>go()</SCRIPT></body></html>",
    "<html><body><style>" + "p { color: red }" * 400 + "</style><script></script></body>",
]


@pytest.mark.parametrize("html", PAGES)
def test_the_quick_check_never_clears_a_page_the_detector_would_render(html: str) -> None:
    if clearly_static(html.encode()):
        assert not looks_client_rendered(page_facts(html)).render


def test_the_quick_check_clears_pages_with_text() -> None:
    assert clearly_static(PAGES[7].encode())  # no script
    assert clearly_static(PAGES[8].encode())  # a script, and text
    assert clearly_static(PAGES[9].encode())  # a <noscript> that asks for nothing
    assert not clearly_static(PAGES[10].encode())  # one that asks for JavaScript
    assert not clearly_static(PAGES[11].encode())  # words in a script only
    assert not clearly_static(SPA.encode())


class Plain:
    def __init__(self, body: bytes, redirects: tuple[str, ...] = ()) -> None:
        self.body, self.redirects = body, redirects

    async def fetch(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_redirects: int | None = None,
    ) -> FetchResult:
        final = url + "moved" if self.redirects else url
        return FetchResult(
            url, final, 200, "text/html", (), self.body, "utf-8", redirects=self.redirects
        )


class Renderer:
    def __init__(self, kind: ErrorKind | None) -> None:
        self.kind, self.calls = kind, 0

    async def render(self, static: FetchResult) -> RenderedResult:
        self.calls += 1
        failed = self.kind is ErrorKind.RENDER_FAILED
        return RenderedResult(
            static.url,
            static.final_url,
            static.status,
            static.content_type,
            body=static.body if failed else b"<html><body><p>so far</p></body></html>",
            encoding="utf-8",
            error_kind=self.kind,
            error=None if self.kind is None else "it took too long",
            static_body=static.body,
        )


def _fetcher(renderer: Renderer, redirects: tuple[str, ...] = ()) -> RenderingFetcher:
    return RenderingFetcher(
        Plain(SPA.encode(), redirects),
        RenderMode.ALWAYS,
        RenderOptions(),
        BrowserRules(AddressPolicy.of()),
        renderer=renderer,
        warn=lambda line: None,
    )


async def test_a_redirect_is_not_rendered() -> None:
    renderer = Renderer(None)
    result = await _fetcher(renderer, ("http://a.test/moved",)).fetch("http://a.test/")
    assert renderer.calls == 0 and not result.rendered


async def test_a_render_that_timed_out_is_the_page_with_a_note() -> None:
    result = await _fetcher(Renderer(ErrorKind.RENDER_TIMEOUT)).fetch("http://a.test/")
    assert result.rendered and result.ok
    assert result.body == b"<html><body><p>so far</p></body></html>"
    assert result.error == "render_timeout: it took too long"


async def test_a_render_that_failed_gives_the_static_page_with_a_note() -> None:
    result = await _fetcher(Renderer(ErrorKind.RENDER_FAILED)).fetch("http://a.test/")
    assert not result.rendered and result.ok
    assert result.body == SPA.encode()
    assert result.error == "render_failed: it took too long"
