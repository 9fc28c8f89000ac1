"""The body of a fetch result as text, for tests that check what the fetcher sniffed."""

from __future__ import annotations

from crawler.records import FetchResult, decode


def text_of(result: FetchResult) -> str | None:
    """The body decoded with the sniffed encoding, if it is HTML, else None."""
    return None if result.encoding is None else decode(result.body, result.encoding)


def html_text(result: FetchResult) -> str:
    """`text_of` for a result that must be HTML."""
    text = text_of(result)
    assert text is not None, f"{result.url} is not HTML ({result.content_type})"
    return text
