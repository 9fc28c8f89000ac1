"""Sitemap parsing: urlsets, indexes, gzip, lastmod, caps and garbage."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import pytest

from crawler.sitemap import MAX_URLS, Sitemap, SitemapReader, inflate, parse_lastmod

URLSET = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>http://a.example/</loc><lastmod>2026-11-01</lastmod></url>
  <url><loc> http://a.example/b.html </loc></url>
  <url><lastmod>2026-11-02</lastmod></url>
</urlset>"""

INDEX = b"""<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>http://a.example/s1.xml.gz</loc></sitemap>
  <sitemap><loc>http://a.example/s2.xml</loc><lastmod>2026-01-01</lastmod></sitemap>
</sitemapindex>"""


def parse_sitemap(body: bytes, *, max_urls: int = MAX_URLS) -> Sitemap:
    """A whole sitemap (gzipped or not) read at once, as the crawl reads it in slices."""
    reader = SitemapReader(max_urls=max_urls)
    for _ in reader.feed_in_slices(inflate(body)):
        pass
    return reader.close()


def test_urlset_gives_locations_and_lastmod() -> None:
    sitemap = parse_sitemap(URLSET)
    assert sitemap.urls == (
        ("http://a.example/", datetime(2026, 11, 1, tzinfo=UTC)),
        ("http://a.example/b.html", None),
    )
    assert sitemap.sitemaps == ()


def test_index_gives_child_sitemaps() -> None:
    sitemap = parse_sitemap(INDEX)
    assert sitemap.sitemaps == ("http://a.example/s1.xml.gz", "http://a.example/s2.xml")
    assert sitemap.urls == ()


def test_gzipped_sitemaps_are_read() -> None:
    assert parse_sitemap(gzip.compress(URLSET)).urls == parse_sitemap(URLSET).urls


def test_a_gzip_bomb_stops_at_the_cap() -> None:
    bomb = gzip.compress(b"<urlset>" + b" " * (200 * 1024 * 1024))
    assert parse_sitemap(bomb).urls == ()


def test_url_count_is_capped() -> None:
    many = (
        b"<urlset>"
        + b"".join(b"<url><loc>http://a.example/%d</loc></url>" % i for i in range(100))
        + b"</urlset>"
    )
    assert len(parse_sitemap(many, max_urls=10).urls) == 10


@pytest.mark.parametrize(
    "body",
    [b"", b"not xml at all", b"<urlset><url><loc>http://a/", b"\x00\xff\xfe", b"<!DOCTYPE x ["],
)
def test_garbage_never_raises(body: bytes) -> None:
    parse_sitemap(body)


def test_entity_expansion_is_refused() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + b"".join(
            b'<!ENTITY %c "%s">' % (ord("b") + i, (b"&%c;" % (ord("a") + i)) * 10) for i in range(8)
        )
        + b"]><urlset><url><loc>&i;</loc></url></urlset>"
    )
    sitemap = parse_sitemap(laughs)
    assert all(len(loc) < 10_000 for loc, _ in sitemap.urls)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T10:00:00Z", datetime(2026, 11, 1, 10, tzinfo=UTC)),
        ("2026-11-01T10:00:00+00:00", datetime(2026, 11, 1, 10, tzinfo=UTC)),
        ("yesterday", None),
        (None, None),
        ("", None),
    ],
)
def test_lastmod_dates(value: str | None, expected: datetime | None) -> None:
    assert parse_lastmod(value) == expected


@pytest.mark.parametrize("size", [1, 7, 64])
def test_a_sitemap_fed_in_slices_reads_as_a_whole(size: int) -> None:
    """The pool feeds a sitemap to the reader in slices, with turns of the loop between."""
    cut = URLSET.index(b"</url>") + len(b"</url>")
    broken = URLSET[:cut] + b"<<>>" + URLSET[cut:]  # not XML after the first URL
    for body in (URLSET, INDEX, broken):
        reader = SitemapReader()
        for start in range(0, len(body), size):
            reader.feed(body[start : start + size])
        assert reader.close() == parse_sitemap(body)
    assert parse_sitemap(broken).urls == parse_sitemap(URLSET).urls[:1]
