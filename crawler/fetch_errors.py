"""How a fetch fails: aiohttp's and the socket's exceptions, as the crawl's `ErrorKind`s.

`HttpFetcher` never lets an exception of the other side out: `classify` maps what aiohttp,
asyncio or ssl raised to an error kind (the order of its tests matters: aiohttp wraps one
error in another), `one_line` gives the message a fetch record keeps, and `failed_result`
builds the `FetchResult` of a failed exchange from what was known when it failed
(`Exchange`). Our own refusals (a URL too long, a redirect loop, a body over the cap) are
raised inside the fetcher as `FetchFailure`, already classified.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field
from typing import TypeVar

import aiohttp
from aiohttp.http_exceptions import ContentEncodingError, LineTooLong

from crawler.guard import BlockedAddressError
from crawler.kinds import ErrorKind
from crawler.records import FetchResult

RETRYABLE_KINDS = frozenset({ErrorKind.CONNECT, ErrorKind.TIMEOUT, ErrorKind.BAD_RESPONSE})
MESSAGE_MAX = 300
_E = TypeVar("_E", bound=BaseException)


class FetchFailure(Exception):
    """An exchange ended in one of our error kinds (raised and caught inside the fetcher)."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(slots=True)
class Exchange:
    """What is known so far about one fetch, kept when it fails half-way."""

    url: str
    max_redirects: int = 10
    redirects: list[str] = field(default_factory=list)
    status: int | None = None
    content_type: str | None = None
    charset: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    sent_at: float = 0.0  # when the last request's headers went out (time.monotonic())


def classify(exc: BaseException, *, redirected: bool) -> ErrorKind:
    """Map an aiohttp / socket exception to one of our error kinds (order matters)."""
    if cause(exc, BlockedAddressError) is not None:
        # Raised by GuardedResolver; aiohttp wraps it in ClientConnectorDNSError.
        return ErrorKind.BLOCKED_ADDRESS
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return ErrorKind.DNS
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.ServerFingerprintMismatch | ssl.SSLError):
        return ErrorKind.TLS
    if isinstance(exc, TimeoutError):
        return ErrorKind.TIMEOUT
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ErrorKind.CONNECT
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError) and caused_by(
        exc, ContentEncodingError
    ):
        # Corrupt compressed data (a payload error), or an encoding aiohttp cannot decode
        # here, such as br without Brotli (raised with the headers, as a response error).
        return ErrorKind.BAD_CONTENT
    if isinstance(exc, aiohttp.ClientPayloadError):
        return ErrorKind.BAD_RESPONSE
    if isinstance(exc, aiohttp.ClientResponseError):
        # A response aiohttp could not parse; its HttpProcessingError is in __cause__.
        if caused_by(exc, LineTooLong) or "Too many headers" in str(exc):
            return ErrorKind.HEADER_TOO_LARGE
        return ErrorKind.BAD_RESPONSE
    if isinstance(exc, aiohttp.InvalidURL) or (
        isinstance(exc, ValueError) and not isinstance(exc, aiohttp.ClientError)
    ):
        # A URL that passed our checks but that yarl / IDNA refuse (bad port, bad label...).
        return ErrorKind.BAD_REDIRECT if redirected else ErrorKind.BAD_SCHEME
    return ErrorKind.BAD_RESPONSE


def caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    return cause(exc, kind) is not None


def cause(exc: BaseException, kind: type[_E]) -> _E | None:
    """`exc` or the first exception of type `kind` in its cause / context chain."""
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 10:
        if isinstance(cur, kind):
            return cur
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return None


def failed_result(
    url: str, state: Exchange, started: float, kind: ErrorKind, message: str
) -> FetchResult:
    return FetchResult(
        url=url,
        final_url=state.url,
        status=state.status,
        content_type=state.content_type,
        headers=state.headers,
        elapsed_ms=elapsed_ms(started),
        redirects=tuple(state.redirects),
        error_kind=kind,
        error=message,
        retryable=kind in RETRYABLE_KINDS,
        sent_at=state.sent_at,
    )


def one_line(exc: BaseException) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 1] + "…"


def elapsed_ms(started: float) -> int:
    """Milliseconds since `started` (a time.perf_counter() reading)."""
    return int((time.perf_counter() - started) * 1000)
