"""The report's charts: matplotlib figures saved as SVG, inlined into the page.

No pyplot (no global figure state, no GUI backend): each chart is a `Figure` saved by the
SVG backend. Text stays text (`svg.fonttype: none`), so no font is embedded and the page's
own font draws it; every id inside an SVG is prefixed with the chart's name, so several SVGs
in one page never share one, and hashed ids are salted with it, so the same data gives the
same page. An empty chart
says so in words rather than showing blank axes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from crawler.report.data import Count, Histogram, ReportData, RunOutcomes

SIZE = (6.4, 3.0)  # inches; the page scales the SVG to its column
INK = "#333333"
MUTED = "#888888"
BLUE = "#4c72b0"
OUTCOME_COLOURS = {
    "new": "#55a868",
    "changed": "#dd8452",
    "unchanged": "#8da0cb",
    "gone": "#c44e52",
}
STYLE: dict[str, Any] = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.edgecolor": MUTED,
    "axes.labelcolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "xtick.color": INK,
    "ytick.color": INK,
    "figure.dpi": 72,
}


def _status_colour(label: str) -> str:
    return {
        "2": "#55a868",
        "3": "#4c72b0",
        "4": "#dd8452",
        "5": "#c44e52",
    }.get(label[:1], "#999999")


def _svg(fig: Figure, name: str) -> str:
    out = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"crawler-report-{name}"}):
        fig.savefig(out, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = out.getvalue()
    # Drop the XML prolog and doctype: the <svg> element goes inline into HTML, where every
    # figure's "figure_1", "patch_1"... would clash: prefix each id and each reference to one.
    text = text[text.index("<svg") :]
    return _REFERENCE.sub(lambda m: f"{m[1]}{name}-{m[2]}", text)


# id="x", href="#x" (xlink:href too) and url(#x).
_REFERENCE = re.compile(r'(\bid="|href="#|url\(#)([^")]+)')


def _empty(fig: Figure, message: str) -> None:
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", color=MUTED, fontsize=11)


def _integer_axis(ax: Axes) -> None:
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _bars(counts: Sequence[Count], *, xlabel: str, colours: Sequence[str] | None = None) -> Figure:
    fig = Figure(figsize=SIZE)
    if not counts:
        _empty(fig, "nothing to show")
        return fig
    ax = fig.add_subplot()
    labels = [c.label for c in counts]
    bars = ax.bar(labels, [c.count for c in counts], color=list(colours or [BLUE] * len(counts)))
    ax.bar_label(bars, fontsize=8, color=INK)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fetches" if xlabel != "depth" else "pages")
    _integer_axis(ax)
    if len(labels) > 8:
        ax.tick_params(axis="x", labelrotation=45)
    return fig


def _horizontal(counts: Sequence[Count], *, xlabel: str, empty: str) -> Figure:
    fig = Figure(figsize=SIZE)
    if not counts:
        _empty(fig, empty)
        return fig
    ax = fig.add_subplot()
    ordered = list(reversed(counts))  # largest on top
    bars = ax.barh([c.label for c in ordered], [c.count for c in ordered], color=BLUE)
    ax.bar_label(bars, fontsize=8, color=INK, padding=2)
    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def status_chart(statuses: Sequence[Count]) -> Figure:
    return _bars(
        statuses, xlabel="HTTP status", colours=[_status_colour(c.label) for c in statuses]
    )


def response_time_chart(hist: Histogram) -> Figure:
    fig = Figure(figsize=SIZE)
    if not any(hist.counts) and not hist.over:
        _empty(fig, "no responses in this run")
        return fig
    ax = fig.add_subplot()
    lefts = [i * hist.width for i in range(len(hist.counts))]
    ax.bar(lefts, hist.counts, width=hist.width, align="edge", color=BLUE, edgecolor="white")
    if hist.over:
        edge = hist.width * len(hist.counts)
        ax.bar([edge], [hist.over], width=hist.width, align="edge", color="#c44e52")
        ax.annotate(
            f"≥ {edge} ms",
            (edge + hist.width / 2, hist.over),
            ha="center",
            va="bottom",
            fontsize=8,
            color=INK,
        )
    ax.set_xlabel("response time (ms)")
    ax.set_ylabel("fetches")
    _integer_axis(ax)
    return fig


def depth_chart(depths: Sequence[Count]) -> Figure:
    return _bars(depths, xlabel="depth")


def content_type_chart(types: Sequence[Count]) -> Figure:
    return _horizontal(types, xlabel="fetches", empty="no responses in this run")


def error_chart(kinds: Sequence[Count]) -> Figure:
    return _horizontal(kinds, xlabel="fetches", empty="no errors in this run")


def runs_chart(runs: Sequence[RunOutcomes]) -> Figure:
    fig = Figure(figsize=SIZE)
    if not runs:
        _empty(fig, "no runs")
        return fig
    ax = fig.add_subplot()
    labels = [f"{r.run_id}\n{r.started_at:%m-%d}" for r in runs]
    bottom = [0] * len(runs)
    for outcome, colour in OUTCOME_COLOURS.items():
        values = [getattr(r, outcome) for r in runs]
        ax.bar(labels, values, bottom=bottom, color=colour, label=outcome)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xlabel("run (id, start date)")
    ax.set_ylabel("pages")
    _integer_axis(ax)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
    return fig


# (id, title, caption) of each chart, in page order.
CHARTS: tuple[tuple[str, str, str], ...] = (
    ("statuses", "Status codes", "Fetches of this run by HTTP status (none: no response)."),
    ("response_times", "Response times", "Fetches of this run that got a response."),
    ("depths", "Depth", "The crawl's current pages by link distance from a seed."),
    ("content_types", "Content types", "Responses of this run by media type."),
    ("error_kinds", "Errors", "Failed fetches of this run by error_kind."),
    ("runs", "Runs", "Pages each run found new, changed, unchanged and gone (run_changes)."),
)


def draw(data: ReportData) -> dict[str, str]:
    """Every chart of the report, as inline SVG markup by chart id."""
    # The stubs want each key as a literal; STYLE is a plain dict of valid rc keys.
    with matplotlib.rc_context(STYLE):  # type: ignore[arg-type]
        figures = {
            "statuses": status_chart(data.statuses),
            "response_times": response_time_chart(data.response_times),
            "depths": depth_chart(data.depths),
            "content_types": content_type_chart(data.content_types),
            "error_kinds": error_chart(data.error_kinds),
            "runs": runs_chart(data.runs),
        }
        return {name: _svg(fig, name) for name, fig in figures.items()}
