"""The report page: Jinja2 templates filled with a `ReportData` and its charts.

One HTML string comes out, with its style and charts inline and no script: it opens from
file:// with no network and prints as it shows. Autoescaping is on, so URLs, titles and
anchors a crawled site chose are text, never markup; only the charts' SVG, which matplotlib
wrote, goes in unescaped.
"""

from __future__ import annotations

import json
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from crawler import __version__
from crawler.report import charts
from crawler.report.data import TABLE_ROWS, ReportData


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def _setting(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f} s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("crawler.report", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["number"] = _number
    env.filters["setting"] = _setting
    env.filters["duration"] = _duration
    return env


def render(data: ReportData) -> str:
    """The report as one self-contained HTML document."""
    svgs = charts.draw(data)
    figures = [
        {
            "id": key,
            "title": title,
            "caption": caption,
            # Named by its heading for screen readers.
            "svg": Markup(
                svgs[key].replace(
                    "<svg ", f'<svg role="img" aria-labelledby="chart-title-{key}" ', 1
                )
            ),
        }
        for key, title, caption in charts.CHARTS
    ]
    template = _environment().get_template("report.html.j2")
    return template.render(
        data=data,
        summary=data.summary,
        figures=figures,
        table_rows=TABLE_ROWS,
        version=__version__,
    )
