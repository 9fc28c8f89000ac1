"""crawler.extract: checking rules up front, and what each rule takes from a page."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from selectolax.lexbor import LexborHTMLParser

from crawler.config import ExtractRule
from crawler.config_sources import load_settings
from crawler.errors import ConfigError
from crawler.extract import CODE_TAGS, MAX_DATA_CHARS, MAX_MATCHES, apply, compile_rules
from crawler.parse import parse_html, stored_page

URL = "https://shop.example/dir/item.html?id=7"

PAGE = """<!doctype html><html><head><title>Item</title>
<script type="application/ld+json">{"@type": "Product",
  "name": "Lamp"}</script>
<style>.price { color: red }</style></head>
<body>
  <h1>  A   <em>fine</em>
     lamp </h1>
  <div class="price">$<span>19</span>.99</div>
  <div class="price">$5</div>
  <div id="desc">Bright<script>track()</script> and <style>p{}</style>cheap</div>
  <a href="/a.html#top">A</a> <a name="anchor">no href</a>
  <a href="b.html" rel="next">B</a> <a href="mailto:x@shop.example">mail</a>
  <a href="https://Other.example:443/c">C</a>
  <img src="img/1.png" alt="one"><img alt="none"><img src="data:image/gif;base64,R0lG">
  <p data-sku=" 42 ">x</p>
</body></html>"""


def rule(name: str, css: str, take: str = "text", all_: bool = False) -> ExtractRule:
    return ExtractRule(name=name, css=css, take=take, all=all_)


def extract(html: str, *rules: ExtractRule, url: str = URL) -> dict[str, object]:
    return parse_html(html, url, compile_rules(rules)).data


# (case id, rule, expected value on PAGE)
CASES: list[tuple[str, ExtractRule, Any]] = [
    # text: whitespace collapsed, descendants joined by a space (as pages.h1)
    ("text first", rule("h1", "h1"), "A fine lamp"),
    ("text first of several", rule("price", ".price"), "$ 19 .99"),
    ("text all", rule("prices", ".price", all_=True), ["$ 19 .99", "$5"]),
    ("text without code", rule("desc", "#desc"), "Bright and cheap"),
    ("text of a script", rule("ld", 'script[type="application/ld+json"]'), None),
    ("text none", rule("none", ".nothing"), None),
    ("text all none", rule("none", ".nothing", all_=True), []),
    # html: outer html
    ("html", rule("h", "#desc", "html"), None),
    ("html all", rule("h", "img", "html", all_=True), None),
    # attributes
    ("attr raw", rule("sku", "p", "attr:data-sku"), " 42 "),
    ("attr case", rule("sku", "p", "attr:DATA-SKU"), " 42 "),
    ("attr missing", rule("x", "p", "attr:nope"), None),
    ("attr missing all", rule("x", "p", "attr:nope", all_=True), []),
    ("href resolved", rule("first", "a", "attr:href"), "https://shop.example/a.html"),
    (
        "href all",
        rule("links", "a", "attr:href", all_=True),
        [
            "https://shop.example/a.html",
            "https://shop.example/dir/b.html",
            "mailto:x@shop.example",
            "https://other.example/c",
        ],
    ),
    (
        "src all",
        rule("images", "img", "attr:src", all_=True),
        ["https://shop.example/dir/img/1.png", "data:image/gif;base64,R0lG"],
    ),
    ("rel not a url", rule("rel", "a[rel]", "attr:rel"), "next"),
    ("alt all keeps order", rule("alts", "img", "attr:alt", all_=True), ["one", "none", None]),
]


@pytest.mark.parametrize(("case", "r", "expected"), CASES, ids=[c[0] for c in CASES])
def test_rule(case: str, r: ExtractRule, expected: Any) -> None:
    value = extract(PAGE, r)[r.name]
    if case == "text of a script":
        assert json.loads(str(value)) == {"@type": "Product", "name": "Lamp"}
    elif case == "html":
        assert value == (
            '<div id="desc">Bright<script>track()</script> and <style>p{}</style>cheap</div>'
        )
    elif case == "html all":
        assert value == [
            '<img src="img/1.png" alt="one">',
            '<img alt="none">',
            '<img src="data:image/gif;base64,R0lG">',
        ]
    elif case == "alt all keeps order":
        assert value == ["one", "none"]  # the third <img> has no alt: no value
    else:
        assert value == expected


@pytest.mark.parametrize(("case", "r", "expected"), CASES, ids=[c[0] for c in CASES])
def test_first_match_is_the_first_item_of_all(case: str, r: ExtractRule, expected: Any) -> None:
    first = extract(PAGE, rule(r.name, r.css, r.take))[r.name]
    every = extract(PAGE, rule(r.name, r.css, r.take, all_=True))[r.name]
    assert isinstance(every, list)
    assert first == (every[0] if every else None)


def test_first_match_without_the_attribute_gives_the_next_that_has_it() -> None:
    html = '<a name="top">x</a><a href="/one">1</a><a href="/two">2</a>'
    assert extract(html, rule("link", "a", "attr:href")) == {"link": "https://shop.example/one"}


def test_urls_resolve_against_the_base_href() -> None:
    html = '<base href="https://cdn.example/assets/"><img src="a.png"><a href="../b">b</a>'
    data = extract(html, rule("img", "img", "attr:src"), rule("a", "a", "attr:href"))
    assert data == {"img": "https://cdn.example/assets/a.png", "a": "https://cdn.example/b"}


def test_url_attributes_fall_back_to_the_raw_value() -> None:
    html = '<a href="javascript:void(0)">j</a><a href="http://[bad">b</a><a href>e</a>'
    data = extract(html, rule("hrefs", "a", "attr:href", all_=True))
    assert data == {"hrefs": ["javascript:void(0)", "http://[bad", ""]}


def test_several_rules_and_the_other_fields_unchanged() -> None:
    rules = compile_rules(
        (rule("title", "h1"), rule("links", "a", "attr:href", all_=True), rule("x", ".none"))
    )
    plain = parse_html(PAGE, URL)
    with_rules = parse_html(PAGE, URL, rules)
    assert list(with_rules.data) == ["title", "links", "x"]
    assert with_rules.data["title"] == "A fine lamp"
    assert with_rules.data["x"] is None
    # Extraction reads the tree before code is stripped; the page's own fields do not change.
    for field in ("title", "description", "canonical", "lang", "h1", "text", "links"):
        assert getattr(with_rules, field) == getattr(plain, field), field
    assert "track()" not in with_rules.text
    assert plain.data == {}


def test_no_rules_give_no_data() -> None:
    empty = compile_rules(())
    assert not empty and len(empty) == 0
    assert parse_html(PAGE, URL, empty).data == {}
    assert parse_html(PAGE, URL, None).data == {}


def test_apply_strips_code_from_the_tree_and_nothing_else() -> None:
    tree = LexborHTMLParser(PAGE)
    rules = compile_rules((rule("desc", "#desc"), rule("h", "div", "html", all_=True)))
    data = apply(tree, rules, URL)
    assert data["desc"] == "Bright and cheap"
    assert isinstance(data["h"], list) and "track()" in data["h"][2]  # html keeps scripts
    stripped = LexborHTMLParser(PAGE)
    stripped.strip_tags(list(CODE_TAGS), recursive=True)
    assert tree.html == stripped.html


def test_text_of_nested_elements_holding_code() -> None:
    """No copies of subtrees: 5,000 nested divs, each holding a script, stay cheap."""
    html = "<div>" * 5_000 + "x<script>js()</script>y" + "</div>" * 5_000
    start = time.perf_counter()
    data = extract(html, rule("t", "div", all_=True), rule("first", "div"))
    assert time.perf_counter() - start < 5
    assert data["t"] == ["x y"] * 5_000
    assert data["first"] == "x y"


def test_values_are_json_for_jsonb() -> None:
    rules = compile_rules(
        (rule("t", "p"), rule("h", "p", "html", all_=True), rule("a", "p", "attr:title"))
    )
    html = "<p title='a\x00b\ud800'>\x00x\udfff</p>"
    data = parse_html(html, URL, rules).data
    text = json.dumps(data)
    assert "\\u0000" not in text and "\\ud" not in text
    assert json.loads(text) == data


# -- bad rules are configuration errors, found up front ---------------------------------------


# lexbor follows CSS Syntax, as browsers do: the end of the selector closes an open bracket,
# so "div[price" is "div[price]", not an error.
@pytest.mark.parametrize(
    "css", ["p[", "..price", "div >", "", "   ", "p:nth-child(", "a, ", "p::before", "#", "!!"]
)
def test_bad_selector_is_a_config_error_naming_rule_and_selector(css: str) -> None:
    with pytest.raises(ConfigError) as info:
        compile_rules((rule("ok", "p"), rule("price", css)))
    assert str(info.value) == f"extract rule 'price': bad CSS selector {css!r}"


@pytest.mark.parametrize("take", ["attr:", "attr:  ", "value", "attr"])
def test_bad_take_is_a_config_error(take: str) -> None:
    with pytest.raises(ConfigError, match="extract rule 'x': take must be"):
        compile_rules((rule("x", "p", take),))


def test_a_name_used_twice_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'x' is defined twice"):
        compile_rules((rule("x", "p"), rule("x", "a")))


def test_rules_from_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "crawler.toml"
    config.write_text(
        """
[extract.price]
css = ".price"
take = "text"
[extract.images]
css = "img"
take = "attr:src"
all = true
""",
        encoding="utf-8",
    )
    settings = load_settings({}, config_file=config)
    data = parse_html(PAGE, URL, compile_rules(settings.extract)).data
    assert data == {
        "price": "$ 19 .99",
        "images": ["https://shop.example/dir/img/1.png", "data:image/gif;base64,R0lG"],
    }


def test_bad_selector_in_the_config_file_is_found_by_compile(tmp_path: Path) -> None:
    config = tmp_path / "crawler.toml"
    config.write_text('[extract.price]\ncss = "div[=price]"\n', encoding="utf-8")
    settings = load_settings({}, config_file=config)
    with pytest.raises(
        ConfigError, match=r"extract rule 'price': bad CSS selector 'div\[=price\]'"
    ):
        compile_rules(settings.extract)


# -- bounded output ---------------------------------------------------------------------------


def test_lists_are_capped() -> None:
    html = "<i>x</i>" * (MAX_MATCHES + 50)
    value = extract(html, rule("all", "i", all_=True))["all"]
    assert isinstance(value, list) and len(value) == MAX_MATCHES


def test_nested_markup_cannot_blow_up() -> None:
    """`div` / html / all on 5,000 nested divs would be 5,000 copies of the page."""
    html = "<div>" * 5_000 + "x" * 1_000 + "</div>" * 5_000
    start = time.perf_counter()
    data = extract(
        html,
        rule("h", "div", "html", all_=True),
        rule("t", "div", all_=True),
        rule("later", "div"),
    )
    assert time.perf_counter() - start < 5
    values = [*data["h"], *data["t"]]  # type: ignore[misc]
    assert sum(len(v) for v in values) <= MAX_DATA_CHARS
    assert data["later"] is None  # the page's budget is spent


def test_garbage_never_raises() -> None:
    rules = compile_rules(
        (rule("t", "*", all_=True), rule("h", "a", "html"), rule("u", "a", "attr:href", True))
    )
    for html in (
        bytes(range(256)).decode("latin-1") * 100,
        "<a href='" + "y" * 100_000,
        "<base href='\ud800'><a href='/x\udc00'>\udfff</a>",
        "<!--" + "x" * 10_000,
        "",
    ):
        data = parse_html(html, URL, rules).data
        assert set(data) == {"t", "h", "u"}
        json.dumps(data)


@pytest.mark.parametrize(
    ("robots", "obey", "kept"),
    [
        ("noindex", True, False),
        ("noindex, nofollow", True, False),
        ("noindex", False, True),
        ("nofollow", True, True),
        (None, True, True),
    ],
)
def test_a_noindex_page_is_stored_without_text(robots: str | None, obey: bool, kept: bool) -> None:
    meta = f'<meta name="robots" content="{robots}">' if robots else ""
    page = parse_html(meta + "<h1>Hi</h1>", URL, compile_rules((rule("h", "h1"),)))
    stored = stored_page(page, obey_meta_robots=obey)
    if kept:
        assert stored == page
    else:
        assert (stored.text, stored.data) == ("", page.data)
        assert (stored.h1, stored.meta_robots) == (page.h1, page.meta_robots)
