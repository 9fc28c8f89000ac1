"""Extraction rules: named fields taken from a page's tree with CSS selectors (pages.data).

Pure and CPU-only, like parse.py, which runs the rules on the tree it has already built (one
parse a page). `compile_rules` checks every rule once, at start: a selector lexbor cannot
parse, or a `take` it does not know, is a `ConfigError` naming the rule, never a crash in
the middle of a crawl. selectolax has no compiled-selector object (it parses the selector
text on every query), so "compiled" means checked and pre-digested.

What a rule takes from each match:

- `text`: the text of the element and its descendants, with text nodes joined by a space
  and whitespace collapsed (as pages.h1 and pages.text are); `<script>`, `<style>` and
  `<template>` inside the element are not text. A rule that selects a `<script>` itself
  (JSON-LD: `script[type="application/ld+json"]`) gets its content.
- `html`: the element's outer HTML as lexbor serialises it, `<script>`s included.
- `attr:NAME`: the attribute's value, as written; `href` and `src` are resolved against the
  document base URL into absolute canonical URLs (`crawler.urls.resolve_all`), keeping the
  raw value when that gives nothing (`mailto:`, `data:`, unparsable). A match without the
  attribute gives no value.

With `all = true` the field is a list of the values of every match, in document order (an
empty list when nothing matches); otherwise it is the first of those values, or None. So
the first-match form is always the first item of the list form.

Two steps, around the parser's own stripping of code: `begin` runs the selectors on the
whole tree (so they can match `<script>`) and takes what needs the code (html, a script's
text) and attributes; `Pending.finish`, once `<script>`, `<style>` and `<template>` are
stripped from the tree, takes the text of the other matches with lexbor's own `text()`. No
copies of subtrees, no walks in Python. `apply` does both on a tree of its own.

Bounded output, whatever the page: a list keeps at most `MAX_MATCHES` values, and all the
fields of one page together hold at most `MAX_DATA_CHARS` characters; past that budget
values are cut short and lists end early (html stops being serialised too, so `div` /
`html` / `all` on deeply nested markup cannot grow quadratically). The text of nested
matches is read once a match, like the tree builder's own work: quadratic in the nesting
depth, which the body-size cap at fetch time bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from crawler.config import ExtractRule
from crawler.errors import ConfigError
from crawler.urls import resolve_all

__all__ = [
    "CODE_TAGS",
    "MAX_DATA_CHARS",
    "MAX_MATCHES",
    "CompiledRule",
    "CompiledRules",
    "Pending",
    "apply",
    "begin",
    "compile_rules",
]

MAX_MATCHES = 10_000
MAX_DATA_CHARS = 2_000_000

# Attributes whose values are URLs: given back absolute.
URL_ATTRIBUTES = frozenset({"href", "src"})
# Elements whose content is never text: stripped between `begin` and `Pending.finish`.
CODE_TAGS = ("script", "style", "template")


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One checked rule: `take` split into its kind ("text", "html", "attr") and attribute."""

    name: str
    css: str
    kind: str
    attribute: str | None = None
    all: bool = False

    @property
    def resolves(self) -> bool:
        return self.attribute in URL_ATTRIBUTES


@dataclass(frozen=True, slots=True)
class CompiledRules:
    """The rules of a crawl, checked; empty when the config has none."""

    rules: tuple[CompiledRule, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rules)

    def __len__(self) -> int:
        return len(self.rules)


def _compile(rule: ExtractRule) -> CompiledRule:
    where = f"extract rule {rule.name!r}"
    if not rule.name:
        raise ConfigError("an extract rule needs a name")
    try:  # lexbor parses the selector whatever the tree: try it on an empty document
        LexborHTMLParser("").css(rule.css)
    except (SelectolaxError, TypeError, UnicodeError):
        raise ConfigError(f"{where}: bad CSS selector {rule.css!r}") from None
    if rule.take in ("text", "html"):
        return CompiledRule(rule.name, rule.css, rule.take, None, rule.all)
    attribute = rule.take[5:].strip().lower() if rule.take.startswith("attr:") else ""
    if not attribute:
        raise ConfigError(f"{where}: take must be text, html or attr:NAME, not {rule.take!r}")
    return CompiledRule(rule.name, rule.css, "attr", attribute, rule.all)


def compile_rules(rules: tuple[ExtractRule, ...]) -> CompiledRules:
    """Check every rule (selector, take, unique name); raise ConfigError on the first bad one.

    Call it once at start: a bad selector then stops the program before any work is done.
    """
    compiled: list[CompiledRule] = []
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise ConfigError(f"extract rule {rule.name!r} is defined twice")
        seen.add(rule.name)
        compiled.append(_compile(rule))
    return CompiledRules(tuple(compiled))


def _raw_attribute(node: LexborNode, name: str) -> str | None:
    """The attribute as written; "" when valueless (`<img src>`); None when absent."""
    attrs = node.attrs
    raw = attrs.get(name)
    if raw is None and name in attrs:
        return ""
    return raw


def _absolute(raws: list[str], base: str) -> list[str]:
    """URL attribute values made absolute (all at once: the resolver's fast path); a value
    that gives no http(s) URL, or is blank, stays as written."""
    resolved = resolve_all(raws, base)
    return [
        url if url is not None and raw.strip() else raw
        for raw, url in zip(raws, resolved, strict=True)
    ]


def _text(node: LexborNode) -> str:
    return " ".join(node.text(separator=" ").split())


# A value taken in `begin`, or a matched element whose text `finish` takes.
_Item = str | LexborNode


class Pending:
    """The rules' matches on one tree, between `begin` and `finish`."""

    __slots__ = ("_fields", "_html_left")

    def __init__(self) -> None:
        # Per rule: its name, whether it keeps every match, and the items in order.
        self._fields: list[tuple[str, bool, list[_Item]]] = []
        self._html_left = MAX_DATA_CHARS  # html is made in `begin`: its own bound on work

    def _early(self, node: LexborNode, rule: CompiledRule, base: str) -> _Item | None:
        """What `begin` takes of a match: a value, the node (text: later), or None (the
        attribute is missing, or the html budget is spent)."""
        kind = rule.kind
        if kind == "text":
            return _text(node) if node.tag in CODE_TAGS else node
        if kind == "html":
            if self._html_left <= 0:
                return None
            html = node.html or ""
            self._html_left -= len(html)
            return html
        assert rule.attribute is not None
        raw = _raw_attribute(node, rule.attribute)
        if raw is None or not rule.resolves:
            return raw
        return _absolute([raw], base)[0]

    def add(self, tree: LexborHTMLParser, rule: CompiledRule, base: str) -> None:
        items: list[_Item] = []
        if not rule.all:
            node = tree.css_first(rule.css)
            item = None if node is None else self._early(node, rule, base)
            if item is None and node is not None and rule.kind == "attr":
                # The first match lacks the attribute: the field is the first match with it.
                for node in tree.css(rule.css):
                    item = self._early(node, rule, base)
                    if item is not None:
                        break
            if item is not None:
                items.append(item)
        elif rule.kind == "attr":
            assert rule.attribute is not None
            raws: list[str] = []
            for node in tree.css(rule.css):
                raw = _raw_attribute(node, rule.attribute)
                if raw is not None:
                    raws.append(raw)
                    if len(raws) >= MAX_MATCHES:
                        break
            items.extend(_absolute(raws, base) if rule.resolves else raws)
        else:
            for node in tree.css(rule.css)[:MAX_MATCHES]:
                item = self._early(node, rule, base)
                if item is None:  # html budget spent
                    break
                items.append(item)
        self._fields.append((rule.name, rule.all, items))

    def finish(self) -> dict[str, object]:
        """The fields, by rule name. Call it once code is stripped from the tree (the text
        of the matched elements is read now), and before anything else changes it."""
        left = MAX_DATA_CHARS
        data: dict[str, object] = {}
        for name, every, items in self._fields:
            values: list[str] = []
            for item in items:
                if left <= 0:
                    break
                value = item if isinstance(item, str) else _text(item)
                if "\x00" in value:  # PostgreSQL text and jsonb cannot hold NUL
                    value = value.replace("\x00", "")
                value = value[:left]
                left -= len(value)
                values.append(value)
            data[name] = values if every else (values[0] if values else None)
        self._fields = []
        return data


def begin(tree: LexborHTMLParser, rules: CompiledRules, base: str) -> Pending:
    """Run the rules on a whole tree (`<script>` and `<style>` still in it); `base` is the
    document base URL. Strip `CODE_TAGS` from the tree, then call `finish`."""
    pending = Pending()
    for rule in rules.rules:
        pending.add(tree, rule, base)
    return pending


def apply(tree: LexborHTMLParser, rules: CompiledRules, base: str) -> dict[str, object]:
    """Every rule's field from one document's tree, in one call. The tree is left without
    its `<script>`, `<style>` and `<template>` elements (as parse.py leaves it anyway)."""
    pending = begin(tree, rules, base)
    tree.strip_tags(list(CODE_TAGS), recursive=True)
    return pending.finish()
