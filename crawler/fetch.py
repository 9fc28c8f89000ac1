"""HTTP fetching: `HttpFetcher`, the crawl's `Fetcher` (crawler.seams) over aiohttp.

`HttpFetcher` owns the process's single `aiohttp.ClientSession` and turns one URL into one
`FetchResult`. It follows redirects itself, enforces the URL, header, body and time limits
from `Settings`, sniffs the encoding of HTML bodies (the parser decodes them where it
parses), and translates every failure of the network or the server into an `ErrorKind`
with a one-line message and a retry hint (crawler.fetch_errors): `fetch` never raises for
anything the other side does. Reading the response's head is crawler.headers'.

It refuses to connect to non-public addresses: IP-literal URLs and redirect targets are
checked here before any request, host names on the address they resolve to, inside the
connector's resolver (crawler.guard, which owns the address rules). Hosts in
`allowed_private_hosts` (by default the seeds' own hosts when they are such addresses) or
every host with `allow_private=True` are exempt.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar
from types import TracebackType
from urllib.parse import urldefrag, urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.connector import Connection
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.resolver import DefaultResolver

from crawler.config import Settings
from crawler.encoding import html_encoding
from crawler.fetch_errors import (
    Exchange,
    FetchFailure,
    cause,
    classify,
    elapsed_ms,
    failed_result,
    one_line,
)
from crawler.guard import (
    AddressPolicy,
    BlockedAddressError,
    GuardedResolver,
    SocketFactory,
    address_kind,
    ip_literal,
    is_public_address,
    private_hosts,
)
from crawler.headers import (
    REDIRECT_STATUSES,
    clean_header,
    decodable,
    kept_headers,
    location_url,
    parse_content_type,
)
from crawler.kinds import ErrorKind
from crawler.records import FetchResult
from crawler.urls import scheme_and_authority

# aiohttp decodes br with either of these; advertise it only when it can.
_HAS_BROTLI = any(importlib.util.find_spec(name) is not None for name in ("brotlicffi", "brotli"))
ACCEPT_ENCODING = "gzip, deflate, br" if _HAS_BROTLI else "gzip, deflate"

# aiohttp's own test (connector.NEEDS_CLEANUP_CLOSED): CPython leaked aborted TLS transports
# before 3.12.8 / 3.13.1; on fixed versions asking for the clean-up only earns a warning.
_PY = sys.version_info[:3]
_NEEDS_CLEANUP_CLOSED = _PY < (3, 12, 8) or (3, 13, 0) <= _PY < (3, 13, 1)

_CHUNK = 64 * 1024
_UNUSABLE = "unusable"  # a verdict of _check_url: no http(s) URL with a host
_UNJUDGED = "unjudged"
MAX_VERDICTS = 10_000


# The exchange of the fetch running in this task: aiohttp builds and sends each request in
# the task that awaits `session.get`, so `_StampedRequest` finds it here.
_EXCHANGE: ContextVar[Exchange | None] = ContextVar("crawler_exchange", default=None)


class _StampedRequest(aiohttp.ClientRequest):
    """Notes when a request really went out (its headers written): under a busy loop, well
    after fetch() began. `send` returns once the head is written. Not a `TraceConfig` hook:
    with any trace, aiohttp signals every stage of every request (README, "Performance")."""

    async def send(self, conn: Connection) -> aiohttp.ClientResponse:
        response = await super().send(conn)
        exchange = _EXCHANGE.get()
        if exchange is not None:
            exchange.sent_at = time.monotonic()
        return response


class HttpFetcher:
    """One HTTP client for the process: `async with HttpFetcher(settings) as f: await f.fetch(url)`.

    `allowed_private_hosts`: hosts that may be at non-public addresses; None (the default)
    means the hosts of `settings.seeds` that are (`private_hosts`). `allow_private=True`
    allows every host. `resolver` replaces aiohttp's default resolver, and `socket_factory`
    (aiohttp's: an address info in, a socket out) how sockets are made: tests pass fakes of
    both to see what would be connected to. The fetcher closes only the resolver it made.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        allow_private: bool = False,
        allowed_private_hosts: frozenset[str] | None = None,
        resolver: AbstractResolver | None = None,
        socket_factory: SocketFactory | None = None,
    ) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._allow_private = allow_private
        self._allowed_private_hosts = allowed_private_hosts
        self._resolver = resolver
        self._socket_factory = socket_factory
        self._guard: GuardedResolver | None = None
        self._policy = AddressPolicy.of(allow_all=allow_private, hosts=allowed_private_hosts or ())
        self._verdicts: dict[str, str | None] = {}  # _check_url's, by scheme and authority

    @property
    def address_policy(self) -> AddressPolicy:
        """Which private hosts this fetcher may reach: the browser's rules obey it too."""
        return self._policy

    async def __aenter__(self) -> HttpFetcher:
        if self._session is not None:
            raise RuntimeError("HttpFetcher is already open")
        s = self._settings
        inner = DefaultResolver() if self._resolver is None else self._resolver
        try:
            if self._allowed_private_hosts is None and not self._allow_private:
                seeds = await private_hosts(s.seeds, resolver=inner, dns_seconds=s.connect_timeout)
                self._policy = AddressPolicy.of(hosts=seeds)
                self._verdicts.clear()
        except BaseException:
            if self._resolver is None:
                await inner.close()
            raise
        # The connector does not close a resolver it was given: __aexit__ does.
        self._guard = GuardedResolver(inner, self._policy, owns_inner=self._resolver is None)
        connector = aiohttp.TCPConnector(
            resolver=self._guard,
            limit=s.concurrency,
            # 0 would mean "unlimited" to aiohttp, never what we want.
            limit_per_host=s.host_concurrency or s.concurrency,
            ttl_dns_cache=300,
            enable_cleanup_closed=_NEEDS_CLEANUP_CLOSED,
            socket_factory=self._socket_factory,
        )
        timeout = aiohttp.ClientTimeout(
            # total_timeout bounds the whole fetch, redirects included, with one timer of
            # fetch()'s own: an aiohttp total as well cost each request a second timer.
            total=None,
            # `connect` also covers waiting for a pooled connection and DNS; `sock_connect`
            # one TCP (+TLS) connect. Both come from connect_timeout.
            connect=s.connect_timeout,
            sock_connect=s.connect_timeout,
            sock_read=s.read_timeout,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            headers={"User-Agent": s.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
            # Cookies would be shared by every host of a crawl and grow without bound.
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True,
            raise_for_status=False,
            trust_env=False,
            # aiohttp applies these per line: the status line, and each header's name + value.
            max_line_size=s.max_header_bytes,
            max_field_size=s.max_header_bytes,
            request_class=_StampedRequest,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        guard, self._guard = self._guard, None
        try:
            if session is not None:
                await session.close()
        finally:
            if guard is not None:
                await guard.close()

    async def fetch(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_redirects: int | None = None,
    ) -> FetchResult:
        """GET `url`, following redirects (settings.max_redirects unless given); every failure
        comes back as an error_kind."""
        session = self._session
        if session is None:
            raise RuntimeError("use HttpFetcher inside 'async with'")
        started = time.perf_counter()
        limit = self._settings.max_redirects if max_redirects is None else max_redirects
        state = Exchange(url=url, max_redirects=limit)
        body = b""
        stamped = _EXCHANGE.set(state)
        try:
            self._check_url(url, kind_if_bad=ErrorKind.BAD_SCHEME)
            if "#" in url:
                state.url = urldefrag(url).url
            async with asyncio.timeout(self._settings.total_timeout or None):
                body = await self._exchange(session, state, headers)
        except FetchFailure as failure:
            return failed_result(url, state, started, failure.kind, failure.message)
        except (aiohttp.ClientError, HttpProcessingError, OSError, ValueError) as exc:
            # OSError covers TimeoutError (asyncio's included) and raw ssl.SSLError;
            # ValueError covers URLs that yarl refuses (InvalidURL is one).
            kind = classify(exc, redirected=bool(state.redirects))
            blocked = cause(exc, BlockedAddressError)
            message = self._message(kind, exc if blocked is None else blocked)
            return failed_result(url, state, started, kind, message)
        finally:
            _EXCHANGE.reset(stamped)
        return FetchResult(
            url=url,
            final_url=state.url,
            status=state.status,
            content_type=state.content_type,
            headers=state.headers,
            body=body,
            encoding=html_encoding(body, state.content_type, state.charset),
            elapsed_ms=elapsed_ms(started),
            redirects=tuple(state.redirects),
            retryable=state.status is not None and (state.status >= 500 or state.status == 429),
            sent_at=state.sent_at,
        )

    def _message(self, kind: ErrorKind, exc: BaseException) -> str:
        if kind is ErrorKind.TIMEOUT and not str(exc):
            s = self._settings
            return (
                f"{type(exc).__name__}: no complete response within the time limits "
                f"(connect {s.connect_timeout}s, read {s.read_timeout}s, total {s.total_timeout}s)"
            )
        return one_line(exc)

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        state: Exchange,
        extra_headers: Mapping[str, str] | None,
    ) -> bytes:
        """Request `state.url`, follow redirects by hand, return the final body."""
        request_headers = dict(extra_headers) if extra_headers else None
        while True:
            # status, type and headers always describe the response of state.url, if any.
            state.status = state.content_type = state.charset = None
            state.headers = ()
            async with session.get(
                state.url, headers=request_headers, allow_redirects=False
            ) as resp:
                state.status = resp.status
                state.headers = kept_headers(resp.headers.items())
                content_type = resp.headers.get("Content-Type")
                state.content_type, state.charset = parse_content_type(
                    None if content_type is None else clean_header(content_type)
                )
                location = resp.headers.get("Location")
                if resp.status in REDIRECT_STATUSES and location is not None:
                    target = self._redirect_target(state, location)
                    state.redirects.append(state.url)
                    state.url = target
                    continue
                coding = resp.headers.get("Content-Encoding")
                if coding is not None and resp.content_length != 0 and not decodable(coding):
                    # aiohttp hands such a body over as it came: compressed bytes, not text.
                    raise FetchFailure(
                        ErrorKind.BAD_CONTENT, f"unsupported Content-Encoding {coding[:50]!r}"
                    )
                return await _read_capped(resp.content, self._settings.max_body_bytes)

    def _redirect_target(self, state: Exchange, location: str) -> str:
        try:
            target = urldefrag(urljoin(state.url, location_url(location))).url
        except ValueError as exc:
            raise FetchFailure(
                ErrorKind.BAD_REDIRECT, f"unusable Location {location[:100]!r}: {exc}"
            ) from None
        self._check_url(target, kind_if_bad=ErrorKind.BAD_REDIRECT)
        if target == state.url or target in state.redirects:
            raise FetchFailure(ErrorKind.TOO_MANY_REDIRECTS, f"redirect loop back to {target}")
        if len(state.redirects) >= state.max_redirects:
            raise FetchFailure(
                ErrorKind.TOO_MANY_REDIRECTS, f"more than {state.max_redirects} redirects"
            )
        return target

    def _check_url(self, url: str, *, kind_if_bad: ErrorKind) -> None:
        limit = self._settings.max_url_length
        if len(url) > limit:
            raise FetchFailure(
                ErrorKind.URL_TOO_LONG, f"URL is {len(url)} characters, over {limit}"
            )
        # The verdict depends on the scheme and authority only: kept per "scheme://authority"
        # (a crawl has few), it spares each fetch a urlsplit and an IP parse.
        key = scheme_and_authority(url) or url
        verdict = self._verdicts.get(key, _UNJUDGED)
        if verdict is _UNJUDGED:
            verdict = self._verdicts[key] = self._judge(key)
            if len(self._verdicts) > MAX_VERDICTS:
                self._verdicts.clear()
        if verdict == _UNUSABLE:
            raise FetchFailure(kind_if_bad, f"not an http(s) URL with a host: {url[:200]!r}")
        if verdict is not None:
            raise FetchFailure(ErrorKind.BLOCKED_ADDRESS, verdict)

    def _judge(self, url: str) -> str | None:
        """None for a usable URL; `_UNUSABLE`; or why its IP literal is refused."""
        try:
            parts = urlsplit(url)
            usable = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        except ValueError:  # e.g. an unclosed '[' IPv6 literal
            usable = False
        if not usable:
            return _UNUSABLE
        # An IP literal never reaches the resolver (aiohttp connects to it directly): check
        # it here, before any request. Names are checked on what they resolve to.
        ip = ip_literal(parts.hostname or "")
        if ip is not None and not is_public_address(ip) and not self._policy.trusts(str(ip)):
            return f"{ip} is a {address_kind(ip)} address, not a public one"
        return None


async def _read_capped(stream: aiohttp.StreamReader, cap: int) -> bytes:
    """Read the (decompressed) body in chunks; stop at once when it passes `cap` bytes."""
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = await stream.read(min(_CHUNK, cap - total + 1))
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > cap:
            # Leaving the response unread makes aiohttp close the connection, not reuse it.
            raise FetchFailure(ErrorKind.TOO_LARGE, f"body is over the {cap}-byte limit")
        chunks.append(chunk)
