"""Sitemaps (sitemaps.org): the URLs and lastmod dates of a urlset, the children of an index.

Pure: bytes in, values out. Gzipped sitemaps are inflated with a cap, so a compression bomb
stops early; a document over the cap or not XML yields what was read before the problem.
Python's expat refuses entity expansion bombs.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree.ElementTree import Element, ParseError, XMLPullParser

MAX_BYTES = 50 * 1024 * 1024  # the protocol's own limit for one (uncompressed) sitemap
MAX_URLS = 50_000


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


def parse_sitemap(body: bytes, *, max_urls: int = MAX_URLS) -> Sitemap:
    """Read a sitemap or sitemap index (gzipped or not); never raises."""
    data = inflate(body)
    parser: XMLPullParser[Element] = XMLPullParser(events=("end",))
    urls: list[tuple[str, datetime | None]] = []
    children: list[str] = []
    loc: str | None = None
    lastmod: str | None = None
    try:
        for start in range(0, len(data), 65536):
            parser.feed(data[start : start + 65536])
            for _event, element in parser.read_events():  # type: ignore[misc]  # typeshed
                if not isinstance(element, Element):
                    continue
                name = _local(element.tag)
                if name == "loc":
                    loc = (element.text or "").strip()
                elif name == "lastmod":
                    lastmod = element.text
                elif name in ("url", "sitemap"):
                    if loc:
                        if name == "url":
                            urls.append((loc, parse_lastmod(lastmod)))
                        else:
                            children.append(loc)
                    loc = lastmod = None
                    element.clear()
                if len(urls) + len(children) >= max_urls:
                    return Sitemap(tuple(urls), tuple(children))
        parser.close()
    except ParseError:
        pass
    return Sitemap(tuple(urls), tuple(children))
