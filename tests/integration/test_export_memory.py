"""An export's memory is bounded by bytes, not rows (issue 21, point 13): large pages come a few
at a time, and `crawler export` does not import the crawl machinery."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from typing import Any

import asyncpg
import asyncpg.cursor
import pytest

from crawler import export
from crawler.db import reports
from crawler.db.database import Database
from tests.speed import FAST_ENV

pytestmark = pytest.mark.db

PAGES = 120
TEXT_BYTES = 100_000
FILL = [
    "INSERT INTO crawls (name, seeds) VALUES ('big', ARRAY['https://big.example/'])",
    """INSERT INTO crawl_runs (crawl_id, status, finished_at)
       SELECT id, 'finished', now() FROM crawls WHERE name = 'big'""",
    f"""INSERT INTO pages (crawl_id, url, final_url, status, text, depth, last_run_id)
       SELECT c.id, 'https://big.example/' || i, 'https://big.example/' || i, 200,
              repeat(md5(i::text), {TEXT_BYTES} / 32), 1, r.id
       FROM crawls c JOIN crawl_runs r ON r.crawl_id = c.id, generate_series(1, {PAGES}) AS i""",
]


async def _fill(db_url: str) -> None:
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for sql in FILL:
            await conn.execute(sql)
    finally:
        await conn.close()


async def test_large_pages_are_fetched_a_few_at_a_time(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _fill(db_url)
    asked: list[int] = []
    fetch = asyncpg.cursor.Cursor.fetch

    async def counting_fetch(self: Any, n: int, **kwargs: Any) -> Any:
        asked.append(n)
        return await fetch(self, n, **kwargs)

    monkeypatch.setattr(asyncpg.cursor.Cursor, "fetch", counting_fetch)
    db = Database(db_url)
    try:
        out = io.BytesIO()
        rows = reports.export_rows(db, "pages", "big", batch=1000, batch_bytes=1_000_000)
        count = await export.write("jsonl", rows, out, reports.columns("pages"))
    finally:
        await db.dispose()
    assert count == PAGES
    assert len(out.getvalue().splitlines()) == PAGES
    # At about 100 KB a row, 1 MB is about 10 rows; the driver adapter's first read of a
    # cursor is 50 rows. Never the 1000 rows of --batch.
    assert asked and max(asked) <= 50, asked
    assert len(asked) > 2, asked


async def test_export_does_not_import_the_crawl_machinery(db_url: str, tmp_path: Any) -> None:
    """A read command needs no aiohttp, selectolax or Alembic (their import is most of a
    bare command's memory)."""
    await _fill(db_url)
    probe = (
        "import sys\n"
        "from crawler.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('aiohttp', 'selectolax', 'alembic', 'crawler.run', 'crawler.fetch')\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)), file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")} | FAST_ENV
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import json\n" + probe,
        "export",
        "--name",
        "big",
        "--format",
        "csv",
        "--out",
        str(tmp_path / "pages.csv"),
        "--database-url",
        db_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    _out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert json.loads(err.decode().strip().splitlines()[-1]) == [], err.decode()
    assert (tmp_path / "pages.csv").read_text().count("\n") == PAGES + 1
