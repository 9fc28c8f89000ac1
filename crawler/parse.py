"""HTML to `Page`: the fields the crawler stores and the links it may follow.

Pure and CPU-only: one lexbor tree (selectolax) per call, nothing kept between calls, so
calls may run in threads (lexbor releases the GIL while it builds the tree). The tree is
built as a browser with scripting disabled builds it, so links inside `<noscript>` count.

Links are resolved the way a browser resolves them: against the document base URL, which
is the first `<base href>` (itself resolved against the page URL) or else the page URL.
selectolax leaves `<base>` alone, so this module applies it. Every link comes back in
document order, repeats included; the pool decides which ones to follow.

Extraction rules (`crawler.extract`, compiled once by the caller) read the same tree: their
selectors run before `<script>` and `<style>` are stripped, so a rule can select a JSON-LD
block, and the text of their matches is read after. Their fields come back in `Page.data`.

Text (the body text, the h1, anchor texts) is separated as a browser's `innerText` separates
it: inline elements (`b`, `span`, `a`, …) add no space, every other element and `<br>` does.

Garbage in gives a sparse `Page` out, never an exception: broken markup, binary noise,
lone surrogates. Bounded output: at most `MAX_LINKS` links, `MAX_ANCHOR_CHARS` of anchor
text each, `MAX_TEXT_CHARS` of body text, `MAX_CANONICAL_CHARS` of canonical URL. The tree
builder's own cost grows with the square of the nesting depth for some shapes (10,000
unclosed `<div>`s take about 0.1 s here), so the body-size cap at fetch time is what bounds
the worst case.
"""

from __future__ import annotations

import dataclasses
import hashlib

import ada_url
from selectolax.lexbor import LexborHTMLParser, LexborNode

from crawler.extract import CODE_TAGS, CompiledRules, begin
from crawler.records import Link, Page
from crawler.urls import resolve, resolve_all

__all__ = [
    "MAX_ANCHOR_CHARS",
    "MAX_CANONICAL_CHARS",
    "MAX_LINKS",
    "MAX_TEXT_CHARS",
    "content_hash",
    "parse_html",
    "stored_page",
]

MAX_LINKS = 10_000
MAX_ANCHOR_CHARS = 1_000
MAX_TEXT_CHARS = 1_000_000
MAX_CANONICAL_CHARS = 8_192  # a data: canonical is kept only this far

# Never text, not even of an anchor: removed right after parsing (and extraction's selectors).
_CODE = list(CODE_TAGS)
# Not visible text either, but read first (the title; links inside <noscript>), then removed
# before the body text is taken. A <title> in <body>, or an SVG tooltip, is not page text.
_INVISIBLE = ["noscript", "title"]
# Phrasing elements a browser lays out inline (display: inline by default): their text runs
# on with the text around them, as in `innerText`, so they are unwrapped and the text nodes
# they held merged with their neighbours before text is read ("a <b>bug</b>?" -> "a bug?").
# Every other element (p, div, li, td, h1, br, …) separates the text on either side. `a` is
# unwrapped last, after the links have been read; `img` and `wbr` hold no text but would
# keep their neighbours apart. Found by tag name in one walk of the body: a CSS selector
# list of these names cost three times as much (lexbor compiles it at each call).
_INLINE = frozenset(
    {
        "abbr", "acronym", "b", "bdi", "bdo", "big", "button", "cite", "code", "data", "del",
        "dfn", "em", "font", "i", "img", "ins", "kbd", "label", "mark", "nobr", "q", "s",
        "samp", "small", "span", "strike", "strong", "sub", "sup", "time", "tt", "u", "var",
        "wbr",
    }
)  # fmt: skip
# Links are resolved in batches of this many nodes, so a page with 100,000 anchors stops
# being read soon after it has given MAX_LINKS links.
_BATCH = 2_000


def _collapse(text: str | None) -> str:
    """Whitespace runs to one space, ends stripped."""
    return " ".join(text.split()) if text else ""


# The ASCII characters str.split() splits on (str.isspace), besides the space itself.
_ASCII_BLANKS = ("\n", "\t", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f")


def _collapse_long(text: str) -> str:
    """`_collapse` for a page's text. ASCII text is split only at runs of two or more
    blanks, after the other blanks are replaced by spaces, instead of making a string of
    every word, which was a large share of a page's parse. Each replacement is a memchr
    scan, and a copy only for a character the text holds, where bytes.translate looked up
    every byte. Other text is split word by word (README, "Performance")."""
    if not text.isascii():
        return " ".join(text.split())
    for blank in _ASCII_BLANKS:
        if blank in text:
            text = text.replace(blank, " ")
    parts = [part.strip(" ") for part in text.split("  ")]
    return " ".join([part for part in parts if part])


def _or_none(text: str) -> str | None:
    return text or None


def _in_foreign_content(node: LexborNode) -> bool:
    """Inside <svg> or <math>: an SVG <title> is a tooltip, not the document title."""
    parent = node.parent
    while parent is not None:
        if parent.tag in ("svg", "math"):
            return True
        parent = parent.parent
    return False


def _document_base(tree: LexborHTMLParser, url: str) -> str:
    """The document base URL (HTML "frozen base URL"): first <base href>, else the page URL.

    As in browsers, a <base href> that does not parse, or that names a data: or javascript:
    URL, is ignored; any other scheme is kept (links then resolve against it, and the
    non-http(s) results are dropped by `resolve`).
    """
    node = tree.css_first("base[href]")
    if node is None:
        return url
    href = node.attrs.get("href") or ""
    try:
        base = ada_url.join_url(url, href)
    except ValueError:
        return url
    if base.startswith(("data:", "javascript:")):
        return url
    return base


class _Elements:
    """The elements the fields are read from, in document order, found in one walk of the
    tree once code is stripped: a CSS query a field (meta, title, link, h1, a and area, the
    inline elements) walked the whole tree each time and cost more than this walk of it."""

    __slots__ = ("anchors", "canonicals", "h1", "inline", "linkers", "metas", "titles")

    def __init__(self, tree: LexborHTMLParser) -> None:
        self.anchors: list[LexborNode] = []  # `a`: unwrapped once the links are read
        self.linkers: list[LexborNode] = []  # `a` and `area`: links, if they have an href
        self.inline: list[LexborNode] = []
        self.metas: list[LexborNode] = []
        self.titles: list[LexborNode] = []
        self.canonicals: list[LexborNode] = []  # every `link`: `_canonical` picks
        self.h1: LexborNode | None = None
        root = tree.root
        if root is None:
            return
        inline = _INLINE
        for node in root.traverse():
            tag = node.tag
            if tag == "a":
                self.anchors.append(node)
                self.linkers.append(node)
            elif tag in inline:
                self.inline.append(node)
            elif tag == "area":
                self.linkers.append(node)
            elif tag == "meta":
                self.metas.append(node)
            elif tag == "title":
                self.titles.append(node)
            elif tag == "link":
                self.canonicals.append(node)
            elif tag == "h1" and self.h1 is None:
                self.h1 = node
        if tree.body is None:  # a <frameset> document: nothing to unwrap (and no text)
            self.anchors = []
            self.inline = []


def _anchor_text(node: LexborNode) -> str:
    """`node.text(separator=" ")`, read directly from the one text node most anchors hold
    once the inline elements are unwrapped (1.5% of parse_html's instructions on the
    benchmark's pages)."""
    child = node.first_child
    if child is not None and child.next is None:
        text = child.text_content
        if text is not None:
            return text
    return node.text(separator=" ")


def _links(linkers: list[LexborNode], base: str) -> tuple[Link, ...]:
    """The links of the `a` and `area` elements with an href, in document order."""
    links: list[Link] = []
    for start in range(0, len(linkers), _BATCH):
        hrefs: list[str] = []
        texts: list[str] = []
        nofollows: list[bool] = []
        for node in linkers[start : start + _BATCH]:
            attrs = node.attributes  # one dict: cheaper than a lookup in lexbor per name
            if "href" not in attrs:
                continue
            hrefs.append(attrs["href"] or "")
            # <area> has no content; its alt text is what a reader gets instead.
            raw = attrs.get("alt") if node.tag == "area" else _anchor_text(node)
            texts.append(_collapse(raw)[:MAX_ANCHOR_CHARS].rstrip())
            rel = attrs.get("rel")
            nofollows.append(rel is not None and "nofollow" in rel.lower().split())
        for target, text, nofollow in zip(resolve_all(hrefs, base), texts, nofollows, strict=True):
            if target is not None:
                links.append((target, text, nofollow))
                if len(links) >= MAX_LINKS:
                    return tuple(links)
    return tuple(links)


def _title(titles: list[LexborNode]) -> str | None:
    for node in titles:
        if not _in_foreign_content(node):
            return _or_none(_collapse(node.text()))
    return None


def _meta(metas: list[LexborNode]) -> tuple[str | None, str | None]:
    """(description, robots): the first description; every robots directive, lower-cased."""
    description: str | None = None
    robots: list[str] = []
    for node in metas:
        attrs = node.attrs
        name = (attrs.get("name") or "").strip().lower()
        if name == "description" and description is None:
            description = _or_none(_collapse(attrs.get("content")))
        elif name == "robots":
            content = _collapse(attrs.get("content")).lower()
            if content:
                robots.append(content)
    return description, ", ".join(robots) or None


def _canonical(links: list[LexborNode], base: str) -> str | None:
    """The first `<link rel=canonical href>` as declared, resolved against the base: the
    canonical form of an http(s) URL, else the resolved URL whatever its scheme (a `file:`
    canonical is a mistake worth seeing), else the href as written when it does not parse
    as a URL."""
    for node in links:
        attrs = node.attributes
        if "href" in attrs and "canonical" in (attrs.get("rel") or "").lower().split():
            href = attrs["href"] or ""
            url = resolve(href, base)
            if url is None:
                try:
                    url = ada_url.join_url(base, href)
                except ValueError:
                    url = href.strip()
            return url[:MAX_CANONICAL_CHARS] or None
    return None


def _lang(tree: LexborHTMLParser) -> str | None:
    root = tree.root
    if root is None or root.tag != "html":
        return None
    return _or_none((root.attrs.get("lang") or "").strip())


def _h1(node: LexborNode | None) -> str | None:
    return None if node is None else _or_none(_collapse(node.text(separator=" ")))


def _unwrap_inline(tree: LexborHTMLParser, inline: list[LexborNode]) -> None:
    """Unwrap the body's inline elements but `a`, merging the text nodes that then meet
    (`_text` unwraps the `a` elements, once the links are read)."""
    for node in inline:  # document order: a parent is unwrapped before its children
        node.unwrap(delete_empty=True)
    tree.merge_text_nodes()


def _text(tree: LexborHTMLParser, anchors: list[LexborNode]) -> str:
    """Visible body text as `innerText` separates it (inline elements add no space, other
    elements do), whitespace collapsed, at most MAX_TEXT_CHARS (mutates the tree)."""
    body = tree.body
    if body is None:  # a <frameset> document has no body
        return ""
    for anchor in anchors:  # before <noscript> goes: an anchor in it is then a removed node
        anchor.unwrap(delete_empty=True)
    tree.strip_tags(_INVISIBLE, recursive=True)
    tree.merge_text_nodes()
    # Each text node stripped, and the blank ones (indentation between tags) left out: the
    # words are the same, but the string to collapse is shorter and mostly collapsed
    # already.
    raw = body.text(separator=" ", strip=True, skip_empty=True)
    # Collapsing a 50 MB string would cost more than the result is worth: cut first, at a
    # length that leaves MAX_TEXT_CHARS after collapsing unless the text is mostly blanks.
    raw = raw[: 4 * MAX_TEXT_CHARS]
    return _collapse_long(raw)[:MAX_TEXT_CHARS].rstrip()


def parse_html(html: str, url: str, rules: CompiledRules | None = None) -> Page:
    """Parse one HTML document fetched from `url` (the final URL, after redirects), taking
    the fields of the extraction `rules` too (Page.data; empty without rules)."""
    tree = LexborHTMLParser(html)
    # <base> cannot hide in script, style or template content: the base is the same with
    # or without them, and rules may select them (JSON-LD), so they go after the selectors.
    base = _document_base(tree, url)
    pending = begin(tree, rules, base) if rules else None
    tree.strip_tags(_CODE, recursive=True)
    data = pending.finish() if pending is not None else {}
    # After the rules' selectors (their nodes must stay), before the h1 and anchor texts.
    found = _Elements(tree)
    _unwrap_inline(tree, found.inline)
    # Order matters: everything that reads <title> or <noscript> runs before _text strips
    # them from the tree.
    description, meta_robots = _meta(found.metas)
    return Page(
        title=_title(found.titles),
        description=description,
        canonical=_canonical(found.canonicals, base),
        lang=_lang(tree),
        h1=_h1(found.h1),
        links=_links(found.linkers, base),
        text=_text(tree, found.anchors),
        meta_robots=meta_robots,
        data=data,
    )


def content_hash(body: bytes) -> str:
    """`pages.content_hash`: of the raw response body, so that a change of the page's bytes
    is a change whatever its parse gives. Computed where the page is parsed (off the loop)."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def stored_page(page: Page, *, obey_meta_robots: bool) -> Page:
    """What the crawler keeps of a parsed page: all of it, except that a page whose meta
    robots say noindex keeps no text (when they are obeyed). Its extracted data stays: the
    rules are the user's own request. One rule for the crawl and for `crawler reparse`."""
    if obey_meta_robots and page.noindex:
        return dataclasses.replace(page, text="")
    return page
