"""The URLs this process knows to be in the run's frontier already, bounded.

Frontier rows are never removed during a run, so leaving a known URL out of a page's links
is always safe; it spares the database most of them, since most links point at known URLs.
"""

from __future__ import annotations

from collections.abc import Iterable

KNOWN_URLS = 50_000


class KnownUrls:
    """A bounded set of URLs (oldest forgotten first). `urls` is the dict itself, for the
    hot loops that test many links without a method call each."""

    def __init__(self, size: int = KNOWN_URLS) -> None:
        self.size = size
        self.urls: dict[str, None] = {}

    def __contains__(self, url: object) -> bool:
        return url in self.urls

    def __len__(self) -> int:
        return len(self.urls)

    def add(self, url: str) -> None:
        urls = self.urls
        if url not in urls:
            urls[url] = None
            if len(urls) > self.size:
                del urls[next(iter(urls))]

    def update(self, urls: Iterable[str]) -> None:
        for url in urls:
            self.add(url)
