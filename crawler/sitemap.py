"""Sitemaps (sitemaps.org): the URLs and lastmod dates of a urlset, the children of an index.

Pure: bytes in, values out. Gzipped sitemaps are inflated with a cap, so a compression bomb
stops early; a document over the cap or not XML yields what was read before the problem.
Python's expat refuses entity expansion bombs.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree.ElementTree import Element, ParseError, XMLPullParser

MAX_BYTES = 50 * 1024 * 1024  # the protocol's own limit for one (uncompressed) sitemap
MAX_URLS = 50_000
FEED_BYTES = 16_384  # a slice of a sitemap: about 230 URLs, a millisecond of parsing


@dataclass(frozen=True, slots=True)
class Sitemap:
    urls: tuple[tuple[str, datetime | None], ...] = ()  # (loc, lastmod) of a urlset
    sitemaps: tuple[str, ...] = ()  # child sitemaps of an index


def inflate(body: bytes, limit: int = MAX_BYTES) -> bytes:
    """The body, gunzipped when it is gzip, cut at `limit` bytes."""
    if not body.startswith(b"\x1f\x8b"):
        return body[:limit]
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        return inflater.decompress(body, limit)
    except zlib.error:
        return b""


def parse_lastmod(value: str | None) -> datetime | None:
    """W3C datetime (a date, or a date and time with a zone) as an aware datetime."""
    if not value:
        return None
    value = value.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class SitemapReader:
    """A sitemap read as its bytes are fed: each `feed` parses only what it is given, so a
    caller on the event loop can read a big sitemap in slices, with turns of the loop in
    between, and no thread holding the interpreter lock for the whole document."""

    def __init__(self, *, max_urls: int = MAX_URLS) -> None:
        self.max_urls = max_urls
        self.parser: XMLPullParser[Element] = XMLPullParser(events=("end",))
        self.urls: list[tuple[str, datetime | None]] = []
        self.children: list[str] = []
        self.loc: str | None = None
        self.lastmod: str | None = None
        self.done = False  # MAX_URLS reached, the end, or not XML past this point

    def feed(self, data: bytes) -> None:
        if self.done:
            return
        try:
            self.parser.feed(data)
            self._take()
        except ParseError:
            self.done = True

    def _take(self) -> None:
        for _event, element in self.parser.read_events():  # type: ignore[misc]  # typeshed
            if not isinstance(element, Element):
                continue
            name = _local(element.tag)
            if name == "loc":
                self.loc = (element.text or "").strip()
            elif name == "lastmod":
                self.lastmod = element.text
            elif name in ("url", "sitemap"):
                if self.loc:
                    if name == "url":
                        self.urls.append((self.loc, parse_lastmod(self.lastmod)))
                    else:
                        self.children.append(self.loc)
                self.loc = self.lastmod = None
                element.clear()
            if len(self.urls) + len(self.children) >= self.max_urls:
                self.done = True
                return

    def feed_in_slices(self, data: bytes) -> Iterator[None]:
        """Feed `data` a FEED_BYTES slice at a time, yielding after each slice that leaves
        more to read (a caller on the event loop gives the loop a turn there)."""
        for start in range(0, len(data), FEED_BYTES):
            self.feed(data[start : start + FEED_BYTES])
            if self.done:
                return
            yield

    def close(self) -> Sitemap:
        """What was read; the document ends here."""
        if not self.done:
            self.done = True
            try:
                self.parser.close()
                self._take()
            except ParseError:
                pass
        return Sitemap(tuple(self.urls), tuple(self.children))
