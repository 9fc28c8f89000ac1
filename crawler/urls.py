"""URL resolution and canonical form: the one place that turns hrefs into crawlable URLs.

Everything here follows the WHATWG URL standard, as browsers do, through ada-url (C++):
`resolve` joins an href to a document's base URL, `canonicalize` gives the one spelling the
crawler stores and deduplicates on, `host_key` and `origin` name the server a URL lives on.

The canonical form of an http(s) URL is ada's serialisation (scheme and host lower-cased,
IDNA to punycode, default port dropped, dot segments removed, unsafe characters
percent-encoded) without its fragment, with the hex digits of every percent-escape in
upper case (RFC 3986 section 6.2.2.1: `%2f` and `%2F` are the same octet). Nothing else is
changed: query order, trailing `?`, `//` runs and credentials stay as written, since a
server may tell those apart. Any other scheme (mailto:, javascript:, data:, ftp:, ws: ...)
has no canonical form here: the crawler does not fetch it.

This is the crawler's hot path (every link of every page comes through `resolve_all`), so
it calls ada's C API through the cffi binding that ada-url ships, skipping the Python
wrapper's per-call set-up (README, "Performance"). If that binding
ever moves, the public `ada_url` functions take over with the same results; the unit tests
run every case through both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import ada_url

try:  # ada-url's own cffi binding of ada's C API (ada_c.h); private, hence the fallback.
    from ada_url._ada_wrapper import ffi as _ffi
    from ada_url._ada_wrapper import lib as _lib
except ImportError:  # only if ada-url reorganises its package
    _ffi = None
    _lib = None

__all__ = [
    "canonicalize",
    "host_key",
    "origin",
    "resolve",
    "resolve_all",
    "scheme_and_authority",
]

# ada's scheme_type values (ada_url.SchemeType) for the two schemes we crawl.
_HTTP = int(ada_url.SchemeType.HTTP)
_HTTPS = int(ada_url.SchemeType.HTTPS)

# A percent-escape with at least one lower-case hex digit; only those need rewriting.
_LOWER_ESCAPE = re.compile(r"%(?:[a-f][0-9A-Fa-f]|[0-9A-F][a-f])")


def _upper(match: re.Match[str]) -> str:
    return match.group().upper()


def _finish(href: str) -> str:
    """Upper-case the hex digits of percent-escapes in an ada serialisation."""
    return _LOWER_ESCAPE.sub(_upper, href) if "%" in href else href


# --- two interchangeable cores: parse `href` (against `base`), keep http(s), drop the fragment.


def _join_c(href: str, base: str | None) -> str | None:
    """ada's C API: parse, check, clear the fragment, serialise, free."""
    assert _lib is not None and _ffi is not None
    try:
        href_b = href.encode()
        base_b = base.encode() if base is not None else None
    except UnicodeEncodeError:  # lone surrogates: not a string a browser could hold
        return None
    if base_b is None:
        url = _lib.ada_parse(href_b, len(href_b))
    else:
        url = _lib.ada_parse_with_base(href_b, len(href_b), base_b, len(base_b))
    try:
        if not _lib.ada_is_valid(url):
            return None
        scheme = _lib.ada_get_scheme_type(url)
        if scheme != _HTTP and scheme != _HTTPS:
            return None
        _lib.ada_clear_hash(url)
        view = _lib.ada_get_href(url)
        out: str = _ffi.unpack(view.data, view.length).decode()
    finally:
        _lib.ada_free(url)
    return _finish(out)


def _join_py(href: str, base: str | None) -> str | None:
    """The same through ada-url's public Python functions."""
    try:
        out = ada_url.join_url(base, href) if base is not None else ada_url.normalize_url(href)
    except ValueError:  # invalid URL, or a string that cannot be UTF-8 encoded
        return None
    if not out.startswith(("http://", "https://")):  # ada lower-cases the scheme
        return None
    # In an http(s) serialisation every '#' but the fragment delimiter is percent-encoded.
    out = out.partition("#")[0]
    return _finish(out)


_join: Callable[[str, str | None], str | None] = _join_c if _lib is not None else _join_py


def resolve(href: str, base: str) -> str | None:
    """Resolve `href` against `base` as a browser would, then canonicalise it.

    Leading and trailing C0 controls and spaces are stripped and tabs and newlines removed
    (WHATWG). Returns None when the href (or the base) does not parse, or when the result is
    not http(s). The result never has a fragment.
    """
    return _join(href, base)


def resolve_all(hrefs: Iterable[str], base: str) -> list[str | None]:
    """`[resolve(href, base) for href in hrefs]`, faster: the parser's per-page entry point.

    The base is encoded once, and an href that starts with "#" resolves to the canonical
    base without a parse (by the WHATWG rules it is the base with a new fragment, which
    canonicalisation drops; the tests hold this equal to the full parse).

    Under an http(s) base, hrefs whose result does not depend on the base's path are
    answered from `_RESOLVED`, kept across pages: the links every page of a site repeats
    (menus, footers). Those are the hrefs that start with "http://", "https://" or "/"
    (path-absolute, or "//host" scheme-relative): for them the WHATWG parser takes at most
    the base's scheme, credentials, host and port, all in its scheme://authority prefix,
    which is the key with the href. Whether the base is valid also depends on that prefix
    alone: nothing after an authority makes a URL fail.

    Relative paths of the plainest shape (`_PLAIN_RELATIVE`: "p00012.html",
    "../../t2/p00012.html") are joined to the canonical base's folders as strings, without a
    parse: a third of the links of a typical page, at about 2.5 us a parse.
    """
    if _lib is None:  # fallback core
        return [_join_py(href, base) for href in hrefs]
    try:
        base_b = base.encode()
    except UnicodeEncodeError:
        return [None for _ in hrefs]
    prefix = scheme_and_authority(base) if base.startswith(("http://", "https://")) else None
    folders: list[str] | None = None
    plain_relative = _PLAIN_RELATIVE.match
    cache = _RESOLVED
    lib, unpack = _lib, _ffi.unpack
    parse, free, is_valid = lib.ada_parse_with_base, lib.ada_free, lib.ada_is_valid
    scheme_type, clear_hash, get_href = (
        lib.ada_get_scheme_type,
        lib.ada_clear_hash,
        lib.ada_get_href,
    )
    base_len = len(base_b)
    base_canonical: str | None = None
    base_done = False
    out: list[str | None] = []
    append = out.append
    for href in hrefs:
        if prefix is not None and (plain := plain_relative(href)) is not None:
            if folders is None:
                if not base_done:
                    base_canonical, base_done = canonicalize(base), True
                folders = _folders(base_canonical)
            if folders:
                ups = plain.end() // 3  # each a "../"
                append(folders[ups if ups < len(folders) else -1] + href[plain.end() :])
                continue
        key: tuple[str, str] | None = None
        if prefix is not None and href.startswith(("/", "http://", "https://")):
            key = (prefix, href)
        if key is not None and key in cache:
            append(cache[key])
            continue
        try:
            href_b = href.encode()
        except UnicodeEncodeError:
            append(None)
            continue
        if href_b[:1] == b"#":
            if not base_done:
                base_canonical, base_done = canonicalize(base), True
            append(base_canonical)
            continue
        url = parse(href_b, len(href_b), base_b, base_len)
        try:
            scheme = scheme_type(url) if is_valid(url) else -1
            if scheme != _HTTP and scheme != _HTTPS:
                result: str | None = None
            else:
                clear_hash(url)
                view = get_href(url)
                result = unpack(view.data, view.length).decode()
                if "%" in result:
                    result = _LOWER_ESCAPE.sub(_upper, result)
        finally:
            free(url)
        append(result)
        if key is not None:
            if len(cache) >= MAX_RESOLVED:
                cache.clear()
            cache[key] = result
    return out


# A relative path of the plainest shape ("p00012.html", "../../t2/p00012.html"): "../"
# segments, then segments of unreserved characters that do not start with a dot (so none is
# a dot segment), an optional trailing slash. No scheme (no ":"), nothing to percent-encode,
# no query or fragment: resolved, it is the base's folder, less one folder a "../", followed
# by the rest as written (WHATWG "path state": the base path's last segment goes, each ".."
# removes one more, never past the root). The match is the "../" run.
_PLAIN_RELATIVE = re.compile(
    r"(?:\.\./)*(?=[A-Za-z0-9_~-][A-Za-z0-9_~.-]*(?:/[A-Za-z0-9_~-][A-Za-z0-9_~.-]*)*/?\Z)"
)


def _folders(base: str | None) -> list[str]:
    """The folders of a canonical http(s) base URL, for plain relative hrefs: the base up to
    the last "/" of its path, then each parent up to the root; none for no base."""
    if base is None:  # the base does not parse: no fast path
        return []
    folder = base.partition("?")[0]  # a serialisation holds no other "?" (nor "#")
    root = folder.find("/", folder.find("//") + 2)
    if root < 0:  # pragma: no cover - an http(s) serialisation always has a path
        return []
    folder = folder[: folder.rfind("/") + 1]
    folders = [folder]
    while len(folder) > root + 1:
        folder = folder[: folder.rfind("/", root, len(folder) - 1) + 1]
        folders.append(folder)
    return folders


# resolve_all's answers for hrefs that do not depend on the base's path, by (the base's
# scheme://authority, href). An ada parse of a link costs about 2.5 us; the pages of a site
# repeat dozens of the same links.
_RESOLVED: dict[tuple[str, str], str | None] = {}
MAX_RESOLVED = 10_000


def canonicalize(url: str) -> str | None:
    """The canonical form of an absolute http(s) URL, or None (relative, invalid, other scheme).

    Idempotent: `canonicalize(canonicalize(u)) == canonicalize(u)`.
    """
    return _join(url, None)


_SCHEME_AND_AUTHORITY = re.compile(r"[^:/?#]*://[^/?#]+")


def scheme_and_authority(url: str) -> str | None:
    """`url` up to the end of a non-empty authority ("scheme://authority"), else None.

    What is known of an http(s) URL's server (its host, scheme, port, IP literal) depends on
    nothing after it: the authority ends at the first "/", "?" or "#" (or a backslash, which
    this prefix keeps), so prefix + "/" parses to the same host. Callers key caches on it.
    """
    match = _SCHEME_AND_AUTHORITY.match(url)
    return None if match is None else match.group()


# (host, scheme) by that prefix: the pool asks for a task's host about five times (robots,
# saturation, delay, slot, crawl-delay), and a crawl has few hosts; an ada parse costs ~3 us.
_HOSTS: dict[str, tuple[str, int]] = {}
MAX_HOSTS = 10_000


def _host_and_scheme(url: str) -> tuple[str, int]:
    key = scheme_and_authority(url)
    if key is None:
        return _parse_host_and_scheme(url)
    known = _HOSTS.get(key)
    if known is None:
        known = _parse_host_and_scheme(key + "/")  # raises for a URL that is not http(s)
        if len(_HOSTS) >= MAX_HOSTS:
            _HOSTS.clear()
        _HOSTS[key] = known
    return known


def _parse_host_and_scheme(url: str) -> tuple[str, int]:
    if _lib is not None and _ffi is not None:
        try:
            url_b = url.encode()
        except UnicodeEncodeError:
            raise ValueError(f"not an http(s) URL: {url!r}") from None
        parsed = _lib.ada_parse(url_b, len(url_b))
        try:
            if not _lib.ada_is_valid(parsed):
                raise ValueError(f"not an http(s) URL: {url!r}")
            scheme = int(_lib.ada_get_scheme_type(parsed))
            view = _lib.ada_get_host(parsed)
            # an empty view has a NULL pointer; http(s) URLs always have a host
            host: str = _ffi.unpack(view.data, view.length).decode() if view.length else ""
        finally:
            _lib.ada_free(parsed)
    else:  # fallback core
        parts = ada_url.parse_url(url, attributes=("host", "scheme_type"))
        host, scheme = parts["host"], int(parts["scheme_type"])
    if scheme != _HTTP and scheme != _HTTPS:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return host, scheme


def host_key(url: str) -> str:
    """`host` or `host:port` (non-default port only) of an http(s) URL: the politeness key.

    Raises ValueError if `url` is not an absolute http(s) URL.
    """
    return _host_and_scheme(url)[0]


def origin(url: str) -> str:
    """`scheme://host[:port]` of an http(s) URL; ValueError if it is not one."""
    host, scheme = _host_and_scheme(url)
    return ("https://" if scheme == _HTTPS else "http://") + host
