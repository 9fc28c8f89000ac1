"""crawler.db.batch: one element a task in each array; a page's links as newline-separated
strings."""

from __future__ import annotations

from crawler.db.batch import BatchParams, _lines
from crawler.kinds import ErrorKind
from crawler.records import CrawlTask, FetchResult, Page, PageRecord
from crawler.render.contract import RenderedResult


def test_lines_match_the_values_one_to_one() -> None:
    assert _lines(("a", "", "c"), " ") == "a\n\nc"
    assert _lines(("",), " ") == ""  # the server pads the missing element: coalesce('')
    assert _lines(("two\nlines", "x"), " ") == "two lines\nx"
    assert _lines(("http://h/a\nb",), "%0A") == "http://h/a%0Ab"


def test_batch_params_hold_one_element_a_page() -> None:
    page = Page(title="t", links=(("http://h/a", "A\x00", False), ("http://h/b", "", True)))
    fetch = FetchResult("http://h/", "http://h/", 200, "text/html", (), b"<p>", "utf-8")
    params = BatchParams()
    params.add(PageRecord(CrawlTask(1, "http://h/", 0), fetch, page, "hash"))
    params.add(PageRecord(CrawlTask(2, "http://h/x", 0), fetch, Page(), "hash2"))
    values = params.params(crawl_id=1, run_id=1, owner="me")
    assert values["link_urls"] == ["http://h/a\nhttp://h/b", ""]
    assert values["link_texts"] == ["A\n", ""]
    assert values["link_nofollow"] == ["f\nt", ""]


def test_batch_params_put_each_value_in_its_column() -> None:
    """The rows are positional: every column of both kinds of row, by name."""
    page = Page(
        title="T",
        description="D",
        canonical="http://h/c",
        lang="en",
        h1="H",
        text="body\x00text",
        meta_robots="noindex",
        links=(("http://h/a", "A", False),),
        data={"k": 1},
    )
    headers = (("etag", '"e"'), ("last-modified", "Mon"))
    fetched = FetchResult("http://h/p", "http://h/q", 200, "text/html", headers, b"<p>", "utf-8", 7)
    moved = FetchResult("http://h/p", "http://h/p", 301, None, (), b"", None, 2, ("http://h/z",))
    failed = FetchResult(
        "http://h/f", "http://h/f", None, None, error_kind=ErrorKind.DNS, error="no\x00"
    )
    params = BatchParams()
    params.add(PageRecord(CrawlTask(1, "http://h/p", 2), fetched, page, "hash", ("http://h/a",), 3))
    params.add(PageRecord(CrawlTask(2, "http://h/p", 0), moved, None, None, not_modified=True))
    params.add(PageRecord(CrawlTask(3, "http://h/f", 1), failed, None, None))
    values = params.params(crawl_id=4, run_id=5, owner="me")
    assert values == {
        "crawl_id": 4,
        "run_id": 5,
        "owner": "me",
        "fid": [1, 2, 3],
        "kind": ["page", "not_modified", "fetch"],
        "url": ["http://h/p", "http://h/p", "http://h/f"],
        "final_url": ["http://h/q", "http://h/p", "http://h/f"],
        "status": [200, 301, None],
        "content_type": ["text/html", None, None],
        "bytes": [3, 0, 0],
        "elapsed_ms": [7, 2, 0],
        "redirects": ["[]", '["http://h/z"]', "[]"],
        "error_kind": [None, None, "dns"],
        "error": [None, None, "no"],
        "title": ["T", None, None],
        "description": ["D", None, None],
        "canonical": ["http://h/c", None, None],
        "lang": ["en", None, None],
        "h1": ["H", None, None],
        "text": ["bodytext", None, None],
        "meta_robots": ["noindex", None, None],
        "content_hash": ["hash", None, None],
        "etag": ['"e"', None, None],
        "last_modified": ["Mon", None, None],
        "depth": [2, 0, 1],
        "data": ['{"k": 1}', None, None],
        "body": [None, None, None],
        "link_urls": ["http://h/a", "", ""],
        "link_texts": ["A", "", ""],
        "link_nofollow": ["f", "", ""],
        "rendered": [False, False, False],
        "static_hash": [None, None, None],
        "static_body": [None, None, None],
        "enqueue_fid": [1],
        "enqueue_url": ["http://h/a"],
        "enqueue_depth": [3],
    }
    assert BatchParams().params(crawl_id=1, run_id=1, owner="me")["fid"] == []


def test_a_rendered_page_is_marked_rendered() -> None:
    """pages.rendered comes from the fetch: a browser's `RenderedResult`, or not."""
    rendered = RenderedResult(
        "http://h/", "http://h/", 200, "text/html", body=b"<p>dom", encoding="utf-8"
    )
    plain = FetchResult("http://h/s", "http://h/s", 200, "text/html", (), b"<p>", "utf-8")
    params = BatchParams()
    params.add(PageRecord(CrawlTask(1, "http://h/", 0), rendered, Page(), "h1"))
    params.add(PageRecord(CrawlTask(2, "http://h/s", 0), plain, Page(), "h2"))
    params.add(PageRecord(CrawlTask(3, "http://h/f", 0), rendered, None, None))
    assert params.params(crawl_id=1, run_id=1, owner="me")["rendered"] == [True, False, False]
