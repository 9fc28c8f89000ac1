"""The report page from records (crawler.report): self-contained, every chart drawn, tables
capped with their query, a crawled site's text escaped; and the one-line answer when the
report extra is missing."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime

import pytest

from crawler.cli import main
from crawler.db.report_queries import _nice_width
from crawler.errors import ConfigError
from crawler.report import INSTALL_HINT, require
from crawler.report.charts import CHARTS
from crawler.report.data import Count, Histogram, ReportData, RunOutcomes, Summary, Table
from crawler.report.render import render

T0 = datetime(2026, 12, 1, 2, 15, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script>'


def _data(*, empty: bool = False, rows: int = 3, total: int = 3) -> ReportData:
    summary = Summary(
        crawl="example.com",
        crawl_id=1,
        run_id=7,
        status="finished",
        started_at=T0,
        finished_at=T0.replace(minute=45),
        duration_s=1800.0,
        fetches=52_000,
        pages=50_000,
        errors=2_000,
        bytes=1_500_000_000,
        current_pages=50_100,
        runs=7,
        seeds=("https://example.com/",),
        settings={"concurrency": 32, "include": ["/blog/"], "user_agent": HOSTILE},
    )
    table = Table(
        key="broken_links",
        title="Broken links",
        columns=("source", "target", "status", "anchor", "links"),
        rows=tuple(
            (f"https://example.com/{i}", "https://example.com/gone", "404", HOSTILE, 1)
            for i in range(rows)
        ),
        total=total,
        query="SELECT * FROM broken_links WHERE crawl_id = 1",
    )
    if empty:
        return ReportData(summary, T0, (), Histogram(10, (0,) * 30, 0), (), (), (), (), (table,))
    return ReportData(
        summary=summary,
        generated_at=T0,
        statuses=(Count("200", 50_000), Count("404", 1_500), Count("none", 500)),
        response_times=Histogram(width=20, counts=tuple(range(30)), over=12),
        depths=tuple(Count(str(d), 10 * d + 1) for d in range(6)),
        content_types=(Count("text/html", 50_000), Count("image/png", 2_000)),
        error_kinds=(Count("http_status", 1_500), Count("timeout", 500)),
        runs=tuple(RunOutcomes(i, T0, 100 * i, 10, 1000, i) for i in range(1, 8)),
        tables=(table,),
    )


def _svgs(html: str) -> dict[str, str]:
    found = re.findall(r'<figure class="chart" id="chart-(\w+)">(.*?)</figure>', html, re.S)
    return dict(found)


def test_the_page_is_self_contained_and_scriptless() -> None:
    html = render(_data())
    assert html.startswith("<!doctype html>")
    assert "<script" not in html.replace("&lt;script", "")
    assert not re.search(
        r"""(src|href)=["']?(https?:)?//""", html.replace("https://example.com/", "")
    )
    assert "<link" not in html and "@import" not in html
    assert not re.search(r"url\((?!#)", html)  # only references inside an SVG
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html


def test_every_chart_is_drawn_as_inline_svg() -> None:
    svgs = _svgs(render(_data()))
    assert list(svgs) == [key for key, _, _ in CHARTS]
    for key, markup in svgs.items():
        assert "<svg" in markup and "<path" in markup, key
        assert "@font-face" not in markup, key  # text stays text: no embedded font
    # Ids are salted by chart, so inline SVGs never share one.
    ids = re.findall(r'\bid="([^"]+)"', "".join(svgs.values()))
    assert len(ids) == len(set(ids))


def test_empty_charts_say_so() -> None:
    svgs = _svgs(render(_data(empty=True)))
    assert "no errors in this run" in svgs["error_kinds"]
    assert "no runs" in svgs["runs"]


def test_a_table_shows_its_rows_total_and_query() -> None:
    capped = render(_data(rows=100, total=250))
    assert "The first 100\n    of 250; all of them:" in capped
    assert "SELECT * FROM broken_links WHERE crawl_id = 1" in capped
    whole = render(_data(rows=3, total=3))
    assert "All 3, from:" in whole


def test_what_a_site_chose_is_escaped() -> None:
    html = render(_data())
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_the_same_data_gives_the_same_page() -> None:
    assert render(_data()) == render(_data())


@pytest.mark.parametrize(
    ("top", "width"), [(30, 1), (31, 2), (59, 2), (61, 5), (150, 5), (151, 10), (2_000, 100)]
)
def test_histogram_bins_have_round_widths(top: int, width: int) -> None:
    assert _nice_width(top, 30) == width


def test_without_the_report_extra_one_line_and_exit_2(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    with pytest.raises(ConfigError, match=re.escape(INSTALL_HINT)):
        require()
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--out", str(tmp_path / "r.html")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == f"crawler: {INSTALL_HINT}\n"
    assert not (tmp_path / "r.html").exists()
