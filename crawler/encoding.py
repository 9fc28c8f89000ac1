"""The character encoding of an HTML body: which codec turns its bytes into text.

Pure: bytes and header values in, a Python codec name out. The fetcher calls
`html_encoding` on every response (the parser decodes the body where it parses it), and
`crawler reparse` calls `decode_html` on stored bodies, so both read a body alike.

The order is the HTML standard's encoding sniffing: a byte order mark wins, then the
Content-Type charset, then a `<meta>` charset in the first 4 KiB. A body that declares
nothing is UTF-8 when its bytes are valid UTF-8 (a body cut by the size cap inside a
character still is), else windows-1252, the default the WHATWG Encoding Standard gives
browsers for an undeclared legacy document. Labels that the web reads as windows-1252
(`iso-8859-1`, `ascii`, …) are read so here too. Python's cp1252 leaves the five bytes
windows-1252 maps to C1 controls (0x81, 0x8D, 0x8F, 0x90, 0x9D) undefined: they decode as
U+FFFD, where a browser shows an invisible control.
"""

from __future__ import annotations

import codecs
import re

from crawler.records import decode

__all__ = ["HTML_TYPES", "decode_html", "html_encoding"]

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_META_SCAN = 4096
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Labels browsers decode differently from Python (WHATWG Encoding Standard): these are
# windows-1252 on the web, so bytes 0x80-0x9F become € “ ” … instead of C1 controls.
_WEB_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "x-user-defined": "cp1252",
}
# The fallback for an undeclared body that is not UTF-8 (WHATWG: windows-1252).
UNDECLARED_LEGACY = "cp1252"
_UTF8 = codecs.getincrementaldecoder("utf-8")


def _is_html(body: bytes, content_type: str | None) -> bool:
    if content_type is not None:
        return content_type in HTML_TYPES
    return body.removeprefix(codecs.BOM_UTF8).lstrip().startswith(b"<")


def _codec(label: str | None) -> str | None:
    """A Python codec name for a charset label, or None when Python has no such text codec."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    if not name.isascii():
        return None
    name = _WEB_ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):  # ValueError: e.g. an embedded NUL
        return None
    # codecs.lookup also finds bytes-to-bytes codecs (base64, zlib...): not charsets.
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def _is_utf8(body: bytes) -> bool:
    """Valid UTF-8, allowing a character cut off at the end (a body stopped by a size cap).
    ASCII is checked first: no decoding, no string made, for most of the web."""
    if body.isascii():
        return True
    try:
        _UTF8().decode(body, final=False)
    except UnicodeDecodeError:
        return False
    return True


def html_encoding(body: bytes, content_type: str | None, charset: str | None) -> str | None:
    """The codec to decode the body with if it is HTML, else None.

    A byte order mark wins, then the Content-Type `charset`, then a <meta> charset in the
    first 4 KiB, then UTF-8 if the bytes are UTF-8, else windows-1252.
    """
    if not _is_html(body, content_type):
        return None
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    encoding = _codec(charset)
    if encoding is None:
        match = _META_CHARSET.search(body[:_META_SCAN])
        if match is not None:
            encoding = _codec(match.group(1).decode("ascii"))
            # A <meta> readable as ASCII cannot be UTF-16 (HTML standard: use UTF-8).
            if encoding is not None and encoding.startswith("utf-16"):
                encoding = "utf-8"
    if encoding is not None:
        return encoding
    return "utf-8" if _is_utf8(body) else UNDECLARED_LEGACY


def decode_html(body: bytes, content_type: str | None, charset: str | None) -> str | None:
    """The body as text if it is HTML (decoded as `html_encoding` says), else None."""
    encoding = html_encoding(body, content_type, charset)
    return None if encoding is None else decode(body, encoding)
