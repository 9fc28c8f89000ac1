"""Reading an HTTP response's head: the headers a fetch keeps, its Content-Type and charset,
its Location as a URL, and whether its Content-Encoding is one the client decodes.

Pure: strings in, values out. aiohttp hands header values over decoded as UTF-8 with
surrogateescape, so bytes that are not UTF-8 survive to be cleaned here.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote

KEPT_HEADERS = frozenset(
    {
        "content-type",
        "etag",
        "last-modified",
        "retry-after",
        "location",
        "content-length",
        "x-robots-tag",
    }
)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# What aiohttp decodes itself (raising if it lacks the library); anything else it passes on.
DECODED_CODINGS = frozenset({"gzip", "deflate", "br", "zstd"})


def kept_headers(items: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for name, value in items:
        lname = name.lower()
        if lname in KEPT_HEADERS:
            out.append((lname, clean_header(value)))
    return tuple(out)


def clean_header(value: str) -> str:
    """aiohttp decodes header bytes as UTF-8 with surrogateescape; make them plain text."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def location_url(value: str) -> str:
    """A Location value as an ASCII URL: raw non-ASCII bytes percent-encoded, %XX kept."""
    raw = value.strip().encode("utf-8", "surrogateescape")
    return quote(raw, safe="!#$%&'()*+,-./:;=?@[]_~")


def parse_content_type(value: str | None) -> tuple[str | None, str | None]:
    """'Text/HTML; charset="ISO-8859-1"' -> ('text/html', 'iso-8859-1')."""
    if not value:
        return None, None
    mime, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset":
            charset = val.strip().strip("\"'").strip().lower() or None
    return mime.strip().lower() or None, charset


def decodable(coding: str) -> bool:
    """Is a Content-Encoding value one aiohttp decodes (or raises about), or no coding?

    aiohttp decodes exactly "gzip", "deflate", "br" and "zstd" (case-insensitive; raising if
    it lacks the library) and passes anything else through untouched: "x-gzip", "gzip, br",
    "snappy"... Those bodies are not what the Content-Type says.
    """
    return (coding.isascii() and coding.lower() in DECODED_CODINGS) or coding.strip().lower() in (
        "",
        "identity",
    )
