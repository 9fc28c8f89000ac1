"""The crawl's own rules for the browser's requests: `BrowserRules`, a `RequestRules`.

A page's scripts, frames and styles ask for URLs the crawler never chose. Each one must
pass the rules the crawler's own fetches pass (fetch.py):

- http(s) with a host only;
- the private-address guard: an IP literal, or every address a name resolves to, must be
  public unless the host is trusted by the crawl's `AddressPolicy` (the seeds' own hosts by
  default, as for fetches). Names are resolved here, once per host (the verdict is kept
  for `dns_ttl` seconds); the browser resolves again, so a name whose answer changes in
  between (DNS rebinding) is the remaining gap, which fetch.py's resolver closes for fetches;
- robots.txt, for requests to the crawled page's own host (`robots`, from the pool);
- `budget`: called for each allowed request, so the pool can count it against the host's
  politeness budget (and wait for it).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from crawler.guard import AddressPolicy, is_public_address, normal_host

__all__ = ["BrowserRules", "Resolve"]

Resolve = Callable[[str], Awaitable[list[str]]]
MAX_VERDICTS = 10_000


async def _system_resolve(host: str) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class BrowserRules:
    """May the browser, rendering `page_url`, request `url`? (`refuse` gives why not.)"""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        robots: Callable[[str], Awaitable[bool]] | None = None,
        budget: Callable[[str], Awaitable[None]] | None = None,
        resolve: Resolve = _system_resolve,
        dns_seconds: float = 5.0,
        dns_ttl: float = 300.0,
    ) -> None:
        self._policy = policy
        self._robots = robots
        self._budget = budget
        self._resolve = resolve
        self._dns_seconds = dns_seconds
        self._dns_ttl = dns_ttl
        self._verdicts: dict[str, tuple[float, str | None]] = {}

    async def refuse(self, url: str, page_url: str) -> str | None:
        try:
            parts = urlsplit(url)
            scheme, host = parts.scheme.lower(), parts.hostname
        except ValueError:
            return "not a valid URL"
        if scheme not in ("http", "https") or not host:
            return f"not an http(s) URL with a host: {url[:100]!r}"
        reason = await self._address(normal_host(host))
        if reason is not None:
            return reason
        if self._robots is not None and _same_host(url, page_url) and not await self._robots(url):
            return "disallowed by robots.txt"
        if self._budget is not None:
            await self._budget(url)
        return None

    async def _address(self, host: str) -> str | None:
        if self._policy.trusts(host):
            return None
        now = time.monotonic()
        kept = self._verdicts.get(host)
        if kept is not None and kept[0] > now:
            return kept[1]
        verdict = await self._judge(host)
        if len(self._verdicts) >= MAX_VERDICTS:
            self._verdicts.clear()
        self._verdicts[host] = (now + self._dns_ttl, verdict)
        return verdict

    async def _judge(self, host: str) -> str | None:
        if _is_ip(host):
            return None if is_public_address(host) else f"{host} is not a public address"
        try:
            async with asyncio.timeout(self._dns_seconds):
                addresses = await self._resolve(host)
        except (OSError, TimeoutError, UnicodeError):
            return f"{host} does not resolve"
        private = sorted({a for a in addresses if not is_public_address(a)})
        if not addresses:
            return f"{host} does not resolve"
        if private:
            return f"{host} resolves to a non-public address ({', '.join(private[:3])})"
        return None


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


def _same_host(url: str, page_url: str) -> bool:
    try:
        return urlsplit(url).netloc.lower() == urlsplit(page_url).netloc.lower()
    except ValueError:
        return False
