"""Does a page's static HTML look client-rendered? Pure: HTML in, a `Decision` with a reason out.

`page_facts` reads what the decision needs from one lexbor tree (selectolax, as parse.py):
the HTML's size, its visible text, its links, its scripts, empty app roots and `<noscript>`
text. `looks_client_rendered` weighs them, in this order:

1. no `<script>` at all: a browser would show the same thing (`no_scripts`, no);
2. a `<noscript>` that asks for JavaScript (`noscript_asks`, yes);
3. an empty app root (`<div id="root">`, `id="app"`, `__next`, `__nuxt`, `ng-app`...) on a
   page with little text (`app_root`, yes);
4. little visible text for the HTML's size (`little_text`, yes);
5. otherwise the HTML carries its content (`has_text`, no).

The same facts, taken from static and rendered HTML, feed the per-host learner (learn.py).

`clearly_static` runs first, on the raw bytes, so a static site pays little for `--render
auto` (`page_facts`, a lexbor parse, costs about as much as the crawl's own parse of the
page): a page with no `<script>`, or with no `<noscript>` asking for JavaScript and plenty of
text after `<body>` outside script, style and template elements (`CLEAR_TEXT_BYTES`, and a
tenth of the page), is static. The rest, where an empty app root or a sparse page may hide,
goes to `page_facts`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from selectolax.lexbor import LexborHTMLParser, LexborNode

__all__ = [
    "Decision",
    "PageFacts",
    "Reason",
    "clearly_static",
    "looks_client_rendered",
    "page_facts",
]

# Ids and attributes that single-page-app frameworks mount into.
APP_ROOT_IDS = frozenset(
    {"root", "app", "__next", "__nuxt", "___gatsby", "svelte", "main-app", "app-root", "spa"}
)
APP_ROOT_SELECTOR = "[ng-app], [data-reactroot], [data-v-app], app-root, [ng-version]"
# Below this many characters of visible text a page "has little text".
LITTLE_TEXT_CHARS = 200
# A page whose visible text is under this share of its HTML, above MIN_SPARSE_BYTES, is sparse.
SPARSE_RATIO = 0.02
MIN_SPARSE_BYTES = 4096
# An app root with no more text than this is empty (a "Loading..." placeholder).
EMPTY_ROOT_CHARS = 40
_ASKS_FOR_JS = re.compile(
    r"(enable|turn on|activate|requires?|need|switch on|allow)\W+(\w+\W+){0,4}javascript"
    r"|javascript\W+(\w+\W+){0,4}(enabled|required|needed|disabled|turned off|to run|to use)",
    re.I,
)
_HIDDEN = ["script", "style", "noscript", "template", "title", "head"]
# The quick check: bytes of text (after <body>, outside script, style and template) that
# clear a page with scripts, at least, and the share of the page's bytes they must reach.
CLEAR_TEXT_BYTES = 2000
CLEAR_TEXT_SHARE = 10
_SCRIPT = re.compile(rb"<script", re.I)
_NOSCRIPT = re.compile(rb"<noscript", re.I)
_NOSCRIPT_END = re.compile(rb"</noscript", re.I)
_ASKS_FOR_JS_BYTES = re.compile(_ASKS_FOR_JS.pattern.encode(), re.I)
_BODY = re.compile(rb"<body", re.I)
_TEXT_RUN = re.compile(rb">\s*([^<\s][^<]*)")
_RAW_OPEN = re.compile(rb"<(?:script|style|template)\b", re.I)


class Reason(StrEnum):
    """Why the detector decided as it did."""

    NO_SCRIPTS = "no_scripts"
    NOSCRIPT_ASKS = "noscript_asks"
    APP_ROOT = "app_root"
    LITTLE_TEXT = "little_text"
    HAS_TEXT = "has_text"


@dataclass(frozen=True, slots=True)
class PageFacts:
    """What the detector and the learner read from one HTML document."""

    html_bytes: int
    text_chars: int
    links: int
    scripts: int
    empty_app_root: bool = False
    noscript_asks: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """Render or not, and why."""

    render: bool
    reason: Reason


def clearly_static(body: bytes) -> bool:
    """Does this HTML (in an ASCII-compatible encoding) surely carry its own content? A few
    scans of the bytes; False means "ask `page_facts`", not "client-rendered"."""
    if _SCRIPT.search(body) is None:
        return True
    noscript = _NOSCRIPT.search(body)
    while noscript is not None:
        close = _NOSCRIPT_END.search(body, noscript.end())
        inside = body[noscript.end() : len(body) if close is None else close.start()]
        if _ASKS_FOR_JS_BYTES.search(inside) is not None:
            return False
        noscript = None if close is None else _NOSCRIPT.search(body, close.end())
    opened = _BODY.search(body)
    start = 0 if opened is None else opened.end()
    need = max(CLEAR_TEXT_BYTES, len(body) // CLEAR_TEXT_SHARE)
    # The text is counted in growing windows: a page with text clears in its first ones.
    text, window = 0, 2 * need
    while start < len(body):
        end = min(len(body), start + window)
        text += sum(map(len, _TEXT_RUN.findall(body, start, end)))
        text -= _raw_bytes(body, start, end)
        if text >= need:
            return True
        start, window = end, window * 2
    return False


def _raw_bytes(body: bytes, start: int, end: int) -> int:
    """Bytes of script, style and template content between `start` and `end` (an over-count:
    the text runs of those elements are at most that)."""
    total = 0
    for opened in _RAW_OPEN.finditer(body, start, end):
        close = body.find(b"</", opened.end(), end)
        total += (end if close < 0 else close) - opened.end()
    return total


def page_facts(html: str) -> PageFacts:
    """The facts of one HTML document (garbage in gives sparse facts, never an exception)."""
    tree = LexborHTMLParser(html)
    scripts = len(tree.css("script"))
    noscript = " ".join(node.text(deep=True) or "" for node in tree.css("noscript"))
    links = sum(1 for node in tree.css("a[href]") if (node.attributes.get("href") or "").strip())
    empty_root = False
    for node in tree.css("[id]"):
        if (node.attributes.get("id") or "").strip().lower() in APP_ROOT_IDS and _small(node):
            empty_root = True
            break
    if not empty_root:
        empty_root = any(_small(node) for node in tree.css(APP_ROOT_SELECTOR))
    tree.strip_tags(_HIDDEN)
    body = tree.body
    text = body.text(deep=True, separator=" ") if body is not None else ""
    return PageFacts(
        html_bytes=len(html.encode("utf-8", "replace")),
        text_chars=len(" ".join(text.split())),
        links=links,
        scripts=scripts,
        empty_app_root=empty_root,
        noscript_asks=bool(_ASKS_FOR_JS.search(noscript)),
    )


def _small(node: LexborNode) -> bool:
    text = node.text(deep=True) or ""
    return len(" ".join(text.split())) <= EMPTY_ROOT_CHARS


def looks_client_rendered(facts: PageFacts) -> Decision:
    """Would rendering this page in a browser most likely show more than its static HTML?"""
    if facts.scripts == 0:
        return Decision(False, Reason.NO_SCRIPTS)
    if facts.noscript_asks:
        return Decision(True, Reason.NOSCRIPT_ASKS)
    if facts.empty_app_root and facts.text_chars < LITTLE_TEXT_CHARS * 5:
        return Decision(True, Reason.APP_ROOT)
    if facts.text_chars < LITTLE_TEXT_CHARS:
        return Decision(True, Reason.LITTLE_TEXT)
    if facts.html_bytes >= MIN_SPARSE_BYTES and facts.text_chars < facts.html_bytes * SPARSE_RATIO:
        return Decision(True, Reason.LITTLE_TEXT)
    return Decision(False, Reason.HAS_TEXT)
