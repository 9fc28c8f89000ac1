"""crawler.parse: each Page field from HTML, link resolution, and hostile input."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from selectolax.lexbor import LexborHTMLParser, LexborNode

from crawler import urls
from crawler.parse import MAX_ANCHOR_CHARS, MAX_LINKS, MAX_TEXT_CHARS, parse_html
from crawler.records import Page

URL = "https://www.example.com/dir/page.html?x=1"

# (case id, html, field, expected)
FIELDS: list[tuple[str, str, str, Any]] = [
    # title
    ("title", "<title>Hello</title>", "title", "Hello"),
    ("title ws+entities", "<title>\n  A  &amp;\tB \n</title>", "title", "A & B"),
    ("title empty", "<title>  \n </title>", "title", None),
    ("title missing", "<p>x", "title", None),
    ("title first wins", "<title>one</title><title>two</title>", "title", "one"),
    ("title not svg", "<body><svg><title>tip</title></svg><title>real</title>", "title", "real"),
    ("title only svg", "<svg><title>tip</title></svg>", "title", None),
    ("title markup is text", "<title><b>bold</b></title>", "title", "<b>bold</b>"),
    # description
    ("desc", '<meta name="description" content="About us">', "description", "About us"),
    ("desc case", '<meta NAME="Description" content=" a \n b ">', "description", "a b"),
    ("desc empty", '<meta name="description" content="  ">', "description", None),
    ("desc no content", '<meta name="description">', "description", None),
    (
        "desc first",
        "<meta name=description content=1><meta name=description content=2>",
        "description",
        "1",
    ),
    ("desc og ignored", '<meta property="og:description" content="og">', "description", None),
    # canonical
    (
        "canon abs",
        '<link rel="canonical" href="https://Example.com:443/a#f">',
        "canonical",
        "https://example.com/a",
    ),
    (
        "canon rel",
        '<link rel=canonical href="../c?q=%2f">',
        "canonical",
        "https://www.example.com/c?q=%2F",
    ),
    (
        "canon token",
        '<link rel="Alternate CANONICAL" href="/c">',
        "canonical",
        "https://www.example.com/c",
    ),
    (
        "canon base",
        '<base href="/b/"><link rel=canonical href="c">',
        "canonical",
        "https://www.example.com/b/c",
    ),
    # what the page declared, whatever its scheme (issue 21, point 9: the Python docs)
    ("canon js", '<link rel=canonical href="javascript:x">', "canonical", "javascript:x"),
    (
        "canon file",
        '<link rel="canonical" href="file:///home/docs/build/html/library/os.html">',
        "canonical",
        "file:///home/docs/build/html/library/os.html",
    ),
    ("canon bad url", '<link rel=canonical href=" http://[bad/ ">', "canonical", "http://[bad/"),
    ("canon none", '<link rel=alternate href="/c">', "canonical", None),
    (
        "canon empty href",
        '<link rel=canonical href="">',
        "canonical",
        "https://www.example.com/dir/page.html?x=1",
    ),
    # lang
    ("lang", '<html lang="en-GB"><p>x', "lang", "en-GB"),
    ("lang ws", '<html lang=" fr "><p>x', "lang", "fr"),
    ("lang empty", '<html lang=""><p>x', "lang", None),
    ("lang valueless", "<html lang><p>x", "lang", None),
    ("lang missing", "<p>x", "lang", None),
    # h1
    ("h1", "<h1>Main <em>title</em></h1><h1>second</h1>", "h1", "Main title"),
    ("h1 ws", "<h1>\n  a \n\n b </h1>", "h1", "a b"),
    ("h1 empty", "<h1> </h1>", "h1", None),
    ("h1 missing", "<h2>x</h2>", "h1", None),
    # meta robots
    (
        "robots",
        '<meta name="robots" content="NOINDEX, NoFollow">',
        "meta_robots",
        "noindex, nofollow",
    ),
    ("robots case", '<meta name="ROBOTS" content="noarchive">', "meta_robots", "noarchive"),
    (
        "robots many",
        "<meta name=robots content=noindex><meta name=robots content=nofollow>",
        "meta_robots",
        "noindex, nofollow",
    ),
    ("robots empty", '<meta name=robots content="">', "meta_robots", None),
    ("robots missing", "<p>x", "meta_robots", None),
    ("robots other ua", '<meta name="googlebot" content="noindex">', "meta_robots", None),
    # visible text
    ("text", "<body><p>Hello <b>world</b></p><p>again</p>", "text", "Hello world again"),
    (
        "text invisible",
        "<head><title>T</title><style>.a{}</style></head><body>a<script>var s</script>"
        "<noscript>ns</noscript><template>tpl</template>b<style>x</style>c"
        "<svg><title>tip</title></svg>",
        "text",
        "abc",  # as innerText: what is not rendered separates nothing
    ),
    # inline elements add no space, other elements and <br> separate (issue 21, point 10)
    ("text inline link", "<p>Found a <a href=/bug>bug</a>?</p>", "text", "Found a bug?"),
    (
        "text inline",
        "<p>Pokorn<b>ý</b>, <i>x</i><span>y</span><img src=i>z</p>",
        "text",
        "Pokorný, xyz",
    ),
    ("text nested inline", "<p><a href=/><strong>J</strong>ohn</a> Doe</p>", "text", "John Doe"),
    ("text blocks", "<div>a</div><div>b</div><p>c</p>d<ul><li>e<li>f</ul>", "text", "a b c d e f"),
    ("text br", "one<br>two<br/>three", "text", "one two three"),
    (
        "text cells",
        "<table><tr><td>1</td><td>2</td></tr><tr><td>3</td></tr></table>",
        "text",
        "1 2 3",
    ),
    ("text empty inline", "a<span></span>b<b><img></b>c", "text", "abc"),
    ("h1 inline", "<h1>Found a <em>bug</em>?</h1>", "h1", "Found a bug?"),
    ("h1 blocks", "<h1><span>A</span><div>B</div></h1>", "h1", "A B"),
    ("text entities ws", "<p>\n\t x &amp;&nbsp;y \u3000 z\n", "text", "x & y z"),
    ("text head excluded", "<head><meta name=description content=d></head><body>b", "text", "b"),
    ("text frameset", "<frameset><frame src=a></frameset>", "text", ""),
    ("text empty", "", "text", ""),
    # head elements pushed into <body> (a <noscript><img> in <head> ends the head)
    ("late head title", "<head><noscript><img src=p.gif></noscript><title>T</title>", "title", "T"),
    (
        "late head canonical",
        '<head><noscript><img src=p.gif></noscript><link rel=canonical href="/c">',
        "canonical",
        "https://www.example.com/c",
    ),
    (
        "late head robots",
        "<head><noscript><img src=p.gif></noscript><meta name=robots content=noindex>",
        "meta_robots",
        "noindex",
    ),
]


@pytest.mark.parametrize(
    ("html", "field", "expected"), [c[1:] for c in FIELDS], ids=[c[0] for c in FIELDS]
)
def test_field(html: str, field: str, expected: Any) -> None:
    assert getattr(parse_html(html, URL), field) == expected


def test_full_page() -> None:
    html = """<!doctype html><html lang=en><head><title>T</title>
    <meta name=description content=D><meta name=robots content=NoIndex>
    <link rel=canonical href=/canon></head>
    <body><h1>H</h1><p>Body text.</p><a href="/a">A</a></body></html>"""
    assert parse_html(html, URL) == Page(
        title="T",
        description="D",
        canonical="https://www.example.com/canon",
        lang="en",
        h1="H",
        text="H Body text. A",
        meta_robots="noindex",
        links=(("https://www.example.com/a", "A", False),),
    )
    assert parse_html(html, URL).noindex


# (case id, html, expected links) with the page at URL
LINKS: list[tuple[str, str, list[tuple[str, str, bool]]]] = [
    ("relative", '<a href="a.html">A</a>', [("https://www.example.com/dir/a.html", "A", False)]),
    (
        "root and dotdot",
        '<a href="/r">R</a><a href="../up">U</a>',
        [("https://www.example.com/r", "R", False), ("https://www.example.com/up", "U", False)],
    ),
    (
        "absolute",
        '<a href="HTTP://Other.ORG:80/p?q=%7e">O</a>',
        [("http://other.org/p?q=%7E", "O", False)],
    ),
    (
        "protocol-relative",
        '<a href="//cdn.example.net/x">C</a>',
        [("https://cdn.example.net/x", "C", False)],
    ),
    (
        "entities in href",
        '<a href="/s?a=1&amp;b=2&#x26;c=3">E</a>',
        [("https://www.example.com/s?a=1&b=2&c=3", "E", False)],
    ),
    (
        "whitespace in href",
        '<a href="  \n/p/a\tb.html \n ">W</a>',
        [("https://www.example.com/p/ab.html", "W", False)],
    ),
    ("space inside href", '<a href="/a b">S</a>', [("https://www.example.com/a%20b", "S", False)]),
    (
        "fragment dropped",
        '<a href="/p#sec">F</a><a href="#top">T</a>',
        [
            ("https://www.example.com/p", "F", False),
            ("https://www.example.com/dir/page.html?x=1", "T", False),
        ],
    ),
    (
        "query only",
        '<a href="?y=2">Q</a>',
        [("https://www.example.com/dir/page.html?y=2", "Q", False)],
    ),
    (
        "valueless href",
        "<a href>V</a>",
        [("https://www.example.com/dir/page.html?x=1", "V", False)],
    ),
    ("no href skipped", '<a name="x">N</a><a id=y>M</a>', []),
    (
        "non-http skipped",
        '<a href="javascript:void(0)">j</a><a href=" JavaScript:x">J</a>'
        '<a href="mailto:a@b.c">m</a>'
        '<a href="tel:+1">t</a><a href="data:text/html,x">d</a><a href="ftp://f/x">f</a>'
        '<a href="http://[::1">bad</a><a href="/ok">ok</a>',
        [("https://www.example.com/ok", "ok", False)],
    ),
    (
        "nofollow",
        '<a href=/a rel="nofollow">1</a><a href=/b rel="NoFollow noopener">2</a>'
        '<a href=/c rel="noopener\tNOFOLLOW">3</a><a href=/d rel="nofollowing">4</a>'
        '<a href=/e rel="">5</a><a href=/f rel>6</a>',
        [
            ("https://www.example.com/a", "1", True),
            ("https://www.example.com/b", "2", True),
            ("https://www.example.com/c", "3", True),
            ("https://www.example.com/d", "4", False),
            ("https://www.example.com/e", "5", False),
            ("https://www.example.com/f", "6", False),
        ],
    ),
    (
        "anchor text",
        "<a href=/a>\n  Read <b>more</b>\n <img src=x alt=i> </a>",
        [("https://www.example.com/a", "Read more", False)],
    ),
    (
        "anchor inline",
        "<a href=/a><b>Sp</b>an<i>ish</i> <em>inquisition</em></a>",
        [("https://www.example.com/a", "Spanish inquisition", False)],
    ),
    (
        "anchor blocks",
        "<a href=/a><div>Title</div><div>Desc</div></a>",
        [("https://www.example.com/a", "Title Desc", False)],
    ),
    (
        "anchor script",
        "<a href=/a>x<script>var y</script><style>s</style></a>",
        [("https://www.example.com/a", "x", False)],
    ),
    (
        "area",
        '<map><area href="/m" alt=" Map  area "><area nohref alt=z></map>',
        [("https://www.example.com/m", "Map area", False)],
    ),
    (
        "area nofollow",
        '<map><area href="/m" rel=nofollow></map>',
        [("https://www.example.com/m", "", True)],
    ),
    (
        "duplicates and order kept",
        "<a href=/b>B</a><a href=/a>A</a><a href=/b>B</a><a href=/b#x>B</a>",
        [
            ("https://www.example.com/b", "B", False),
            ("https://www.example.com/a", "A", False),
            ("https://www.example.com/b", "B", False),
            ("https://www.example.com/b", "B", False),
        ],
    ),
    (
        "a and area interleaved",
        "<a href=/1>1</a><map><area href=/2 alt=2></map><a href=/3>3</a>",
        [
            ("https://www.example.com/1", "1", False),
            ("https://www.example.com/2", "2", False),
            ("https://www.example.com/3", "3", False),
        ],
    ),
    (
        "noscript links kept",
        "<noscript><a href=/ns>ns</a></noscript>",
        [("https://www.example.com/ns", "ns", False)],
    ),
    ("template links ignored", "<template><a href=/t>t</a></template>", []),
    (
        "idn and unicode",
        '<a href="https://Bücher.example/ä?ö">U</a>',
        [("https://xn--bcher-kva.example/%C3%A4?%C3%B6", "U", False)],
    ),
    # <base href>
    (
        "base absolute",
        '<base href="https://cdn.example.org/x/"><a href="y">Y</a>',
        [("https://cdn.example.org/x/y", "Y", False)],
    ),
    (
        "base relative",
        '<base href="../base/"><a href="y">Y</a><a href="/r">R</a>',
        [("https://www.example.com/base/y", "Y", False), ("https://www.example.com/r", "R", False)],
    ),
    (
        "base with file name",
        '<base href="/b/index.html?q#f"><a href="y">Y</a><a href="#z">Z</a>',
        [
            ("https://www.example.com/b/y", "Y", False),
            ("https://www.example.com/b/index.html?q", "Z", False),
        ],
    ),
    (
        "base whitespace",
        '<base href="\n /b/ \t"><a href="y">Y</a>',
        [("https://www.example.com/b/y", "Y", False)],
    ),
    (
        "first base wins",
        '<base href="/one/"><base href="/two/"><a href="y">Y</a>',
        [("https://www.example.com/one/y", "Y", False)],
    ),
    (
        "base without href skipped",
        '<base target=_blank><base href="/b/"><a href="y">Y</a>',
        [("https://www.example.com/b/y", "Y", False)],
    ),
    (
        "base in body still applies",
        '<body><a href="y">Y</a><base href="/b/">',
        [("https://www.example.com/b/y", "Y", False)],
    ),
    (
        "base javascript ignored",
        '<base href="javascript:alert(1)"><a href="y">Y</a>',
        [("https://www.example.com/dir/y", "Y", False)],
    ),
    (
        "base data ignored",
        '<base href="data:text/html,x"><a href="y">Y</a>',
        [("https://www.example.com/dir/y", "Y", False)],
    ),
    (
        "base invalid ignored",
        '<base href="http://[::1"><a href="y">Y</a>',
        [("https://www.example.com/dir/y", "Y", False)],
    ),
    (
        "base ftp kept",
        '<base href="ftp://files.example/d/"><a href="y">Y</a><a href="http://h/">H</a>',
        [("http://h/", "H", False)],
    ),
]


@pytest.mark.parametrize(("html", "expected"), [c[1:] for c in LINKS], ids=[c[0] for c in LINKS])
def test_links(html: str, expected: list[tuple[str, str, bool]]) -> None:
    assert list(parse_html(html, URL).links) == expected


def test_links_are_canonical_and_fragment_free() -> None:
    html = "".join(f"<a href='{c[1]}'>x</a>" for c in LINKS)  # junk in, still canonical out
    html += "".join(case[1] for case in LINKS)
    for url, _text, _nofollow in parse_html(html, URL).links:
        assert "#" not in url
        assert urls.canonicalize(url) == url


def test_anchor_text_is_capped() -> None:
    (link,) = parse_html(f"<a href=/a>{'word ' * 1000}</a>", URL).links
    assert MAX_ANCHOR_CHARS - 5 <= len(link[1]) <= MAX_ANCHOR_CHARS
    assert link[1].startswith("word word")
    assert link[1] == link[1].strip()


def test_text_is_capped() -> None:
    page = parse_html("<p>" + "abcd " * (MAX_TEXT_CHARS // 2), URL)
    assert len(page.text) <= MAX_TEXT_CHARS
    assert len(page.text) >= MAX_TEXT_CHARS - 5
    assert page.text == page.text.strip()


def _timed(html: str, url: str = URL) -> tuple[Page, float]:
    start = time.perf_counter()
    page = parse_html(html, url)
    return page, time.perf_counter() - start


def test_link_count_is_capped_keeping_the_first() -> None:
    html = "<body>" + "".join(f"<a href='/p{i}'>{i}</a>" for i in range(100_000))
    page, seconds = _timed(html)
    assert len(page.links) == MAX_LINKS
    assert page.links[0] == ("https://www.example.com/p0", "0", False)
    assert page.links[-1][0] == f"https://www.example.com/p{MAX_LINKS - 1}"
    assert seconds < 5


def test_link_cap_counts_kept_links_only() -> None:
    html = "<a href='mailto:x@y'>m</a>" * 3000 + "<a href=/ok>ok</a>" * (MAX_LINKS + 10)
    page = parse_html(html, URL)
    assert len(page.links) == MAX_LINKS
    assert {link[0] for link in page.links} == {"https://www.example.com/ok"}


@pytest.mark.parametrize("tag", ["div", "span", "b", "table", "ul", "a href=x"])
def test_deep_nesting_finishes(tag: str) -> None:
    name = tag.split()[0]
    html = f"<{tag}>" * 10_000 + "<a href='/deep'>deep</a>" + f"</{name}>" * 10_000
    page, seconds = _timed(html)
    found = {url for url, _text, _nofollow in page.links}
    # Walked to the bottom (with nested anchors, the cap keeps the outer ones).
    assert "https://www.example.com/deep" in found or found == {"https://www.example.com/dir/x"}
    assert seconds < 5


def _garbage() -> list[tuple[str, str]]:
    rng = random.Random(9309)
    raw = bytes(rng.randrange(256) for _ in range(200_000))
    tags = [
        "<a href='",
        "<div",
        ">",
        "</",
        "<!--",
        "-->",
        "<script>",
        "<title>",
        "&amp",
        "\x00",
        "<base href=",
        '"',
        "'",
        "<meta name=robots content=",
        "<![CDATA[",
        "<svg>",
        "\n",
    ]
    soup = "".join(rng.choice(tags) + chr(rng.randrange(0x20, 0x3000)) for _ in range(50_000))
    return [
        ("latin-1 bytes", raw.decode("latin-1")),
        ("utf-8 replace", raw.decode("utf-8", "replace")),
        ("surrogateescape", raw.decode("utf-8", "surrogateescape")),
        ("tag soup", soup),
        (
            "lone surrogates",
            "<title>a\ud800</title><a href='/x\udc00'>\udfff</a><base href='\ud800'>",
        ),
        ("nul bytes", "\x00<a href='\x00/a'>\x00</a><title>\x00</title>"),
        ("unclosed everything", "<a href='/x" + "y" * 100_000),
        ("comment only", "<!--" + "x" * 100_000),
        ("xml", "<?xml version='1.0'?><rss><channel><link>http://a/</link></channel></rss>"),
        ("only whitespace", " \n\t" * 10_000),
    ]


@pytest.mark.parametrize(("html"), [g[1] for g in _garbage()], ids=[g[0] for g in _garbage()])
def test_garbage_never_raises(html: str) -> None:
    page, seconds = _timed(html)
    assert seconds < 5
    for url, text, nofollow in page.links:
        assert urls.canonicalize(url) == url
        assert isinstance(text, str) and isinstance(nofollow, bool)


@pytest.mark.parametrize("page_url", ["not a url", "", "mailto:a@b.c"])
def test_odd_page_url_never_raises(page_url: str) -> None:
    page = parse_html('<a href="/a">A</a><a href="https://h.example/">H</a>', page_url)
    assert page.links in ((), (("https://h.example/", "H", False),))


@pytest.mark.parametrize("alphabet", ["ascii", "unicode"])
def test_page_text_is_collapsed_as_str_split_collapses_it(alphabet: str) -> None:
    """The fast path for ASCII text gives exactly `" ".join(text.split())`."""
    from crawler.parse import _collapse_long

    blanks = [" ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f"]
    words = ["a", "bc", "def", ".", "x\x00y", "  a  "]
    if alphabet == "unicode":
        blanks += ["\xa0", "\u2003", "\u3000", "\x85"]
        words += ["é", "\u2019s", "\U0001f600"]
    rng = random.Random(7)
    for _ in range(2_000):
        text = "".join(rng.choice(blanks if rng.random() < 0.5 else words) for _ in range(30))
        assert _collapse_long(text) == " ".join(text.split()), repr(text)


def _inner_text(node: LexborNode) -> str:
    """A slow reference of the page text: a walk of the tree in which inline elements add
    nothing, other elements a space on either side, and what is not rendered is left out."""
    parts: list[str] = []
    for child in node.iter(include_text=True):
        if child.tag == "-text":
            parts.append(child.text(deep=False))
        elif child.tag in ("script", "style", "template", "noscript", "title"):
            continue
        elif child.tag in ("a", "b", "i", "em", "span", "img"):  # the inline tags used below
            parts.append(_inner_text(child))
        else:
            parts.append(f" {_inner_text(child)} ")
    return "".join(parts)


@pytest.mark.parametrize("alphabet", ["ascii", "unicode"])
def test_page_text_is_the_inner_text_with_whitespace_collapsed(alphabet: str) -> None:
    """The page text is the walk of `_inner_text`, whitespace collapsed, on random markup."""
    blanks = [" ", "\n  ", "\t", "\r\n", "\x0c", "\x0b", "\x1f"]
    words = ["a", "bc", "<b>d</b>", "<i> e </i>", "<p>f</p>", "<span>\n</span>", "<br>"]
    words += ["<a href=/x>g</a>", "<div>", "</div>", "<em>", "</em>", "<img src=i>", "<li>h"]
    if alphabet == "unicode":
        blanks += ["\xa0", "\u2003", "&nbsp;", "&#x3000;"]
        words += ["é", "<b>\xa0</b>", "<i>\u2003x\u2003</i>"]
    rng = random.Random(11)
    for _ in range(500):
        body = "".join(rng.choice(blanks if rng.random() < 0.5 else words) for _ in range(40))
        tree = LexborHTMLParser(f"<html><body>{body}</body></html>")
        assert tree.body is not None
        expected = " ".join(_inner_text(tree.body).split())
        assert parse_html(f"<html><body>{body}</body></html>", "https://h.example/").text == (
            expected
        ), repr(body)
