"""`crawler sql` and the commands that open an existing crawl database, as a user runs them:
subprocesses of `python -m crawler` on a migrated test database (issue 21, points 5 and 6).

- `crawler sql` is read-only unless `--write`; a write prints its row count.
- A damaged schema (a table dropped by hand) is one line and exit 3, for crawl, export and
  `db upgrade` alike.
- Values print as psql prints them, in a table sized to the terminal, as CSV and as JSON Lines.
- Read commands refuse a data dir that holds no database, and say how to make repeats fast.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from tests.speed import FAST_ENV

CHILD_TIMEOUT = 60.0
VALUES = (
    'SELECT 1 AS n, \'{"a": 1, "b": [true, null]}\'::jsonb AS doc, \'"x"\'::jsonb AS js,'
    " ARRAY['x', 'y'] AS arr, true AS yes, false AS no, interval '1 day' AS day,"
    " interval '1 mon 2 hours' AS mixed, '\\x01ff'::bytea AS raw,"
    " timestamptz '2026-01-02 03:04:05.5+00' AS at, date '2026-01-02' AS d, NULL AS nothing"
)


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


async def cli(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Done:
    """Run `python -m crawler ARGS` without CRAWLER_* from our environment."""
    child = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")} | FAST_ENV
    child.pop("COLUMNS", None)
    child.update(env or {})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "crawler",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child,
        cwd=cwd,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), CHILD_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Done(process.returncode, out.decode(), err.decode())


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _scalar(db_url: str, sql: str) -> object:
    conn = await asyncpg.connect(_plain(db_url))
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def _one_line(done: Done) -> None:
    assert "Traceback" not in done.err, str(done)
    assert len(done.err.strip().splitlines()) == 1, str(done)


# -- point 5: read-only unless --write; row counts; a damaged schema --------------------------


@pytest.mark.db
async def test_sql_is_read_only_unless_write(db_url: str, tmp_path: Path) -> None:
    dropped = await cli("sql", "DROP TABLE pages CASCADE", "--database-url", db_url, cwd=tmp_path)
    assert dropped.code == 2, str(dropped)
    _one_line(dropped)
    assert "read-only" in dropped.err and "--write" in dropped.err, str(dropped)
    assert await _scalar(db_url, "SELECT to_regclass('pages') IS NOT NULL") is True

    updated = await cli(
        "sql", "UPDATE crawls SET name = name", "--database-url", db_url, cwd=tmp_path
    )
    assert updated.code == 2, str(updated)

    created = await cli(
        "sql", "--write", "CREATE TABLE notes (n int)", "--database-url", db_url, cwd=tmp_path
    )
    assert created.code == 0, str(created)
    assert created.out.strip() == "CREATE TABLE", str(created)
    inserted = await cli(
        "sql",
        "--write",
        "INSERT INTO notes SELECT generate_series(1, 3)",
        "--database-url",
        db_url,
        cwd=tmp_path,
    )
    assert inserted.out.strip() == "INSERT 0 3", str(inserted)
    changed = await cli(
        "sql", "--write", "UPDATE notes SET n = n + 1", "--database-url", db_url, cwd=tmp_path
    )
    assert changed.code == 0, str(changed)
    assert changed.out.strip() == "UPDATE 3", str(changed)
    # With --csv the data alone goes to stdout, the command tag to stderr.
    returning = await cli(
        "sql",
        "--write",
        "--csv",
        "UPDATE notes SET n = n + 1 RETURNING n",
        "--database-url",
        db_url,
        cwd=tmp_path,
    )
    assert returning.out == "n\n3\n4\n5\n", str(returning)
    assert returning.err.strip() == "UPDATE 3", str(returning)

    several = await cli("sql", "SELECT 1; SELECT 2", "--database-url", db_url, cwd=tmp_path)
    assert several.code == 2, str(several)
    _one_line(several)


@pytest.mark.db
async def test_a_damaged_schema_is_one_line_and_exit_3(db_url: str, tmp_path: Path) -> None:
    dropped = await cli(
        "sql", "--write", "DROP TABLE pages CASCADE", "--database-url", db_url, cwd=tmp_path
    )
    assert dropped.code == 0, str(dropped)
    for args in (
        ("crawl", "http://127.0.0.1:9/", "--max-pages", "1"),
        ("export", "--format", "jsonl"),
        ("runs",),
        ("db", "upgrade"),
    ):
        done = await cli(*args, "--database-url", db_url, cwd=tmp_path)
        assert done.code == 3, f"{args}: {done}"
        _one_line(done)
        assert "damaged" in done.err and "table pages" in done.err, f"{args}: {done}"
        assert "current" not in done.err and "latest schema" not in done.err, str(done)
    # crawler sql still works on it: to look at the damage, and to repair it.
    looked = await cli(
        "sql", "--csv", "SELECT count(*) AS n FROM crawls", "--database-url", db_url, cwd=tmp_path
    )
    assert looked.code == 0 and looked.out == "n\n0\n", str(looked)


# -- point 6: values, width, --json ------------------------------------------------------------


@pytest.mark.db
async def test_values_print_as_psql_prints_them(db_url: str, tmp_path: Path) -> None:
    as_csv = await cli("sql", "--csv", VALUES, "--database-url", db_url, cwd=tmp_path)
    assert as_csv.code == 0, str(as_csv)
    header, row = list(csv.reader(io.StringIO(as_csv.out)))
    cells = dict(zip(header, row, strict=True))
    assert cells == {
        "n": "1",
        "doc": '{"a": 1, "b": [true, null]}',
        "js": '"x"',
        "arr": '["x", "y"]',
        "yes": "true",
        "no": "false",
        "day": "1 day",
        "mixed": "1 mon 02:00:00",
        "raw": "\\x01ff",
        "at": "2026-01-02T03:04:05.500000+00:00",
        "d": "2026-01-02",
        "nothing": "",
    }

    as_json = await cli("sql", "--json", VALUES, "--database-url", db_url, cwd=tmp_path)
    assert as_json.code == 0, str(as_json)
    lines = as_json.out.splitlines()
    assert len(lines) == 1, str(as_json)
    assert json.loads(lines[0]) == {
        "n": 1,
        "doc": {"a": 1, "b": [True, None]},
        "js": "x",
        "arr": ["x", "y"],
        "yes": True,
        "no": False,
        "day": "1 day",
        "mixed": "1 mon 02:00:00",
        "raw": "\\x01ff",
        "at": "2026-01-02T03:04:05.500000+00:00",
        "d": "2026-01-02",
        "nothing": None,
    }
    two = await cli(
        "sql", "--json", "SELECT generate_series(1, 2) AS n", "--database-url", db_url, cwd=tmp_path
    )
    assert [json.loads(line) for line in two.out.splitlines()] == [{"n": 1}, {"n": 2}]

    table = await cli("sql", VALUES, "--database-url", db_url, cwd=tmp_path)
    assert table.code == 0, str(table)
    for shown in ('{"a": 1, "b": [true, null]}', '["x", "y"]', "true", "1 mon 02:00:00"):
        assert shown in table.out, str(table)
    for python_repr in ("{'a'", "['x'", "True", "b'\\x01", "1 day, 0:00:00", "datetime"):
        assert python_repr not in table.out, str(table)
    assert "(1 row)" in table.out


@pytest.mark.db
async def test_the_table_takes_the_terminal_width(db_url: str, tmp_path: Path) -> None:
    query = "SELECT repeat('x', 150) AS long, 1 AS n"
    wide = await cli("sql", query, "--database-url", db_url, env={"COLUMNS": "200"}, cwd=tmp_path)
    assert wide.code == 0, str(wide)
    assert "x" * 150 in wide.out, str(wide)
    assert max(len(line) for line in wide.out.splitlines()) <= 200
    narrow = await cli("sql", query, "--database-url", db_url, env={"COLUMNS": "60"}, cwd=tmp_path)
    assert max(len(line) for line in narrow.out.splitlines()) <= 60, str(narrow)
    # Into a pipe with no COLUMNS, nothing is cut: the table is as wide as its values.
    piped = await cli("sql", query, "--database-url", db_url, cwd=tmp_path)
    assert "x" * 150 in piped.out, str(piped)


# -- a data dir without a database ------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("sql", "select 1"),
        ("runs",),
        ("changes",),
        ("export", "--format", "csv"),
        ("reparse", "--name", "x"),
        ("psql",),
        ("search", "x"),
        ("db", "index"),
    ],
    ids=lambda args: " ".join(args[:2]) if args[0] == "db" else args[0],
)
async def test_read_commands_refuse_a_data_dir_without_a_database(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    typo = tmp_path / "crawler-dta"
    done = await cli(*args, "--data-dir", str(typo), cwd=tmp_path)
    assert done.code == 2, str(done)
    _one_line(done)
    assert str(typo) in done.err and "no crawl database" in done.err, str(done)
    assert not typo.exists(), "a mistyped --data-dir was created"
