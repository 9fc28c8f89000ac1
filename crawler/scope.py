"""Which discovered URLs a crawl follows: hosts, include/exclude patterns, depth, URL length.

Pure: `Scope.decide(url, depth)` returns a `Decision` with the reason, and the pool enqueues
only what it accepts. Links out of scope are still stored (the link graph needs them all).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from crawler.config import Settings


@dataclass(frozen=True, slots=True)
class Decision:
    follow: bool
    reason: str


FOLLOW = Decision(True, "in scope")


@dataclass(frozen=True)
class Scope:
    hosts: frozenset[str]
    include: tuple[re.Pattern[str], ...]
    exclude: tuple[re.Pattern[str], ...]
    max_depth: int
    max_url_length: int

    @classmethod
    def from_settings(cls, settings: Settings, seeds: tuple[str, ...]) -> Scope:
        hosts = settings.allow_hosts or tuple(urlsplit(s).hostname or "" for s in seeds)
        return cls(
            hosts=frozenset(h.lower().strip() for h in hosts if h),
            include=tuple(re.compile(p) for p in settings.include),
            exclude=tuple(re.compile(p) for p in settings.exclude),
            max_depth=settings.max_depth,
            max_url_length=settings.max_url_length,
        )

    def decide(self, url: str, depth: int) -> Decision:
        """May `url`, found at `depth` (its own depth), join the frontier?"""
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
        return FOLLOW

    def filter(self, urls: list[str], depth: int) -> list[str]:
        """The URLs of `urls` that may join the frontier at `depth`."""
        if depth > self.max_depth:
            return []
        return [u for u in urls if self.decide(u, depth).follow]


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
