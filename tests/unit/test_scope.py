"""Scope decisions, table-driven: hosts, include/exclude, depth, URL length, traps, budgets.

Every row is (id, scope changes, url, depth, follow?, reason). Scope is pure: the only state
is in the query-variant guard and the host budget, tested on their own below.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from crawler.config import Settings
from crawler.scope import (
    DEFAULT_MAX_PATH_SEGMENTS,
    DEFAULT_MAX_QUERY_VARIANTS,
    DEFAULT_MAX_SEGMENT_REPEATS,
    FOLLOW,
    Decision,
    HostBudget,
    QueryVariantGuard,
    Scope,
    path_trap,
)

BASE = Scope(
    hosts=frozenset({"example.com", "b.example", "127.0.0.1", "::1"}),
    include=(),
    exclude=(),
    max_depth=3,
    max_url_length=100,
)


def scope(**changes: Any) -> Scope:
    if "include" in changes:
        changes["include"] = tuple(re.compile(p) for p in changes["include"])
    if "exclude" in changes:
        changes["exclude"] = tuple(re.compile(p) for p in changes["exclude"])
    return dataclasses.replace(BASE, **changes)


def deep(n: int) -> str:
    return "http://example.com" + "".join(f"/s{i}" for i in range(n))


CASES: list[tuple[str, dict[str, Any], str, int, bool, str]] = [
    # hosts
    ("same-host", {}, "http://example.com/a", 1, True, "in scope"),
    ("other-allowed-host", {}, "https://b.example/", 1, True, "in scope"),
    ("other-host", {}, "http://elsewhere.example/", 1, False, "host not allowed"),
    ("subdomain-is-another-host", {}, "http://www.example.com/", 1, False, "host not allowed"),
    ("port-is-same-host", {}, "http://example.com:8080/x", 1, True, "in scope"),
    ("ip-host-with-port", {}, "http://127.0.0.1:8000/", 1, True, "in scope"),
    ("ipv6-host", {}, "http://[::1]:8000/", 1, True, "in scope"),
    ("userinfo-host", {}, "http://user:pw@example.com/", 1, True, "in scope"),
    ("userinfo-trick", {}, "http://example.com@evil.example/", 1, False, "host not allowed"),
    ("no-path", {}, "http://example.com", 0, True, "in scope"),
    ("query-before-path", {}, "http://example.com?x=1", 0, True, "in scope"),
    # include / exclude
    ("included", {"include": [r"/docs/"]}, "http://example.com/docs/a", 1, True, "in scope"),
    ("not-included", {"include": [r"/docs/"]}, "http://example.com/blog", 1, False, "not included"),
    ("any-include", {"include": ["/a$", "/b$"]}, "http://example.com/b", 1, True, "in scope"),
    ("excluded", {"exclude": [r"\.pdf$"]}, "http://example.com/f.pdf", 1, False, "excluded"),
    (
        "exclude-beats-include",
        {"include": ["/docs/"], "exclude": ["/docs/old/"]},
        "http://example.com/docs/old/x",
        1,
        False,
        "excluded",
    ),
    ("host-before-include", {"include": ["."]}, "http://x.example/", 1, False, "host not allowed"),
    # depth
    ("depth-at-max", {}, "http://example.com/", 3, True, "in scope"),
    ("depth-over-max", {}, "http://example.com/", 4, False, "max depth"),
    ("depth-zero-max", {"max_depth": 0}, "http://example.com/", 1, False, "max depth"),
    # URL length
    ("length-at-max", {}, "http://example.com/" + "a" * 81, 1, True, "in scope"),
    ("length-over-max", {}, "http://example.com/" + "a" * 82, 1, False, "url too long"),
    ("length-before-host", {}, "http://x.example/" + "a" * 100, 1, False, "url too long"),
    # traps: repeated segments (3 repeats allowed by default)
    ("repeat-3", {}, "http://example.com/a/b/a/b/a/b", 1, True, "in scope"),
    ("repeat-4", {}, "http://example.com/a/b/a/b/a/b/a", 1, False, "trap: path segment 'a'"),
    ("repeat-run", {}, "http://example.com/x/x/x/x", 1, False, "trap: path segment 'x'"),
    ("repeat-empty", {}, "http://example.com/a/////b", 1, False, "trap: path segment ''"),
    ("trailing-slash", {}, "http://example.com/a/a/a/", 1, True, "in scope"),
    ("repeat-in-query-ok", {}, "http://example.com/p?a/a/a/a/a", 1, True, "in scope"),
    ("repeat-limit-off", {"max_segment_repeats": 0}, "http://example.com/x/x/x/x", 1, True, "in"),
    ("repeat-limit-1", {"max_segment_repeats": 1}, "http://example.com/x/y/x", 1, False, "trap"),
    # traps: too many segments (20 by default)
    ("segments-20", {"max_url_length": 500}, deep(20), 1, True, "in scope"),
    ("segments-21", {"max_url_length": 500}, deep(21), 1, False, "trap: 21 path segments"),
    ("segments-off", {"max_url_length": 500, "max_path_segments": 0}, deep(40), 1, True, "in"),
    ("segments-5", {"max_path_segments": 5}, deep(6), 1, False, "trap: 6 path segments"),
]


@pytest.mark.parametrize(
    ("changes", "url", "depth", "follow", "reason"),
    [pytest.param(*row[1:], id=row[0]) for row in CASES],
)
def test_decide(changes: dict[str, Any], url: str, depth: int, follow: bool, reason: str) -> None:
    decision = scope(**changes).decide(url, depth)
    assert decision.follow is follow
    assert decision.reason.startswith(reason), decision.reason


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://example.com/x/x/x/x/x", True),  # a trap, but on an allowed host
        ("http://example.com:8080/", True),
        ("http://elsewhere.example/", False),
        ("http://example.com@elsewhere.example/", False),
    ],
)
def test_hosts_allow_looks_at_the_host_only(url: str, allowed: bool) -> None:
    assert BASE.hosts_allow(url) is allowed


def test_filter_keeps_order_and_drops_everything_past_max_depth() -> None:
    urls = ["http://example.com/1", "http://no.example/", "http://b.example/2"]
    assert BASE.filter(urls, 1) == ["http://example.com/1", "http://b.example/2"]
    assert BASE.filter(urls, 4) == []


@pytest.mark.parametrize(
    ("path", "trap"),
    [
        ("/", None),
        ("", None),
        ("/a/b/c", None),
        ("/2024/01/01/01", None),
        ("/2024/01/01/01/01", "trap: path segment '01' repeated more than 3 times"),
        ("/a/b/a/b/a/b/a/b", "trap: path segment 'a' repeated more than 3 times"),
        ("/" + "/".join(str(i) for i in range(21)), "trap: 21 path segments, more than 20"),
        ("/" + "x" * 200 + ("/" + "x" * 200) * 3, "trap: path segment 'xxxxxxxxxxxxxxx"),
    ],
)
def test_path_trap(path: str, trap: str | None) -> None:
    found = path_trap("http://h" + path + "?q#f", max_segments=20, max_repeats=3)
    if trap is None:
        assert found is None
    else:
        assert found is not None and found.startswith(trap), found
        assert len(found) < 150


# --- the query-variant guard --------------------------------------------------------------


def test_query_variants_of_one_path_are_capped() -> None:
    guard = QueryVariantGuard(max_variants=3)
    urls = [f"http://example.com/cal?page={n}" for n in range(10)]
    decisions = [guard.check(u) for u in urls]
    assert [d.follow for d in decisions] == [True] * 3 + [False] * 7
    assert decisions[3].reason == "trap: more than 3 query variants of one path"
    # Admitted URLs stay admitted; other paths and query-less URLs are not affected.
    assert all(guard.check(u).follow for u in urls[:3])
    assert guard.check("http://example.com/cal").follow
    assert guard.check("http://example.com/other?page=9").follow
    assert guard.check("http://b.example/cal?page=9").follow


def test_ever_growing_query_is_stopped() -> None:
    guard = QueryVariantGuard(max_variants=5)
    q = "a"
    followed = 0
    for _ in range(100):
        if guard.check(f"http://example.com/grow?q={q}").follow:
            followed += 1
        q += "a"
    assert followed == 5


def test_query_guard_memory_is_bounded_lru() -> None:
    guard = QueryVariantGuard(max_variants=2, max_paths=3)
    for path in ("/a", "/b", "/c"):
        assert guard.admit(path, "1") and guard.admit(path, "2")
        assert not guard.admit(path, "3")
    assert guard.admit("/a", "1")  # /a is now the most recent; /b the oldest
    assert guard.admit("/d", "1")
    assert len(guard) == 3
    assert guard.admit("/b", "3")  # /b was forgotten: it counts from zero again
    assert not guard.admit("/a", "3")  # /a was kept
    for n in range(10_000):
        guard.admit(f"/p{n}", "x")
    assert len(guard) == 3


def test_query_guard_can_be_off() -> None:
    for guard in (QueryVariantGuard(max_variants=0), QueryVariantGuard(max_paths=0)):
        assert all(guard.admit("/p", str(n)) for n in range(1000))
        assert len(guard) == 0
    with pytest.raises(ValueError):
        QueryVariantGuard(max_variants=-1)


def test_scope_asks_the_query_guard_last() -> None:
    s = scope(query_guard=QueryVariantGuard(max_variants=2))
    # Out of scope for another reason: not counted against the path's variants.
    assert s.decide("http://example.com/p?" + "x" * 200, 1).reason == "url too long"
    assert s.decide("http://example.com/p?1", 9).reason == "max depth"
    assert s.filter(["http://example.com/p?1", "http://example.com/p?2"], 1) == [
        "http://example.com/p?1",
        "http://example.com/p?2",
    ]
    assert s.decide("http://example.com/p?3", 1).reason.startswith("trap: more than 2 query")
    assert s.decide("http://example.com/p?1", 1) == FOLLOW


# --- the per-host budget ------------------------------------------------------------------


def test_host_budget_counts_pages_per_host() -> None:
    budget = HostBudget(2)
    assert [budget.take("a") for _ in range(4)] == [True, True, False, False]
    assert budget.used("a") == 2 and budget.spent("a")
    assert budget.take("b") and not budget.spent("b")
    unlimited = HostBudget(0)
    assert all(unlimited.take("a") for _ in range(1000)) and not unlimited.spent("a")
    with pytest.raises(ValueError):
        HostBudget(-1)


def test_scope_charges_and_honours_the_host_budget() -> None:
    s = scope(host_budget=HostBudget(2))
    assert s.charge("http://example.com/1") == FOLLOW
    assert s.decide("http://example.com:8080/new", 1) == FOLLOW
    assert s.charge("http://example.com:8080/2") == FOLLOW  # one host, any port
    refused = s.charge("http://example.com/3")
    assert refused == Decision(False, "max pages per host (2) reached")
    assert s.decide("http://example.com/new", 1) == Decision(False, "max pages per host")
    assert s.decide("http://b.example/new", 1) == FOLLOW
    assert BASE.charge("http://example.com/") == FOLLOW  # no budget: always


# --- from settings ------------------------------------------------------------------------


def test_from_settings_defaults() -> None:
    s = Scope.from_settings(Settings(include=("/a",), exclude=("/b",)), ("http://Ex.COM:81/",))
    assert s.hosts == frozenset({"ex.com"})
    assert [p.pattern for p in s.include] == ["/a"]
    assert [p.pattern for p in s.exclude] == ["/b"]
    assert s.max_depth == Settings().max_depth
    assert s.max_url_length == Settings().max_url_length
    assert s.max_path_segments == DEFAULT_MAX_PATH_SEGMENTS
    assert s.max_segment_repeats == DEFAULT_MAX_SEGMENT_REPEATS
    assert s.query_guard is not None and s.query_guard.max_variants == DEFAULT_MAX_QUERY_VARIANTS


def test_from_settings_allow_hosts_win_over_seeds() -> None:
    s = Scope.from_settings(Settings(allow_hosts=(" A.example ", "b.example")), ("http://c/",))
    assert s.hosts == frozenset({"a.example", "b.example"})


def test_scope_is_a_value_whatever_its_guards_remember() -> None:
    a = scope(query_guard=QueryVariantGuard())
    b = scope(query_guard=QueryVariantGuard())
    a.decide("http://example.com/p?1", 1)
    assert a == b
    assert hash(a) == hash(b)
