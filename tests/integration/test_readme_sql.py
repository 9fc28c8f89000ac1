"""Every SQL example of README.md runs against a crawled fixture site, so the docs stay true."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from crawler.run import crawl
from tests.site import serve_site
from tests.speed import fast_settings
from tests.sql import plain_url

README = Path(__file__).parents[2] / "README.md"
START, END = "<!-- sql-examples -->", "<!-- /sql-examples -->"
FENCE = re.compile(r"^```sql[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Example:
    title: str  # the prose line just above the block
    sql: str


def examples(text: str) -> list[Example]:
    """The ```sql blocks of `text`, each with the last line of prose above it."""
    found = []
    for match in FENCE.finditer(text):
        before = [line.strip() for line in text[: match.start()].splitlines() if line.strip()]
        prose = [line for line in before if not line.startswith(("```", "<!--"))]
        found.append(Example(prose[-1] if prose else "", match.group(1).strip()))
    return found


def sql_examples() -> list[Example]:
    text = README.read_text(encoding="utf-8")
    assert START in text and END in text, f"README.md lost its {START} … {END} markers"
    return examples(text[text.index(START) : text.index(END)])


Rows = list[asyncpg.Record]
Check = Callable[[Rows, str], None]


def _pages_per_status(rows: Rows, base: str) -> None:
    assert any(r["status"] == 200 for r in rows), rows


def _broken_links(rows: Rows, base: str) -> None:
    targets = {r["target_url"] for r in rows}
    assert base + "/missing.html" in targets, targets


def _without_title(rows: Rows, base: str) -> None:
    assert rows == [], "every page of the fixture site has a title"


def _most_linked(rows: Rows, base: str) -> None:
    assert rows
    assert rows[0]["inlinks"] >= rows[-1]["inlinks"]


def _largest(rows: Rows, base: str) -> None:
    assert rows
    assert rows[0]["bytes"] > 0


# The questions README must answer (issue "Core"), by a word of the prose above each block.
REQUIRED: dict[str, Check] = {
    "per status": _pages_per_status,
    "broken links": _broken_links,
    "without a title": _without_title,
    "most-linked": _most_linked,
    "largest": _largest,
}


def _check_for(title: str) -> Check | None:
    lowered = title.lower()
    for phrase, check in REQUIRED.items():
        if phrase in lowered:
            return check
    return None


async def _crawled_site(db_url: str) -> str:
    async with serve_site() as base:
        summary = await crawl(
            fast_settings({"seeds": (base + "/",), "database_url": db_url, "concurrency": 4})
        )
    assert summary.status == "finished"
    return base


async def _run_all(db_url: str, blocks: list[Example]) -> list[Rows]:
    results: list[Rows] = []
    failures = []
    conn = await asyncpg.connect(plain_url(db_url))
    try:
        for example in blocks:
            try:
                results.append(await conn.fetch(example.sql))
            except asyncpg.PostgresError as exc:
                results.append([])
                failures.append(f"{example.title!r}: {type(exc).__name__}: {exc}")
    finally:
        await conn.close()
    assert not failures, "README SQL that does not run:\n" + "\n".join(failures)
    return results


def test_the_examples_are_found() -> None:
    blocks = sql_examples()
    assert len(blocks) >= 5
    titles = [b.title.lower() for b in blocks]
    for phrase in REQUIRED:
        assert any(phrase in t for t in titles), f"README has no SQL example for {phrase!r}"
    assert all(b.sql for b in blocks)


@pytest.mark.db
async def test_every_readme_sql_example_runs_and_answers(db_url: str) -> None:
    base = await _crawled_site(db_url)
    blocks = sql_examples()
    results = await _run_all(db_url, blocks)
    for example, rows in zip(blocks, results, strict=True):
        check = _check_for(example.title)
        if check is not None:
            check(rows, base)
