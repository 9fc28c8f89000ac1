"""Encoding sniffing of HTML bodies (`crawler.encoding`): declared, then valid UTF-8, then
windows-1252 as browsers do for an undeclared legacy page."""

from __future__ import annotations

import subprocess
import sys

import pytest

from crawler import fetch
from crawler.encoding import decode_html, html_encoding

PAGE = "<html><head><title>{}</title></head><body><p>{}</p></body></html>"


@pytest.mark.parametrize(
    ("body", "content_type", "charset", "expected"),
    [
        # Undeclared and not UTF-8: windows-1252, as browsers do (WHATWG), not U+FFFD.
        (PAGE.format("x", "Pokorný").encode("cp1252"), "text/html", None, "Pokorný"),
        (PAGE.format("x", "“quoted” €5").encode("cp1252"), "text/html", None, "“quoted” €5"),
        # Undeclared UTF-8 stays UTF-8, also when the size cap cut a character in two.
        (PAGE.format("x", "Pokorný").encode(), "text/html", None, "Pokorný"),
        ("<p>Zürich ü".encode()[:-1], "text/html", None, "Zürich"),
        # A declaration wins over sniffing, even a wrong one.
        (b"<p>caf\xe9</p>", "text/html", "utf-8", "caf\ufffd"),
        (b"<meta charset='utf-8'><p>caf\xe9</p>", "text/html", None, "caf\ufffd"),
        (b"<meta charset='iso-8859-2'><p>\xb1</p>", "text/html", None, "ą"),
        ("\ufeff<p>ý</p>".encode("utf-16-le"), "text/html", None, "ý"),
    ],
    ids=[
        "undeclared-cp1252",
        "undeclared-cp1252-punctuation",
        "undeclared-utf8",
        "utf8-cut-by-cap",
        "header-wins",
        "meta-wins",
        "meta-latin2",
        "bom",
    ],
)
def test_decode_html(body: bytes, content_type: str, charset: str | None, expected: str) -> None:
    text = decode_html(body, content_type, charset)
    assert text is not None and expected in text


def test_not_html_has_no_encoding() -> None:
    assert html_encoding(b"\x89PNG\r\n", "image/png", None) is None
    assert html_encoding(b"plain words", None, None) is None
    assert html_encoding(b"  <p>sniffed as HTML</p>", None, None) == "utf-8"


def test_fetch_no_longer_holds_the_sniffing() -> None:
    """The encoding functions live once, in crawler.encoding (issue 17)."""
    for name in ("decode_html", "_codec", "_is_html", "_META_CHARSET"):
        assert not hasattr(fetch, name), name


def test_reparse_does_not_import_aiohttp() -> None:
    code = "import sys, crawler.reparse; print('aiohttp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
