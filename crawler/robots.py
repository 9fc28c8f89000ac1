"""robots.txt decisions per RFC 9309, from the response that fetched the file.

Pure: the caller fetches `/robots.txt` (following up to five redirects, RFC 9309 2.3.1.2)
and hands the outcome to `RobotsPolicy.from_response`; the policy then answers
`allowed(url)` for URLs of that origin. What the outcome means:

| outcome                      | policy                                                   |
| ---------------------------- | -------------------------------------------------------- |
| 2xx                          | the rules in the first 500 KiB of the body               |
| 3xx (redirects not resolved) | allow all: "unavailable", as 4xx                         |
| 4xx, except 429              | allow all (RFC 9309 2.3.1.3)                             |
| 429, 5xx, other, unreachable | disallow all, `temporary=True`: fetch robots.txt again   |

Unreachable (no response at all) keeps the error kind of the failed fetch in `failure`
(`dns`, `connect`, `timeout`, `tls`, ...): the policy (crawler.decide) fails the host's URLs
with that kind rather than waiting for robots.txt, and still fetches none of them.

429 counts as a server error, as Google's crawler treats it: the site is asking us to slow
down, not saying it has no rules.

Rules are matched by protego (Scrapy's parser: `*` and `$` patterns, longest match wins,
allow wins a tie). The group is chosen here, by RFC 9309 2.2.1: the group whose user-agent
is our product token (case-insensitive; a line such as `crawler/1.0` names the token
`crawler`), else the `*` group, else no rules at all. protego's own choice is looser (it
would let a `craw` group apply to `crawler`), so it is only asked about the group we picked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from protego import Protego

from crawler.kinds import ErrorKind
from crawler.urls import canonicalize

__all__ = ["MAX_ROBOTS_BYTES", "RobotsPolicy", "product_token"]

# RFC 9309 2.5: crawlers must parse at least the first 500 kibibytes.
MAX_ROBOTS_BYTES = 500 * 1024

# RFC 9309 2.2.1: a product token is letters, underscores and hyphens.
_PRODUCT_TOKEN = re.compile(r"[A-Za-z_-]+")

Mode = Literal["rules", "allow_all", "disallow_all"]


def product_token(user_agent: str) -> str:
    """The product token of a User-Agent string, lower-cased: "crawler/0.1 (+x)" -> "crawler".

    "*" if the string does not start with one.
    """
    match = _PRODUCT_TOKEN.match(user_agent.strip())
    return match.group().lower() if match else "*"


def _pick_group(parser: Protego, token: str) -> str:
    """The user-agent value (as protego stores it, lower-cased) whose group applies to us."""
    # protego keeps its groups in a dict {lower-cased user-agent value: rules}; reading the
    # names is the only way to choose a group by RFC 9309 rather than by protego's rules.
    names: dict[str, object] | None = getattr(parser, "_user_agents", None)
    if not isinstance(names, dict):  # a future protego without it: let it choose
        return token
    if token in names:
        return token
    for name in names:
        if name != "*" and product_token(name) == token:
            return name
    return "*"


def _decode(body: bytes) -> tuple[str, bool]:
    """The text protego parses: at most MAX_ROBOTS_BYTES, never a cut-off last line."""
    truncated = len(body) > MAX_ROBOTS_BYTES
    if truncated:
        body = body[:MAX_ROBOTS_BYTES]
        # A rule cut in half can mean something else ("Allow: /" from "Allow: /docs"):
        # drop the incomplete last line.
        end = max(body.rfind(b"\n"), body.rfind(b"\r"))
        body = body[: end + 1] if end >= 0 else b""
    # utf-8-sig: a leading byte-order mark would otherwise hide the first directive.
    return body.decode("utf-8-sig", errors="replace"), truncated


def _sitemaps(parser: Protego) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for raw in parser.sitemaps:
        url = canonicalize(raw)
        if url is not None:
            seen.setdefault(url, None)
    return tuple(seen)


@dataclass(frozen=True, slots=True)
class RobotsPolicy:
    """What one origin's robots.txt lets us fetch. Build it with `from_response`.

    `reason` says in one line where the policy comes from, for logs and the fetch record.
    `temporary` means robots.txt could not be read (server error or unreachable): nothing
    may be fetched now, and the caller should fetch robots.txt again later. `failure` is
    the error kind of a fetch that got no response (unreachable), else None.
    """

    mode: Mode
    reason: str
    status: int | None = None
    temporary: bool = False
    crawl_delay: float | None = None
    sitemaps: tuple[str, ...] = ()
    group: str | None = None
    failure: ErrorKind | None = None
    _parser: Protego | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_response(
        cls,
        status: int | None,
        body: bytes,
        user_agent: str,
        failure: ErrorKind | None = None,
        error: str = "",
    ) -> RobotsPolicy:
        """The policy for `user_agent` given how fetching robots.txt ended.

        `status` is the final HTTP status, None if no response came (DNS, connect, timeout,
        TLS, too many redirects ...): then `failure` is the fetch's error kind and `error`
        its message, if known. `body` is the raw body; only a 2xx body is read.
        """
        if status is not None and 200 <= status < 300:
            return cls._from_body(status, body, product_token(user_agent))
        if status is not None and 300 <= status < 500 and status != 429:
            return cls(mode="allow_all", reason=f"robots.txt {status}: allow all", status=status)
        what = "unreachable" if status is None else str(status)
        if status is None and failure is not None:
            what = f"unreachable ({failure}: {error})" if error else f"unreachable ({failure})"
        return cls(
            mode="disallow_all",
            reason=f"robots.txt {what}: disallow all until it can be fetched",
            status=status,
            temporary=True,
            failure=failure if status is None else None,
        )

    @classmethod
    def _from_body(cls, status: int, body: bytes, token: str) -> RobotsPolicy:
        text, truncated = _decode(body)
        parser = Protego.parse(text)
        group = _pick_group(parser, token)
        cut = f", first {MAX_ROBOTS_BYTES // 1024} KiB" if truncated else ""
        return cls(
            mode="rules",
            reason=f"robots.txt {status}, group {group!r}{cut}",
            status=status,
            crawl_delay=parser.crawl_delay(group),
            sitemaps=_sitemaps(parser),
            group=group,
            _parser=parser,
        )

    def allowed(self, url: str) -> bool:
        """May `url` (an absolute URL of this policy's origin) be fetched?"""
        if self.mode == "allow_all":
            return True
        if self.mode == "disallow_all" or self._parser is None or self.group is None:
            return False
        return bool(self._parser.can_fetch(url, self.group))
