"""The address guard: which hosts the crawler may connect to, checked where it connects.

A crawler must not be turned against the network it runs in: it refuses non-public
addresses (loopback, private, shared, link-local, unspecified, multicast, reserved, and
IPv6 forms that embed them). `GuardedResolver` wraps aiohttp's resolver, so the address
checked is the address connected to, and a DNS answer that changes between two lookups
cannot slip through. `AddressPolicy` names the hosts exempt (a seed's own host, or all with
--allow-private); `private_hosts` finds the seeds' hosts that need the exemption. IP-literal
URLs never reach a resolver: the fetcher checks them with `is_public_address`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# RFC 6052 NAT64 prefix: its last 32 bits are an IPv4 address the gateway connects to.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

# How the connector makes a socket for an address info (aiohttp's SocketFactoryType): the
# fetcher takes one, so tests can see where it would connect without connecting.
SocketFactory = Callable[[tuple[Any, ...]], socket.socket]


class BlockedAddressError(OSError):
    """A host has no address the crawler may connect to (raised inside the resolver)."""


def is_public_address(address: str | IPAddress) -> bool:
    """True for a globally routable unicast address: what a crawler may connect to.

    False for loopback, private (RFC 1918, fc00::/7), shared (100.64.0.0/10), link-local
    (169.254.0.0/16, fe80::/10), unspecified, multicast, reserved and documentation ranges,
    for IPv6 forms that embed such an IPv4 address (::ffff:0:0/96, 64:ff9b::/96, 2002::/16),
    and for anything that is not an IP address at all.
    """
    if isinstance(address, str):
        try:
            ip: IPAddress = ipaddress.ip_address(address)
        except ValueError:
            return False
    else:
        ip = address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public_address(ip.ipv4_mapped)
        if ip in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None and not is_public_address(ip.sixtofour):
            return False
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def normal_host(host: str) -> str:
    """A host as the address checks compare it: lower-case, no trailing dot, no brackets,
    IP literals in their standard spelling ("[::1]" and "0:0::1" are both "::1"), names in
    their ASCII form (what the resolver is asked about: "bücher.test" is "xn--bcher-kva.test").
    """
    host = host.strip().lower().rstrip(".")
    ip = ip_literal(host)
    if ip is not None:
        return str(ip)
    host = host.strip("[]")
    if not host.isascii():
        with contextlib.suppress(UnicodeError):  # a name IDNA refuses stays as it is
            host = host.encode("idna").decode("ascii")
    return host


def address_kind(ip: IPAddress) -> str:
    """What kind of non-public address `ip` is, for messages."""
    for attribute, name in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_unspecified", "unspecified"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(ip, attribute):
            return name
    return "non-public"


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which hosts may be at non-public addresses: all of them, or only `hosts`."""

    allow_all: bool = False
    hosts: frozenset[str] = frozenset()

    @classmethod
    def of(cls, *, allow_all: bool = False, hosts: Iterable[str] = ()) -> AddressPolicy:
        return cls(allow_all, frozenset(normal_host(h) for h in hosts if h))

    def trusts(self, host: str) -> bool:
        return self.allow_all or normal_host(host) in self.hosts


class GuardedResolver(AbstractResolver):
    """Wraps a resolver and drops the non-public addresses of hosts the policy does not trust.

    The connector connects only to what `resolve` returns, so this is the check that cannot
    be raced: a host that resolves only to such addresses raises `BlockedAddressError` (an
    OSError, which aiohttp wraps in `ClientConnectorDNSError`) and nothing is connected to.
    A host with both kinds keeps its public addresses.
    """

    def __init__(
        self, inner: AbstractResolver, policy: AddressPolicy, *, owns_inner: bool = False
    ) -> None:
        self._inner = inner
        self._policy = policy
        self._owns_inner = owns_inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self._policy.trusts(host):
            return results
        kept = [r for r in results if is_public_address(r["host"])]
        if not kept:
            shown = ", ".join(sorted({r["host"] for r in results})[:3]) or "nothing"
            raise BlockedAddressError(f"{host} resolves to a non-public address ({shown})")
        return kept

    async def close(self) -> None:
        if self._owns_inner:
            await self._inner.close()


async def private_hosts(
    urls: Iterable[str],
    *,
    resolver: AbstractResolver | None = None,
    dns_seconds: float = 10.0,
) -> frozenset[str]:
    """The hosts of `urls` that are, or resolve to, a non-public address (normalised).

    A run passes its seeds' to `HttpFetcher(allowed_private_hosts=...)`: crawling
    http://127.0.0.1:8000/ or http://intranet.local/ is then allowed, for that host only.
    A name that does not resolve (within `dns_seconds`) is left out.
    """
    out: set[str] = set()
    names: list[str] = []
    for url in urls:
        try:
            host = urlsplit(url).hostname
        except ValueError:
            continue
        if not host:
            continue
        host = normal_host(host)
        ip = ip_literal(host)
        if ip is not None:
            if not is_public_address(ip):
                out.add(host)
        elif host not in names:
            names.append(host)
    if not names:
        return frozenset(out)
    owned = resolver is None
    active = DefaultResolver() if resolver is None else resolver
    try:
        answers = await asyncio.gather(
            *(_resolve_quietly(active, name, dns_seconds) for name in names)
        )
    finally:
        if owned:
            await active.close()
    for name, addresses in zip(names, answers, strict=True):
        if any(not is_public_address(a["host"]) for a in addresses):
            out.add(name)
    return frozenset(out)


async def _resolve_quietly(
    resolver: AbstractResolver, host: str, seconds: float
) -> list[ResolveResult]:
    try:
        async with asyncio.timeout(seconds):
            return await resolver.resolve(host, 0, socket.AF_UNSPEC)
    except (OSError, ValueError):  # gaierror, TimeoutError, a refused name
        return []
