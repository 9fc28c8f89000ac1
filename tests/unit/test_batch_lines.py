"""crawler.db.batch: a page's links travel to the server as newline-separated strings."""

from __future__ import annotations

from crawler.db.batch import BatchParams, _lines
from crawler.records import CrawlTask, FetchResult, Page, PageRecord


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
