"""How a value read from PostgreSQL is shown by `crawler sql`: as the text of a table or CSV
cell, or as a JSON value (JSON Lines).

The rules follow what `psql --csv` prints, made friendlier for machines: null is an empty
cell (JSON null); jsonb and json are JSON text; arrays are JSON arrays; booleans are `true` /
`false`; timestamps, dates and times are ISO 8601; bytea is `\\x` and hex digits. Intervals
arrive as PostgreSQL's own text (the db layer reads them so, as asyncpg's timedelta would
lose months), and everything else (numbers, numeric, uuid, inet, text) is its `str()`.
Pure functions: no I/O.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

JSON_TYPES = frozenset({"json", "jsonb"})


def _interval_text(value: timedelta) -> str:
    """PostgreSQL's text of an interval that arrived as a timedelta (days, then H:MM:SS)."""
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}"
    if value.microseconds:
        clock += f".{value.microseconds:06d}".rstrip("0")
    if not value.days:
        return clock
    days = f"{sign}{value.days} day{'s' if value.days != 1 else ''}"
    return days if clock.lstrip("-") == "00:00:00" else f"{days} {clock}"


def plain(value: Any) -> Any:
    """The value with every non-JSON scalar turned into its text; containers kept."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return _interval_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def to_json(value: Any) -> str:
    """One value as compact JSON text (non-ASCII kept)."""
    return json.dumps(plain(value), ensure_ascii=False)


def json_value(value: Any, type_name: str) -> Any:
    """The value as it goes into a JSON Lines object (a JSON column stays a JSON value)."""
    if type_name in JSON_TYPES and isinstance(value, str):
        return json.loads(value)
    if isinstance(value, Decimal) and value.is_finite():
        return int(value) if value == value.to_integral_value() else float(value)
    return plain(value)


def text(value: Any, type_name: str = "") -> str:
    """The value as the text of a table or CSV cell."""
    if value is None:
        return ""
    if type_name in JSON_TYPES:
        return value if isinstance(value, str) else to_json(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list | tuple):
        return to_json(value)
    result = plain(value)
    return result if isinstance(result, str) else str(result)
