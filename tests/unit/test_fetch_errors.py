"""Fetch-level failures that a local server cannot stage: aiohttp's own exceptions, mocked.

aioresponses replaces the request with the exception aiohttp raises for a DNS failure, a
refused connection, a timeout or a TLS failure; the HttpFetcher must turn each into the right
error_kind and retry hint, and never raise. URL checks that stop before any request are
here too. (aioresponses 0.7.9 can only raise with aiohttp 3.14: building a mocked response
fails on ClientResponse's new `stream_writer` argument, so real responses are tested against
local servers in tests/integration/test_fetch.py.)

Non-public addresses are refused before connecting: a fake resolver answers with private,
link-local, loopback... addresses, and the connector's connect step is replaced by a recorder
that fails the exchange, so these tests never send a packet anywhere.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_reqrep import ConnectionKey
from aioresponses import aioresponses

from crawler.config import Settings
from crawler.fetch import HttpFetcher
from crawler.guard import (
    AddressPolicy,
    BlockedAddressError,
    GuardedResolver,
    is_public_address,
    normal_host,
    private_hosts,
)
from tests.decoded import text_of

URL = "http://example.test/page"
KEY = ConnectionKey("example.test", 80, False, True, None, None, None)
TLS_KEY = ConnectionKey("example.test", 443, True, True, None, None, None)


@pytest.fixture
async def fetcher() -> AsyncIterator[HttpFetcher]:
    async with HttpFetcher(Settings(max_url_length=100)) as f:
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
    fetcher: HttpFetcher,
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
    assert text_of(result) is None and result.body == b""
    assert result.error_kind is not None


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
    fetcher: HttpFetcher, mocked: aioresponses, url: str, kind: str
) -> None:
    result = await fetcher.fetch(url)
    assert result.error_kind == kind
    assert result.retryable is False
    assert result.url == url
    # Only the yarl-refused port gets as far as aiohttp; nothing is ever sent.
    assert all(not calls for calls in mocked.requests.values())


async def test_url_checks_are_kept_per_authority_and_name_each_url(
    fetcher: HttpFetcher, mocked: aioresponses
) -> None:
    """The verdict is cached by scheme and authority; each failure still names its URL."""
    for path in ("a", "b?x#y"):
        result = await fetcher.fetch("ftp://example.test/" + path)
        assert result.error_kind == "bad_scheme"
        assert result.error is not None and path in result.error
        result = await fetcher.fetch("http://10.1.2.3:8080/" + path)
        assert result.error_kind == "blocked_address"
        assert result.error == "10.1.2.3 is a private address, not a public one"
    assert (await fetcher.fetch("http://example.test:99999/")).error_kind == "bad_scheme"
    assert all(not calls for calls in mocked.requests.values())


async def test_fetch_outside_async_with_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError):
        await HttpFetcher(Settings()).fetch(URL)


# --- non-public addresses -----------------------------------------------------------------


class FakeResolver(AbstractResolver):
    """Answers from a table; a list of answers per name is used one lookup at a time."""

    def __init__(self, table: dict[str, list[list[str]]]) -> None:
        self.table = {name: list(answers) for name, answers in table.items()}
        self.asked: list[str] = []
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        answers = self.table.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        return [
            ResolveResult(
                hostname=host,
                host=a,
                port=port,
                family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for a in addresses
        ]

    async def close(self) -> None:
        self.closed = True


class RefusingSockets:
    """A socket factory for the fetcher: records each address it is asked to connect to and
    refuses every one (a refused connection: error kind `connect`)."""

    def __init__(self) -> None:
        self.addresses: list[str] = []

    def __call__(self, addr_info: tuple[Any, ...]) -> socket.socket:
        self.addresses.append(addr_info[4][0])
        raise ConnectionRefusedError(111, "refused by the test")


@pytest.fixture
def sockets() -> RefusingSockets:
    return RefusingSockets()


NON_PUBLIC = [
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "127.0.0.1",
    "127.8.9.10",
    "169.254.169.254",
    "0.0.0.0",
    "100.64.0.1",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.1",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "2001:db8::1",
    "::ffff:10.0.0.1",
    "::ffff:127.0.0.1",
    "64:ff9b::a00:1",
    "2002:a00:1::1",
]


@pytest.mark.parametrize("address", NON_PUBLIC)
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "2606:4700::6810:1", "::ffff:8.8.8.8", "not-an-ip"]
)
def test_public_addresses(address: str) -> None:
    assert is_public_address(address) is (address != "not-an-ip")


@pytest.mark.parametrize(
    ("host", "normal"),
    [
        ("Example.TEST.", "example.test"),
        ("[::1]", "::1"),
        ("0:0::1", "::1"),
        ("10.0.0.1", "10.0.0.1"),
        ("Bücher.test", "xn--bcher-kva.test"),
    ],
)
def test_normal_host(host: str, normal: str) -> None:
    assert normal_host(host) == normal


@pytest.mark.parametrize("address", NON_PUBLIC)
async def test_names_of_non_public_addresses_are_refused_without_connecting(
    sockets: RefusingSockets, address: str
) -> None:
    resolver = FakeResolver({"inside.test": [[address]]})
    async with HttpFetcher(Settings(), resolver=resolver, socket_factory=sockets) as fetcher:
        result = await fetcher.fetch("http://inside.test/")
    assert result.error_kind == "blocked_address", result.error
    assert result.retryable is False
    assert result.status is None
    assert result.error is not None and "inside.test" in result.error and "\n" not in result.error
    assert resolver.asked == ["inside.test"]
    assert sockets.addresses == []
    assert not resolver.closed  # the caller's resolver is the caller's to close


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://127.0.0.1:8080/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://[::ffff:192.168.0.1]/",
        "https://192.168.1.1/",
    ],
)
async def test_ip_literals_are_refused_without_dns_or_connecting(
    sockets: RefusingSockets, url: str
) -> None:
    resolver = FakeResolver({})
    async with HttpFetcher(Settings(), resolver=resolver, socket_factory=sockets) as fetcher:
        result = await fetcher.fetch(url)
    assert result.error_kind == "blocked_address", result.error
    assert result.url == result.final_url == url
    assert resolver.asked == []
    assert sockets.addresses == []


async def test_allowed_hosts_may_be_private(sockets: RefusingSockets) -> None:
    resolver = FakeResolver({"intranet.test": [["10.0.0.1"]], "other.test": [["10.0.0.2"]]})
    allowed = frozenset({"intranet.test", "10.0.0.9"})
    async with HttpFetcher(
        Settings(), allowed_private_hosts=allowed, resolver=resolver, socket_factory=sockets
    ) as fetcher:
        trusted = await fetcher.fetch("http://intranet.test/")
        literal = await fetcher.fetch("http://10.0.0.9/")
        other = await fetcher.fetch("http://other.test/")
        other_literal = await fetcher.fetch("http://10.0.0.10/")
    # The allowed ones got as far as connecting (the test's connect refuses): that host only.
    assert trusted.error_kind == "connect"
    assert literal.error_kind == "connect"
    assert sockets.addresses == ["10.0.0.1", "10.0.0.9"]
    assert other.error_kind == "blocked_address"
    assert other_literal.error_kind == "blocked_address"


async def test_allow_private_allows_every_host(sockets: RefusingSockets) -> None:
    resolver = FakeResolver({"a.test": [["192.168.0.7"]]})
    async with HttpFetcher(
        Settings(), allow_private=True, resolver=resolver, socket_factory=sockets
    ) as fetcher:
        by_name = await fetcher.fetch("http://a.test/")
        by_ip = await fetcher.fetch("http://169.254.169.254/")
    assert by_name.error_kind == by_ip.error_kind == "connect"
    assert len(sockets.addresses) == 2


async def test_seed_hosts_at_private_addresses_are_allowed(sockets: RefusingSockets) -> None:
    resolver = FakeResolver({"intranet.test": [["10.1.2.3"]], "elsewhere.test": [["10.9.9.9"]]})
    settings = Settings(seeds=("http://intranet.test/", "http://[fd00::5]:8080/"))
    async with HttpFetcher(settings, resolver=resolver, socket_factory=sockets) as fetcher:
        seed = await fetcher.fetch("http://intranet.test/page")
        other = await fetcher.fetch("http://elsewhere.test/")
    assert seed.error_kind == "connect"
    assert other.error_kind == "blocked_address"


async def test_dns_rebinding_is_checked_on_the_address_connected_to(
    sockets: RefusingSockets,
) -> None:
    """The seed looked public when the run started; at fetch time it answers 127.0.0.1."""
    resolver = FakeResolver({"rebind.test": [["93.184.215.14"], ["127.0.0.1"]]})
    settings = Settings(seeds=("http://rebind.test/",))
    async with HttpFetcher(settings, resolver=resolver, socket_factory=sockets) as fetcher:
        result = await fetcher.fetch("http://rebind.test/")
    assert result.error_kind == "blocked_address"
    assert resolver.asked == ["rebind.test", "rebind.test"]
    assert sockets.addresses == []


async def test_guarded_resolver_keeps_only_public_addresses() -> None:
    inner = FakeResolver({"mixed.test": [["10.0.0.1", "93.184.215.14", "::1", "2606:4700::1"]]})
    guard = GuardedResolver(inner, AddressPolicy.of(), owns_inner=True)
    kept = await guard.resolve("mixed.test", 443)
    assert [r["host"] for r in kept] == ["93.184.215.14", "2606:4700::1"]
    assert all(r["port"] == 443 for r in kept)
    with pytest.raises(BlockedAddressError):
        await GuardedResolver(FakeResolver({"x.test": [["10.0.0.1"]]}), AddressPolicy.of()).resolve(
            "x.test"
        )
    trusting = GuardedResolver(inner, AddressPolicy.of(hosts={"MIXED.test."}))
    assert len(await trusting.resolve("mixed.test")) == 4
    await guard.close()
    assert inner.closed


async def test_private_hosts_of_seeds() -> None:
    resolver = FakeResolver(
        {
            "intranet.test": [["10.0.0.1"]],
            "public.test": [["93.184.215.14"]],
            "mixed.test": [["93.184.215.14", "127.0.0.1"]],
        }
    )
    seeds = [
        "http://intranet.test/",
        "http://public.test/",
        "http://mixed.test/a",
        "http://nowhere.test/",
        "http://127.0.0.1:8000/",
        "http://[::1]/",
        "https://93.184.215.14/",
        "not a url",
    ]
    hosts = await private_hosts(seeds, resolver=resolver)
    assert hosts == frozenset({"intranet.test", "mixed.test", "127.0.0.1", "::1"})
    assert not resolver.closed


async def test_private_hosts_of_ip_literals_needs_no_resolver() -> None:
    assert await private_hosts(["http://127.0.0.1:1/", "http://8.8.8.8/"]) == {"127.0.0.1"}
