"""Which discovered URLs a crawl follows: hosts, include/exclude patterns, depth, URL length,
traps and per-host page budgets.

Pure: `Scope.decide(url, depth)` returns a `Decision` with the reason, and the pool enqueues
only what it accepts. Links out of scope are still stored (the link graph needs them all).

Traps are URL spaces without an end, which a site generates by accident (a relative link
that adds a segment on every page: /a/b/a/b/a/b/...) or by design (a calendar's "next month",
a search's ever-longer query). Three guards, each configurable and 0 to turn off:

- a path with more than `max_path_segments` segments;
- a path in which one segment occurs more than `max_segment_repeats` times;
- more than `max_variants` distinct query strings for one path (`QueryVariantGuard`: the one
  guard with state, a bounded LRU of paths, so memory stays flat however large the crawl).

`HostBudget` counts pages fetched per host for `max_pages_per_host`; the pool charges it
(`Scope.charge`) before each fetch, and `decide` stops queueing URLs of a host once its
budget is spent.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from crawler.config import Settings

DEFAULT_MAX_PATH_SEGMENTS = 20
DEFAULT_MAX_SEGMENT_REPEATS = 3
DEFAULT_MAX_QUERY_VARIANTS = 200
DEFAULT_MAX_GUARDED_PATHS = 1000


@dataclass(frozen=True, slots=True)
class Decision:
    follow: bool
    reason: str


FOLLOW = Decision(True, "in scope")


class QueryVariantGuard:
    """Admits at most `max_variants` distinct query strings per path (scheme, host and path).

    A query already admitted stays admitted, so asking twice about one URL is harmless. Only
    the `max_paths` most recently used paths are remembered (and a hash of each query, not
    the query), so memory is bounded by max_paths x max_variants; a path evicted from the LRU
    starts counting again, which only makes the guard looser, never wrong about a URL it
    admitted. 0 for either limit turns the guard off.
    """

    __slots__ = ("_paths", "max_paths", "max_variants")

    def __init__(
        self,
        max_variants: int = DEFAULT_MAX_QUERY_VARIANTS,
        max_paths: int = DEFAULT_MAX_GUARDED_PATHS,
    ) -> None:
        if max_variants < 0 or max_paths < 0:
            raise ValueError("QueryVariantGuard limits must not be negative")
        self.max_variants = max_variants
        self.max_paths = max_paths
        self._paths: OrderedDict[str, set[int]] = OrderedDict()

    def __len__(self) -> int:
        """How many paths are remembered."""
        return len(self._paths)

    def admit(self, path: str, query: str) -> bool:
        """May a URL of `path` with `query` be followed? Records the query if so."""
        if not self.max_variants or not self.max_paths:
            return True
        variants = self._paths.get(path)
        if variants is None:
            variants = self._paths[path] = set()
            if len(self._paths) > self.max_paths:
                self._paths.popitem(last=False)
        else:
            self._paths.move_to_end(path)
        key = hash(query)
        if key in variants:
            return True
        if len(variants) >= self.max_variants:
            return False
        variants.add(key)
        return True

    def check(self, url: str) -> Decision:
        """`admit` for a whole URL: URLs without a query always pass."""
        base, sep, query = url.partition("#")[0].partition("?")
        if not sep:
            return FOLLOW
        if self.admit(base, query):
            return FOLLOW
        return Decision(False, f"trap: more than {self.max_variants} query variants of one path")


class HostBudget:
    """Pages fetched per host, against a limit (0: no limit).

    Mutable, and per process: the pool charges it once per fetch. Memory is one counter per
    host, and a crawl's hosts are its scope's allowed hosts.
    """

    __slots__ = ("_counts", "max_pages")

    def __init__(self, max_pages: int = 0) -> None:
        if max_pages < 0:
            raise ValueError("max_pages must not be negative")
        self.max_pages = max_pages
        self._counts: dict[str, int] = {}

    def used(self, host: str) -> int:
        return self._counts.get(host, 0)

    def spent(self, host: str) -> bool:
        """True when `host` has had its `max_pages` pages."""
        return self.max_pages > 0 and self._counts.get(host, 0) >= self.max_pages

    def take(self, host: str) -> bool:
        """Count one page of `host`; False (and nothing counted) if its budget is spent."""
        if self.spent(host):
            return False
        self._counts[host] = self._counts.get(host, 0) + 1
        return True


def path_trap(url: str, *, max_segments: int, max_repeats: int) -> str | None:
    """Why the path of `url` looks like an endless URL space, or None. Pure, no state.

    Segments are the parts between slashes, empty ones included ('//' runs are a classic
    trap), except the empty one after a trailing slash. 0 turns a limit off.
    """
    segments = _path(url).split("/")[1:]
    if segments and not segments[-1]:
        segments.pop()
    if max_segments and len(segments) > max_segments:
        return f"trap: {len(segments)} path segments, more than {max_segments}"
    if max_repeats and len(segments) > max_repeats:
        counts: dict[str, int] = {}
        for segment in segments:
            n = counts[segment] = counts.get(segment, 0) + 1
            if n > max_repeats:
                return f"trap: path segment {segment[:50]!r} repeated more than {max_repeats} times"
    return None


@dataclass(frozen=True)
class Scope:
    hosts: frozenset[str]
    include: tuple[re.Pattern[str], ...]
    exclude: tuple[re.Pattern[str], ...]
    max_depth: int
    max_url_length: int
    max_path_segments: int = DEFAULT_MAX_PATH_SEGMENTS
    max_segment_repeats: int = DEFAULT_MAX_SEGMENT_REPEATS
    # The two stateful helpers: None turns each off. Not part of a Scope's value.
    query_guard: QueryVariantGuard | None = field(default=None, compare=False, repr=False)
    host_budget: HostBudget | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, seeds: tuple[str, ...]) -> Scope:
        hosts = settings.allow_hosts or tuple(urlsplit(s).hostname or "" for s in seeds)
        variants = settings.max_query_variants
        per_host = settings.max_pages_per_host
        return cls(
            hosts=frozenset(h.lower().strip() for h in hosts if h),
            include=tuple(re.compile(p) for p in settings.include),
            exclude=tuple(re.compile(p) for p in settings.exclude),
            max_depth=settings.max_depth,
            max_url_length=settings.max_url_length,
            max_path_segments=settings.max_path_segments,
            max_segment_repeats=settings.max_segment_repeats,
            query_guard=QueryVariantGuard(variants) if variants else None,
            host_budget=HostBudget(per_host) if per_host else None,
        )

    def decide(self, url: str, depth: int) -> Decision:
        """May `url`, found at `depth` (its own depth), join the frontier?

        The query-variant guard is asked last, so only URLs that pass every other rule count
        against a path's variants.
        """
        if depth > self.max_depth:
            return Decision(False, "max depth")
        if len(url) > self.max_url_length:
            return Decision(False, "url too long")
        host = _host(url)
        if host not in self.hosts:
            return Decision(False, "host not allowed")
        if self.include and not any(p.search(url) for p in self.include):
            return Decision(False, "not included")
        if any(p.search(url) for p in self.exclude):
            return Decision(False, "excluded")
        trap = path_trap(
            url, max_segments=self.max_path_segments, max_repeats=self.max_segment_repeats
        )
        if trap is not None:
            return Decision(False, trap)
        if self.host_budget is not None and self.host_budget.spent(host):
            return Decision(False, "max pages per host")
        if self.query_guard is not None:
            return self.query_guard.check(url)
        return FOLLOW

    def hosts_allow(self, url: str) -> bool:
        """Is the URL on one of the crawl's hosts?"""
        return _host(url) in self.hosts

    def filter(self, urls: list[str], depth: int) -> list[str]:
        """The URLs of `urls` that may join the frontier at `depth`."""
        if depth > self.max_depth:
            return []
        return [u for u in urls if self.decide(u, depth).follow]

    def charge(self, url: str) -> Decision:
        """May `url` be fetched now, as far as its host's page budget goes? Counts it if so.

        For the pool, once per task before fetching; FOLLOW when there is no budget.
        """
        if self.host_budget is None or self.host_budget.take(_host(url)):
            return FOLLOW
        return Decision(False, f"max pages per host ({self.host_budget.max_pages}) reached")


def _path(url: str) -> str:
    """The path of an absolute URL, without query or fragment ('' if it has none)."""
    start = url.find("://") + 3
    end = len(url)
    for sep in "?#":
        i = url.find(sep, start)
        if i != -1 and i < end:
            end = i
    slash = url.find("/", start, end)
    return "" if slash < 0 else url[slash:end]


def _host(url: str) -> str:
    # Canonical URLs: "scheme://host[:port]/..." with a lowercased host and no userinfo
    # in practice; urlsplit handles the rest.
    start = url.find("://") + 3
    end = len(url)
    for sep in "/?#":
        i = url.find(sep, start)
        if i != -1 and i < end:
            end = i
    netloc = url[start:end]
    if "@" in netloc or netloc.startswith("["):
        return (urlsplit(url).hostname or "").lower()
    return netloc.rsplit(":", 1)[0] if ":" in netloc else netloc
