"""The pure parts of rendering, without a browser: detector, learner, rules, RenderingFetcher."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from crawler.config import Settings
from crawler.errors import ConfigError
from crawler.guard import AddressPolicy
from crawler.records import FetchResult
from crawler.render.contract import BrowserUnavailable, RenderedResult, RenderOptions
from crawler.render.detect import PageFacts, Reason, looks_client_rendered, page_facts
from crawler.render.fetcher import RenderingFetcher, RenderMode
from crawler.render.guard import BrowserRules
from crawler.render.learn import (
    MORE_TO_RENDER,
    NO_MORE_TO_STATIC_LEARNING,
    RECHECK_EVERY,
    Gain,
    HostMode,
    RenderLearner,
    compare,
)

PROSE = "<p>" + "A sentence that a server rendered for its readers. " * 20 + "</p>"

# -- the detector -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "render", "reason"),
    [
        ("<html><body>" + PROSE + "</body></html>", False, Reason.NO_SCRIPTS),
        ("<html><body><div id=root></div></body></html>", False, Reason.NO_SCRIPTS),
        (
            '<body><div id="root"></div><script src="/app.js"></script></body>',
            True,
            Reason.APP_ROOT,
        ),
        ('<body><div id="__next"> Loading… </div><script></script></body>', True, Reason.APP_ROOT),
        ("<body><app-root></app-root><script></script></body>", True, Reason.APP_ROOT),
        (
            "<body><noscript>You need to enable JavaScript to run this app.</noscript>"
            "<script></script>" + PROSE + "</body>",
            True,
            Reason.NOSCRIPT_ASKS,
        ),
        (
            "<body><noscript>This site requires JavaScript</noscript><script></script></body>",
            True,
            Reason.NOSCRIPT_ASKS,
        ),
        ("<body><h1>Hi</h1><script>go()</script></body>", True, Reason.LITTLE_TEXT),
        (
            "<body><p>Some words but mostly script.</p>"
            + "<p>short text here</p>" * 8
            + "<script>"
            + "var x = 1;" * 3000
            + "</script></body>",
            True,
            Reason.LITTLE_TEXT,
        ),
        ("<body>" + PROSE + "<script>track()</script></body>", False, Reason.HAS_TEXT),
        (
            '<body><div id="app">' + PROSE + "</div><script></script></body>",
            False,
            Reason.HAS_TEXT,
        ),
        ("\x00\xff<<<>>", False, Reason.NO_SCRIPTS),
    ],
)
def test_detector(html: str, render: bool, reason: Reason) -> None:
    decision = looks_client_rendered(page_facts(html))
    assert (decision.render, decision.reason) == (render, reason)


def test_page_facts_count_links_and_visible_text_only() -> None:
    facts = page_facts(
        "<head><title>T</title><style>p{}</style></head><body><a href='/a'>one</a>"
        "<a href=''>none</a><a>no href</a><script>var hidden = 1</script></body>"
    )
    assert facts.links == 1
    assert facts.text_chars == len("one none no href")
    assert facts.scripts == 1


# -- the learner ------------------------------------------------------------------------------

STATIC = PageFacts(html_bytes=5000, text_chars=300, links=4, scripts=2)
MUCH_MORE = PageFacts(html_bytes=9000, text_chars=3000, links=40, scripts=2)
NO_MORE = PageFacts(html_bytes=5000, text_chars=310, links=4, scripts=2)
SOME = PageFacts(html_bytes=5000, text_chars=500, links=6, scripts=2)
YES = looks_client_rendered(PageFacts(10, 0, 0, 1))
NO = looks_client_rendered(PageFacts(10, 0, 0, 0))


def test_compare() -> None:
    assert compare(STATIC, MUCH_MORE) is Gain.MUCH_MORE
    assert compare(STATIC, NO_MORE) is Gain.NO_MORE
    assert compare(STATIC, SOME) is Gain.SOME


def test_a_host_where_rendering_pays_is_rendered_always() -> None:
    learner = RenderLearner()
    assert learner.choose("a.test", YES).render
    assert not learner.choose("a.test", NO).render
    for _ in range(MORE_TO_RENDER):
        learner.update("a.test", STATIC, MUCH_MORE)
    assert learner.mode("a.test") is HostMode.RENDER
    assert learner.choose("a.test", NO).render  # even pages the detector calls static
    assert learner.mode("b.test") is HostMode.LEARNING


def test_a_host_where_rendering_finds_nothing_more_stops_being_rendered_then_rechecked() -> None:
    learner = RenderLearner()
    for _ in range(NO_MORE_TO_STATIC_LEARNING):
        learner.update("a.test", STATIC, NO_MORE)
    assert learner.mode("a.test") is HostMode.STATIC
    choices = [learner.choose("a.test", YES).render for _ in range(RECHECK_EVERY)]
    assert choices.count(True) == 1 and choices[-1]  # one check in RECHECK_EVERY
    learner.update("a.test", STATIC, MUCH_MORE)
    assert learner.mode("a.test") is HostMode.LEARNING


def test_mixed_results_keep_learning_and_the_table_is_bounded() -> None:
    learner = RenderLearner(max_hosts=2)
    learner.update("a.test", STATIC, MUCH_MORE)
    learner.update("a.test", STATIC, NO_MORE)
    learner.update("a.test", STATIC, SOME)
    assert learner.mode("a.test") is HostMode.LEARNING
    for host in ("b.test", "c.test"):
        for _ in range(MORE_TO_RENDER):
            learner.update(host, STATIC, MUCH_MORE)
    assert learner.mode("c.test") is HostMode.RENDER
    assert learner.mode("a.test") is HostMode.LEARNING  # forgotten (the oldest)


# -- the browser's request rules --------------------------------------------------------------


def _rules(
    answers: Mapping[str, list[str]], *, robots_ok: bool = True, hosts: tuple[str, ...] = ()
) -> tuple[BrowserRules, list[str]]:
    budget: list[str] = []

    async def resolve(host: str) -> list[str]:
        if host not in answers:
            raise OSError("no such host")
        return answers[host]

    async def robots(url: str) -> bool:
        return robots_ok

    async def spend(url: str) -> None:
        budget.append(url)

    rules = BrowserRules(
        AddressPolicy.of(hosts=hosts), robots=robots, budget=spend, resolve=resolve
    )
    return rules, budget


async def test_rules_refuse_private_addresses_schemes_and_unresolvable_names() -> None:
    rules, budget = _rules(
        {"cdn.test": ["93.184.216.34"], "evil.test": ["93.184.216.34", "10.0.0.1"]},
        hosts=("127.0.0.1",),
    )
    page = "http://127.0.0.1:8000/app"
    assert await rules.refuse("http://127.0.0.1:9999/api", page) is None  # a trusted host
    assert await rules.refuse("https://cdn.test/lib.js", page) is None
    assert "not a public address" in (await rules.refuse("http://127.0.0.2/", page) or "")
    assert "not a public address" in (
        await rules.refuse("http://169.254.169.254/latest", page) or ""
    )
    assert "not a public address" in (await rules.refuse("http://[::1]:80/", page) or "")
    assert "non-public" in (await rules.refuse("http://evil.test/", page) or "")
    assert "does not resolve" in (await rules.refuse("http://nowhere.test/", page) or "")
    assert "http(s)" in (await rules.refuse("ftp://cdn.test/x", page) or "")
    assert "http(s)" in (await rules.refuse("file:///etc/passwd", page) or "")
    assert budget == ["http://127.0.0.1:9999/api", "https://cdn.test/lib.js"]


async def test_robots_apply_to_the_crawled_host_only() -> None:
    rules, _ = _rules(
        {"cdn.test": ["93.184.216.34"], "site.test": ["93.184.216.35"]}, robots_ok=False
    )
    assert await rules.refuse("http://site.test/api", "http://site.test/") == (
        "disallowed by robots.txt"
    )
    assert await rules.refuse("http://cdn.test/lib.js", "http://site.test/") is None


# -- RenderingFetcher with a fake plain fetcher and renderer ----------------------------------

SPA_HTML = b'<html><body><div id="root"></div><script src="/app.js"></script></body></html>'
PLAIN_HTML = b"<html><body>" + PROSE.encode() + b"<script></script></body></html>"


class FakePlain:
    def __init__(self, body: bytes, status: int = 200, encoding: str | None = "utf-8") -> None:
        self.body, self.status, self.encoding = body, status, encoding

    async def fetch(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_redirects: int | None = None,
    ) -> FetchResult:
        return FetchResult(
            url=url,
            final_url=url,
            status=self.status,
            content_type="text/html",
            body=self.body,
            encoding=self.encoding,
        )


class FakeRenderer:
    def __init__(self, html: bytes = b"", fail: bool = False) -> None:
        self.html, self.fail, self.calls = html, fail, 0

    async def render(self, static: FetchResult) -> RenderedResult:
        self.calls += 1
        if self.fail:
            raise BrowserUnavailable("cannot start the browser: gone")
        return RenderedResult(
            url=static.url,
            final_url=static.final_url,
            status=static.status,
            content_type=static.content_type,
            body=self.html,
            encoding="utf-8",
            static_body=static.body,
        )


RENDERED = (
    b"<html><body>"
    + b"".join(
        b"<p>rendered paragraph %d with words</p><a href='/p/%d'>p</a>" % (n, n) for n in range(40)
    )
    + b"</body></html>"
)


def _fetcher(
    body: bytes, mode: RenderMode, renderer: FakeRenderer | None, lines: list[str], **plain: object
) -> RenderingFetcher:
    rules, _ = _rules({})
    return RenderingFetcher(
        FakePlain(body, **plain),  # type: ignore[arg-type]
        mode,
        RenderOptions(browser_path="/nonexistent/chromium"),
        rules,
        renderer=renderer,
        warn=lines.append,
    )


async def test_modes() -> None:
    lines: list[str] = []
    for body, mode, rendered in [
        (SPA_HTML, RenderMode.NEVER, False),
        (SPA_HTML, RenderMode.AUTO, True),
        (PLAIN_HTML, RenderMode.AUTO, False),
        (PLAIN_HTML, RenderMode.ALWAYS, True),
    ]:
        renderer = FakeRenderer(RENDERED)
        result = await _fetcher(body, mode, renderer, lines).fetch("http://a.test/")
        assert isinstance(result, RenderedResult) is rendered, (body[:30], mode)
        assert renderer.calls == int(rendered)
    assert not lines


async def test_errors_and_non_html_are_not_rendered() -> None:
    lines: list[str] = []
    renderer = FakeRenderer(RENDERED)
    for plain in ({"status": 404}, {"encoding": None}):
        fetcher = _fetcher(SPA_HTML, RenderMode.ALWAYS, renderer, lines, **plain)
        await fetcher.fetch("http://a.test/")
    assert renderer.calls == 0


async def test_auto_learns_from_each_rendered_page() -> None:
    lines: list[str] = []
    fetcher = _fetcher(SPA_HTML, RenderMode.AUTO, FakeRenderer(RENDERED), lines)
    for _ in range(MORE_TO_RENDER):
        await fetcher.fetch("http://a.test/")
    assert fetcher.learner.mode("a.test") is HostMode.RENDER
    assert fetcher.rendered == MORE_TO_RENDER


async def test_no_browser_says_so_once_and_goes_on() -> None:
    lines: list[str] = []
    fetcher = _fetcher(SPA_HTML, RenderMode.AUTO, None, lines)
    for _ in range(3):
        result = await fetcher.fetch("http://a.test/")
        assert not isinstance(result, RenderedResult) and result.body == SPA_HTML
    assert len(lines) == 1
    assert "pip install 'crawler[render]'" in lines[0] and "--render never" in lines[0]
    failing = FakeRenderer(fail=True)
    fetcher = _fetcher(SPA_HTML, RenderMode.AUTO, failing, lines)
    await fetcher.fetch("http://a.test/")
    await fetcher.fetch("http://a.test/")
    assert failing.calls == 1 and len(lines) == 2 and "gone" in lines[1]


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"render": "sometimes"}, "--render must be one of never, auto, always"),
        ({"render_concurrency": 0}, "--render-concurrency must be between 1 and 32"),
        ({"browser_path": "/x", "browser_cdp_url": "http://127.0.0.1:9222"}, "not both"),
        ({"browser_cdp_url": "file:///tmp/x"}, "--browser-cdp-url must be"),
    ],
)
def test_render_settings_are_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings(**kwargs)  # type: ignore[arg-type]


def test_render_options_come_from_settings() -> None:
    settings = Settings(render_concurrency=3, browser_path="/usr/bin/chromium", user_agent="ua")
    options = RenderOptions.from_settings(settings)
    assert (options.concurrency, options.browser_path, options.user_agent) == (
        3,
        "/usr/bin/chromium",
        "ua",
    )
