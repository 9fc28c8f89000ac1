"""crawler.robots: RFC 9309 decisions from (status, body, user agent)."""

from __future__ import annotations

import random

import pytest

from crawler.robots import MAX_ROBOTS_BYTES, RobotsPolicy, product_token

UA = "crawler/0.1 (+https://example.org/bot)"
SITE = "https://www.example.com"

BASIC = """
User-agent: *
Disallow: /private/
Allow: /private/public/
Disallow: /*.pdf$
Disallow: /search*q=
Allow: /search?q=ok
Disallow: /exact$
"""

# (case id, robots.txt body, user agent, path, allowed)
RULES: list[tuple[str, str, str, str, bool]] = [
    ("root allowed", BASIC, UA, "/", True),
    ("page allowed", BASIC, UA, "/docs/a.html", True),
    ("dir disallowed", BASIC, UA, "/private/", False),
    ("dir child disallowed", BASIC, UA, "/private/x/y.html", False),
    ("dir prefix only", BASIC, UA, "/private", True),
    ("allow overrides (longer)", BASIC, UA, "/private/public/p.html", True),
    ("wildcard $ pdf", BASIC, UA, "/files/report.pdf", False),
    ("wildcard $ not end", BASIC, UA, "/files/report.pdf?download=1", True),
    ("wildcard $ other ext", BASIC, UA, "/files/report.pdfx", True),
    ("wildcard middle", BASIC, UA, "/search?lang=en&q=x", False),
    ("wildcard no match", BASIC, UA, "/search?lang=en", True),
    ("allow beats shorter disallow", BASIC, UA, "/search?q=ok", True),
    ("exact $ matches", BASIC, UA, "/exact", False),
    ("exact $ longer path", BASIC, UA, "/exact/more", True),
    ("robots.txt always allowed", "User-agent: *\nDisallow: /\n", UA, "/robots.txt", True),
    ("disallow all", "User-agent: *\nDisallow: /\n", UA, "/anything", False),
    ("empty disallow allows", "User-agent: *\nDisallow:\n", UA, "/anything", True),
    ("empty file", "", UA, "/anything", True),
    ("comments", "# hi\nUser-agent: * # all\nDisallow: /a # no a\n", UA, "/a/b", False),
    ("case-sensitive paths", "User-agent: *\nDisallow: /Private\n", UA, "/private", True),
    ("tie: allow wins", "User-agent: *\nDisallow: /p\nAllow: /p\n", UA, "/p", True),
    ("percent-encoding equal", "User-agent: *\nDisallow: /%7Euser\n", UA, "/~user/x", False),
    ("crlf lines", "User-agent: *\r\nDisallow: /a\r\n", UA, "/a", False),
    # which group: our product token, case-insensitive, else *
    (
        "own group wins over *",
        "User-agent: *\nDisallow: /\n\nUser-agent: crawler\nDisallow: /x\n",
        UA,
        "/y",
        True,
    ),
    (
        "own group rules apply",
        "User-agent: *\nDisallow: /\n\nUser-agent: crawler\nDisallow: /x\n",
        UA,
        "/x",
        False,
    ),
    (
        "own group case-insensitive",
        "User-agent: *\nDisallow: /\n\nUser-agent: CRAWLER\nAllow: /\n",
        UA,
        "/y",
        True,
    ),
    (
        "own group with version",
        "User-agent: *\nDisallow: /\n\nUser-agent: Crawler/2.0\nAllow: /\n",
        UA,
        "/y",
        True,
    ),
    ("other bot's group ignored", "User-agent: otherbot\nDisallow: /\n", UA, "/y", True),
    (
        "other bot, * applies",
        "User-agent: otherbot\nAllow: /\n\nUser-agent: *\nDisallow: /\n",
        UA,
        "/y",
        False,
    ),
    (
        "prefix of token is not us",
        "User-agent: craw\nDisallow: /\n\nUser-agent: *\nAllow: /\n",
        UA,
        "/y",
        True,
    ),
    ("token inside name is not us", "User-agent: mycrawler\nDisallow: /\n", UA, "/y", True),
    (
        "hyphenated token",
        "User-agent: *\nDisallow: /\n\nUser-agent: my-crawler\nAllow: /\n",
        "My-Crawler/1.0",
        "/y",
        True,
    ),
    ("hyphen token, part is not us", "User-agent: my\nDisallow: /\n", "my-crawler/1.0", "/y", True),
    (
        "group lines share rules",
        "User-agent: a\nUser-agent: crawler\nDisallow: /shared\n",
        UA,
        "/shared",
        False,
    ),
    (
        "groups of one token merge",
        "User-agent: crawler\nDisallow: /a\n\nUser-agent: *\nDisallow: /\n\n"
        "User-agent: crawler\nDisallow: /b\n",
        UA,
        "/b",
        False,
    ),
    ("other ua string, * group", BASIC, "Mozilla/5.0 (compatible)", "/private/x", False),
]


@pytest.mark.parametrize(
    ("body", "ua", "path", "allowed"), [c[1:] for c in RULES], ids=[c[0] for c in RULES]
)
def test_rules(body: str, ua: str, path: str, allowed: bool) -> None:
    policy = RobotsPolicy.from_response(200, body.encode(), ua)
    assert policy.mode == "rules"
    assert policy.allowed(SITE + path) is allowed


@pytest.mark.parametrize(
    ("ua", "token"),
    [
        ("crawler/0.1 (+https://example.org/bot)", "crawler"),
        ("Crawler", "crawler"),
        ("  my_bot-2/1.0", "my_bot-"),
        ("My-Crawler/1.0", "my-crawler"),
        ("Mozilla/5.0 (compatible; crawler/0.1)", "mozilla"),
        ("", "*"),
        ("/1.0", "*"),
    ],
)
def test_product_token(ua: str, token: str) -> None:
    assert product_token(ua) == token


# (status, mode, temporary, allowed)
STATUSES: list[tuple[int | None, str, bool, bool]] = [
    (200, "rules", False, False),
    (204, "rules", False, True),
    (301, "allow_all", False, True),
    (400, "allow_all", False, True),
    (401, "allow_all", False, True),
    (403, "allow_all", False, True),
    (404, "allow_all", False, True),
    (410, "allow_all", False, True),
    (429, "disallow_all", True, False),
    (500, "disallow_all", True, False),
    (503, "disallow_all", True, False),
    (599, "disallow_all", True, False),
    (None, "disallow_all", True, False),
    (100, "disallow_all", True, False),
    (600, "disallow_all", True, False),
]


@pytest.mark.parametrize(
    ("status", "mode", "temporary", "allowed"), STATUSES, ids=[str(s[0]) for s in STATUSES]
)
def test_status(status: int | None, mode: str, temporary: bool, allowed: bool) -> None:
    # The body disallows everything: only a 2xx body may be read.
    body = b"User-agent: *\nDisallow: /\n"
    policy = RobotsPolicy.from_response(status, body if status != 204 else b"", UA)
    assert policy.mode == mode
    assert policy.temporary is temporary
    assert policy.status == status
    assert policy.allowed(SITE + "/page") is allowed
    assert policy.reason.startswith("robots.txt ")


def test_unreachable_says_so() -> None:
    policy = RobotsPolicy.from_response(None, b"", UA)
    assert "unreachable" in policy.reason
    assert not policy.allowed(SITE + "/")
    assert policy.crawl_delay is None and policy.sitemaps == ()


@pytest.mark.parametrize(
    ("body", "ua", "delay"),
    [
        ("User-agent: *\nCrawl-delay: 2\n", UA, 2.0),
        ("User-agent: *\nCrawl-delay: 0.5\n", UA, 0.5),
        ("User-agent: *\nCrawl-delay: 2\n\nUser-agent: crawler\nCrawl-delay: 7\n", UA, 7.0),
        ("User-agent: *\nCrawl-delay: 2\n\nUser-agent: crawler\nDisallow: /x\n", UA, None),
        ("User-agent: *\nCrawl-delay: 2\n\nUser-agent: crawler\nCrawl-delay: 7\n", "other", 2.0),
        ("User-agent: *\nCrawl-delay: soon\n", UA, None),
        ("User-agent: *\nCrawl-delay: -1\n", UA, None),
        ("User-agent: *\nDisallow: /\n", UA, None),
    ],
)
def test_crawl_delay(body: str, ua: str, delay: float | None) -> None:
    assert RobotsPolicy.from_response(200, body.encode(), ua).crawl_delay == delay


def test_sitemaps_are_canonical_absolute_and_unique() -> None:
    body = (
        b"Sitemap: https://Example.com/sitemap.xml\n"
        b"User-agent: *\nDisallow: /x\n"
        b"Sitemap: https://example.com:443/sitemap.xml#frag\n"
        b"Sitemap: /relative.xml\n"
        b"Sitemap: ftp://example.com/s.xml\n"
        b"sitemap: http://example.com/news%2fsitemap.xml\n"
    )
    policy = RobotsPolicy.from_response(200, body, UA)
    assert policy.sitemaps == (
        "https://example.com/sitemap.xml",
        "http://example.com/news%2Fsitemap.xml",
    )


def test_body_over_500_kib_is_truncated() -> None:
    head = b"User-agent: *\nDisallow: /early\n"
    padding = b"# " + b"x" * 78 + b"\n"
    body = head + padding * ((MAX_ROBOTS_BYTES - len(head)) // len(padding) + 1)
    body += b"Disallow: /late\n"
    assert len(body) > MAX_ROBOTS_BYTES
    policy = RobotsPolicy.from_response(200, body, UA)
    assert not policy.allowed(SITE + "/early")
    assert policy.allowed(SITE + "/late")
    assert "KiB" in policy.reason


def test_truncation_drops_a_rule_cut_in_half() -> None:
    # "Allow: /docs" cut after "Allow: /" would allow everything.
    head = b"User-agent: *\nDisallow: /\n"
    body = head + b"#" * (MAX_ROBOTS_BYTES - len(head) - len(b"\nAllow: /")) + b"\nAllow: /docs\n"
    assert body[:MAX_ROBOTS_BYTES].endswith(b"\nAllow: /")
    policy = RobotsPolicy.from_response(200, body, UA)
    assert not policy.allowed(SITE + "/other")


def test_byte_order_mark_is_ignored() -> None:
    policy = RobotsPolicy.from_response(200, b"\xef\xbb\xbfUser-agent: *\nDisallow: /\n", UA)
    assert not policy.allowed(SITE + "/x")


def _garbage() -> list[bytes]:
    rng = random.Random(9309)
    noise = bytes(rng.randrange(256) for _ in range(100_000))
    words = [
        b"User-agent:",
        b"Disallow:",
        b"Allow:",
        b"*",
        b"$",
        b"/",
        b"%",
        b"%zz",
        b"\n",
        b"\r",
        b"#",
        b"Crawl-delay:",
        b"1e309",
        b"nan",
        b"Sitemap:",
        b"\x00",
        b"\xff",
        b" ",
    ]
    soup = b"".join(rng.choice(words) for _ in range(100_000))
    return [
        noise,
        soup,
        b"\x00" * 1000,
        b"<html><body>Not robots</body></html>",
        b"User-agent: *\nDisallow: /" + b"*" * 5000 + b"x$\n",
        b"User-agent: *\nCrawl-delay: 1e309\nCrawl-delay: nan\n",
    ]


@pytest.mark.parametrize("body", _garbage(), ids=lambda b: repr(b[:12]))
def test_garbage_body_does_not_raise(body: bytes) -> None:
    policy = RobotsPolicy.from_response(200, body, UA)
    for path in ["/", "/a", "/%zz", "/x$", "/" + "*" * 100, "/\u00e9?q=%2f"]:
        assert isinstance(policy.allowed(SITE + path), bool)
    assert policy.crawl_delay is None or policy.crawl_delay >= 0


def test_policy_is_a_frozen_value() -> None:
    a = RobotsPolicy.from_response(200, b"User-agent: *\nDisallow: /x\n", UA)
    b = RobotsPolicy.from_response(200, b"User-agent: *\nDisallow: /x\n", UA)
    assert a == b
    with pytest.raises(AttributeError):
        a.crawl_delay = 1.0  # type: ignore[misc]
