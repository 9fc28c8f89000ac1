"""crawler.urls against web-platform-tests URL cases and our own, from data/url_cases.json."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from crawler import urls

CASES: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "url_cases.json").read_text(encoding="utf-8")
)
WPT = CASES["wpt"]
WPT_RESOLVE = [c for c in WPT if c["base"] is not None]
WPT_ABSOLUTE = [c for c in WPT if c["base"] is None]
RESOLVE = WPT_RESOLVE + CASES["resolve"]
CANONICALIZE = WPT_ABSOLUTE + CASES["canonicalize"]
# Both cores: the C-API one that runs, and the public-API fallback, must agree on every case.
CORES = [urls._join_c, urls._join_py]


def _id(case: dict[str, Any]) -> str:
    return ascii(case.get("input", case.get("url")))[:60]


def test_enough_wpt_cases_for_http_bases() -> None:
    assert len(WPT_RESOLVE) >= 60
    assert all(c["base"].startswith(("http://", "https://")) for c in WPT_RESOLVE)


@pytest.mark.parametrize("case", RESOLVE, ids=_id)
def test_resolve(case: dict[str, Any]) -> None:
    assert urls.resolve(case["input"], case["base"]) == case["expected"]


@pytest.mark.parametrize("core", CORES, ids=lambda f: f.__name__)
def test_cores_agree_on_every_case(core: Any) -> None:
    for case in RESOLVE:
        assert core(case["input"], case["base"]) == case["expected"], case
    for case in CANONICALIZE:
        assert core(case["input"], None) == case["expected"], case


def test_resolve_all_matches_resolve_on_every_case() -> None:
    by_base: dict[str, list[dict[str, Any]]] = {}
    for case in RESOLVE:
        by_base.setdefault(case["base"], []).append(case)
    for base, cases in by_base.items():
        got = urls.resolve_all([c["input"] for c in cases], base)
        assert got == [urls.resolve(c["input"], base) for c in cases]
        assert got == [c["expected"] for c in cases]


def test_resolve_all_fragment_fast_path_equals_full_parse() -> None:
    hrefs = ["#", "#top", "#a b", "#\u03b2", "#\ud800"]
    bases = [c["base"] for c in RESOLVE] + [c["input"] for c in CANONICALIZE]
    for base in bases:
        full = [urls._join_c(h, base) for h in hrefs]
        assert urls.resolve_all(hrefs, base) == full, base


CACHE_BASES = [
    "http://example.com/",
    "http://example.com/a/b?q#f",
    "https://example.com/",
    "http://u:p@example.com:81/x/",
    "http://example.com:80/",
    "http://[bad/",
    "http://example.com\\evil/a",
    "http://example.com?q",
    "http://h\tx/",
    "ftp://example.com/",
]
CACHE_HREFS = [
    "/", "/x", "/x/", "//evil/x", "/\\evil/x", "/\t/evil", "/\n/evil", "/\r/evil", "/ /x",
    "/x\t", "/x ", "/x#f", "/x?q#f", "/%2e%2e/x", "/../x", "/%7e", "/\ud800", "/\x00",
    "http://a/b", "https://A/%2f", "http://", "http://[::1]:99/", "http:foo", "HTTP://a/",
    "http://[bad/", "https://u:p@h:443/a b", "x", "",
]  # fmt: skip


@pytest.mark.parametrize("reverse", [False, True])
def test_resolve_all_cache_answers_as_a_full_parse(
    reverse: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answers kept across pages (by the base's scheme://authority) are what a parse gives
    under every base, whichever base asked first; also when the cache fills and restarts."""
    monkeypatch.setattr(urls, "_RESOLVED", {})
    bases = CACHE_BASES + sorted({c["base"] for c in RESOLVE})
    hrefs = CACHE_HREFS + [c["input"] for c in RESOLVE] + [c["input"] for c in CANONICALIZE]
    for base in reversed(bases) if reverse else bases:
        expected = [urls._join_c(href, base) for href in hrefs]
        assert urls.resolve_all(hrefs, base) == expected, base
        assert urls.resolve_all(hrefs, base) == expected, base  # from the cache
    assert urls._RESOLVED  # it was used
    monkeypatch.setattr(urls, "_RESOLVED", {})
    monkeypatch.setattr(urls, "MAX_RESOLVED", 3)
    for base in bases[:3]:
        assert urls.resolve_all(hrefs, base) == [urls._join_c(h, base) for h in hrefs]
        assert len(urls._RESOLVED) <= 3


def test_resolve_all_edge_inputs() -> None:
    assert urls.resolve_all([], "http://example.com/") == []
    assert urls.resolve_all(iter(["a", "#b"]), "http://example.com/d/") == [
        "http://example.com/d/a",
        "http://example.com/d/",
    ]
    assert urls.resolve_all(["a", "#b"], "http://ex\ud800/") == [None, None]


@pytest.mark.parametrize("case", RESOLVE, ids=_id)
def test_resolve_never_keeps_a_fragment(case: dict[str, Any]) -> None:
    got = urls.resolve(case["input"], case["base"])
    assert got is None or "#" not in got


@pytest.mark.parametrize("case", CANONICALIZE, ids=_id)
def test_canonicalize(case: dict[str, Any]) -> None:
    assert urls.canonicalize(case["input"]) == case["expected"]


@pytest.mark.parametrize("case", CANONICALIZE + RESOLVE, ids=_id)
def test_canonicalize_is_idempotent(case: dict[str, Any]) -> None:
    once = case["expected"]
    if once is not None:
        assert urls.canonicalize(once) == once


def test_resolve_of_a_canonical_url_is_itself() -> None:
    for case in RESOLVE + CANONICALIZE:
        url = case["expected"]
        if url is not None:
            assert urls.resolve(url, "https://elsewhere.example/x/") == url
            assert urls.resolve("", url) == url


@pytest.mark.parametrize("case", CASES["host"], ids=_id)
def test_host_key_and_origin(case: dict[str, Any]) -> None:
    if case["host_key"] is None:
        with pytest.raises(ValueError):
            urls.host_key(case["url"])
        with pytest.raises(ValueError):
            urls.origin(case["url"])
    else:
        assert urls.host_key(case["url"]) == case["host_key"]
        assert urls.origin(case["url"]) == case["origin"]


def test_host_key_and_origin_on_every_canonical_url() -> None:
    for case in RESOLVE + CANONICALIZE:
        url = case["expected"]
        if url is None:
            continue
        host = urls.host_key(url)
        assert host and host == host.lower()
        assert urls.origin(url) == url.split("://", 1)[0] + "://" + host
        default_port = ":443" if url.startswith("https:") else ":80"
        assert not host.endswith(default_port)


HOST_EDGES = [
    "http:///a.example/x",  # empty authority: ada skips the extra slash
    "http://\\a.example/x",
    "http://a.example\\b.example/x",
    "http://user:pw@a.example:8080?q",
    "http://a.example#f",
    " http://A.example:80/",
    "http://a.ex\tample/",
    "https://[::1]:443/x",
    "http://a.example:99999/",
    "ftp://a.example/",
    "http://exa mple.com/",
    "mailto:a@b.example",
]


@pytest.mark.parametrize("url", [c["url"] for c in CASES["host"]] + HOST_EDGES)
def test_host_cache_answers_as_a_full_parse(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The host and scheme kept per "scheme://authority" are those of a parse of the URL."""
    try:
        expected: tuple[str, int] | None = urls._parse_host_and_scheme(url)
    except ValueError:
        expected = None
    monkeypatch.setattr(urls, "_HOSTS", {})
    for _ in range(2):  # the first answer is parsed, the second is the one kept
        if expected is None:
            with pytest.raises(ValueError):
                urls._host_and_scheme(url)
        else:
            assert urls._host_and_scheme(url) == expected


def test_fallback_core_gives_the_same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """If ada-url's cffi binding went away, the public-API path must answer identically."""
    expected_all = {
        base: urls.resolve_all([c["input"] for c in RESOLVE], base)
        for base in {c["base"] for c in RESOLVE}
    }
    expected_hosts = [(urls.host_key(u), urls.origin(u)) for u in ("http://a.example:81/",)]
    monkeypatch.setattr(urls, "_lib", None)
    monkeypatch.setattr(urls, "_HOSTS", {})
    monkeypatch.setattr(urls, "_join", urls._join_py)
    for base, expected in expected_all.items():
        assert urls.resolve_all([c["input"] for c in RESOLVE], base) == expected
    for case in CANONICALIZE:
        assert urls.canonicalize(case["input"]) == case["expected"]
    assert [(urls.host_key(u), urls.origin(u)) for u in ("http://a.example:81/",)] == (
        expected_hosts
    )
    for case in CASES["host"]:
        if case["host_key"] is None:
            with pytest.raises(ValueError):
                urls.host_key(case["url"])
        else:
            assert urls.host_key(case["url"]) == case["host_key"]
            assert urls.origin(case["url"]) == case["origin"]


RELATIVE_BASES = [
    "http://example.com/",
    "http://example.com",
    "http://example.com/a/b/c.html",
    "http://example.com/a/b/",
    "http://example.com/a/b/c.html?q=1/2#f/g",
    "http://example.com//a//b/c",
    "https://u:p@Example.COM:8443/x/y;p/z",
    "http://example.com:80/a/./b/../c/d",
    "http://example.com/a%2fb/c",
    "http://example.com\\a\\b\\c",
    "http://[::1]:81/a/b",
    "http://xn--nxasmq6b.example/a/b",
    "http://bücher.example/a/b",
    "http://[bad/a/b",
    "http://h\tx/a/",
]
RELATIVE_PARTS = [
    "../", "./", "../", "a", "b.html", "-", "~", "_x", "/", ".x", "..x", ".", "..", "%2e",
    "%2E./", ":", "?", "#", "\\", " ", "\t", "é", "A", "0", "x.y",
]  # fmt: skip


def test_resolve_all_plain_relative_paths_answer_as_a_full_parse() -> None:
    """The string join of plain relative paths ("../../t2/p.html") gives what a parse gives,
    under every base; hrefs of any other shape go to the parser."""
    rng = random.Random(5)
    hrefs = [
        "".join(rng.choice(RELATIVE_PARTS) for _ in range(rng.randint(1, 7))) for _ in range(3_000)
    ]
    hrefs += ["../" * n + "p.html" for n in range(6)] + ["./a/", "a/b/", "../a/b/"]
    plain = [h for h in hrefs if urls._PLAIN_RELATIVE.match(h)]
    assert len(plain) > 300  # the fast path is exercised
    for base in RELATIVE_BASES:
        expected = [urls._join_c(href, base) for href in hrefs]
        assert urls.resolve_all(hrefs, base) == expected, base
