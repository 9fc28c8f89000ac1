"""Fetch-level failures that a local server cannot stage: aiohttp's own exceptions, mocked.

aioresponses replaces the request with the exception aiohttp raises for a DNS failure, a
refused connection, a timeout or a TLS failure; the Fetcher must turn each into the right
error_kind and retry hint, and never raise. URL checks that stop before any request are
here too. (aioresponses 0.7.9 can only raise with aiohttp 3.14: building a mocked response
fails on ClientResponse's new `stream_writer` argument, so real responses are tested against
local servers in tests/integration/test_fetch.py.)
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey
from aioresponses import aioresponses

from crawler.config import Settings
from crawler.fetch import Fetcher

URL = "http://example.test/page"
KEY = ConnectionKey("example.test", 80, False, True, None, None, None)
TLS_KEY = ConnectionKey("example.test", 443, True, True, None, None, None)


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(Settings(max_url_length=100)) as f:
        yield f


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as m:
        yield m


@pytest.mark.parametrize(
    ("exc", "kind", "retryable"),
    [
        pytest.param(
            aiohttp.ClientConnectorDNSError(KEY, OSError(-2, "Name or service not known")),
            "dns",
            False,
            id="dns",
        ),
        pytest.param(
            aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "Connection refused")),
            "connect",
            True,
            id="refused",
        ),
        pytest.param(
            aiohttp.ClientConnectorError(KEY, OSError(113, "No route to host")),
            "connect",
            True,
            id="unreachable",
        ),
        pytest.param(
            aiohttp.ConnectionTimeoutError("Connection timeout to host"),
            "timeout",
            True,
            id="connect-timeout",
        ),
        pytest.param(
            aiohttp.SocketTimeoutError("Timeout on reading data from socket"),
            "timeout",
            True,
            id="read-timeout",
        ),
        pytest.param(TimeoutError(), "timeout", True, id="total-timeout"),
        pytest.param(
            aiohttp.ClientConnectorCertificateError(
                TLS_KEY, ssl.SSLCertVerificationError(1, "certificate verify failed")
            ),
            "tls",
            False,
            id="bad-certificate",
        ),
        pytest.param(
            aiohttp.ClientConnectorSSLError(TLS_KEY, ssl.SSLError(1, "WRONG_VERSION_NUMBER")),
            "tls",
            False,
            id="tls-handshake",
        ),
        pytest.param(
            aiohttp.ServerDisconnectedError(), "bad_response", True, id="server-disconnected"
        ),
    ],
)
async def test_network_failures_become_error_kinds(
    fetcher: Fetcher,
    mocked: aioresponses,
    exc: Exception,
    kind: str,
    retryable: bool,
) -> None:
    mocked.get(URL, exception=exc)
    result = await fetcher.fetch(URL)
    assert result.error_kind == kind
    assert result.retryable is retryable
    assert result.error and "\n" not in result.error
    assert result.status is None
    assert result.url == result.final_url == URL
    assert result.text is None and result.body == b""
    assert not result.ok


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://example.test/" + "a" * 100, "url_too_long"),
        ("ftp://example.test/file", "bad_scheme"),
        ("mailto:someone@example.test", "bad_scheme"),
        ("http:///no-host", "bad_scheme"),
        ("http://[::1/", "bad_scheme"),
        ("http://example.test:99999/", "bad_scheme"),
    ],
)
async def test_unusable_urls_fail_without_a_request(
    fetcher: Fetcher, mocked: aioresponses, url: str, kind: str
) -> None:
    result = await fetcher.fetch(url)
    assert result.error_kind == kind
    assert result.retryable is False
    assert result.url == url
    # Only the yarl-refused port gets as far as aiohttp; nothing is ever sent.
    assert all(not calls for calls in mocked.requests.values())


async def test_fetch_outside_async_with_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError):
        await Fetcher(Settings()).fetch(URL)
