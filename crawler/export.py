"""Streaming export: encodes rows as JSON Lines or CSV onto a binary stream as they arrive.

The rows come from the db layer (`crawler.db.reports.export_rows`) as plain dicts; nothing is
collected: encoded text is written out whenever about FLUSH_BYTES of it is waiting (or every
FLUSH_EVERY rows), so memory stays bounded however large the pages. Output is UTF-8 whatever
the locale. Timestamps are ISO 8601 strings. JSONB objects and arrays stay JSON values in
JSON Lines and are JSON text in a CSV cell; in CSV, null is an empty cell and booleans are
`true` / `false`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterable, Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, BinaryIO

from crawler.errors import ConfigError

FORMATS = ("jsonl", "csv")
FLUSH_EVERY = 500  # rows encoded between writes (and progress reports), at most
FLUSH_BYTES = 1 << 20  # characters of encoded text between writes, about

Progress = Callable[[int], None]


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    raise TypeError(f"cannot export a {type(value).__name__}")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _csv_cell(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int:  # most cells: as they are
        return value
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list | tuple):
        return _dumps(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return value


async def write_jsonl(
    rows: AsyncIterable[Mapping[str, Any]], out: BinaryIO, *, progress: Progress | None = None
) -> int:
    """Write one JSON object per line; return the number of rows."""
    count = 0
    chunk: list[str] = []
    waiting = 0
    async for row in rows:
        line = _dumps(row)
        chunk.append(line)
        waiting += len(line)
        count += 1
        if len(chunk) >= FLUSH_EVERY or waiting >= FLUSH_BYTES:
            out.write(("\n".join(chunk) + "\n").encode())
            chunk.clear()
            waiting = 0
            if progress is not None:
                progress(count)
    if chunk:
        out.write(("\n".join(chunk) + "\n").encode())
    out.flush()
    if progress is not None:
        progress(count)
    return count


async def write_csv(
    rows: AsyncIterable[Mapping[str, Any]],
    out: BinaryIO,
    columns: Sequence[str],
    *,
    progress: Progress | None = None,
) -> int:
    """Write a header of `columns`, then one line per row; return the number of rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    async for row in rows:
        writer.writerow([_csv_cell(row.get(column)) for column in columns])
        count += 1
        if count % FLUSH_EVERY == 0 or buffer.tell() >= FLUSH_BYTES:
            out.write(buffer.getvalue().encode())
            buffer.seek(0)
            buffer.truncate()
            if progress is not None:
                progress(count)
    out.write(buffer.getvalue().encode())
    out.flush()
    if progress is not None:
        progress(count)
    return count


async def write(
    fmt: str,
    rows: AsyncIterable[Mapping[str, Any]],
    out: BinaryIO,
    columns: Sequence[str],
    *,
    progress: Progress | None = None,
) -> int:
    """Write `rows` in `fmt` (jsonl or csv); return the number of rows."""
    if fmt == "jsonl":
        return await write_jsonl(rows, out, progress=progress)
    if fmt == "csv":
        return await write_csv(rows, out, columns, progress=progress)
    raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
