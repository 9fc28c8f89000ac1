"""How `crawler sql` shows a value (crawler.cells): as psql --csv does, but friendlier for
machines (issue 21, point 6). Table-driven: value, PostgreSQL type name, cell text, JSON."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest

from crawler import cells

CASES: dict[str, tuple[Any, str, str, Any]] = {
    "null": (None, "text", "", None),
    "text": ("héllo", "text", "héllo", "héllo"),
    "int": (42, "int8", "42", 42),
    "float": (1.5, "float8", "1.5", 1.5),
    "true": (True, "bool", "true", True),
    "false": (False, "bool", "false", False),
    "jsonb object, as the server's text": ('{"a": 1}', "jsonb", '{"a": 1}', {"a": 1}),
    "jsonb string": ('"x"', "jsonb", '"x"', "x"),
    "jsonb decoded by a driver": ({"a": [1, None]}, "jsonb", '{"a": [1, null]}', {"a": [1, None]}),
    "text array": (["x", "y"], "_text", '["x", "y"]', ["x", "y"]),
    "bool array": ([True, None], "_bool", "[true, null]", [True, None]),
    "timestamp array": (
        [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)],
        "_timestamptz",
        '["2026-01-02T03:04:05+00:00"]',
        ["2026-01-02T03:04:05+00:00"],
    ),
    "timestamptz": (
        datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=UTC),
        "timestamptz",
        "2026-01-02T03:04:05.500000+00:00",
        "2026-01-02T03:04:05.500000+00:00",
    ),
    "date": (date(2026, 1, 2), "date", "2026-01-02", "2026-01-02"),
    "time": (time(3, 4, 5), "time", "03:04:05", "03:04:05"),
    "interval as the server's text": (
        "1 mon 02:00:00",
        "interval",
        "1 mon 02:00:00",
        "1 mon 02:00:00",
    ),
    "interval as a timedelta": (timedelta(days=1), "interval", "1 day", "1 day"),
    "interval with a clock": (
        timedelta(days=2, hours=3, seconds=1.5),
        "interval",
        "2 days 03:00:01.5",
        "2 days 03:00:01.5",
    ),
    "negative interval": (timedelta(minutes=-90), "interval", "-01:30:00", "-01:30:00"),
    "bytea": (b"\x01\xff", "bytea", "\\x01ff", "\\x01ff"),
    "numeric": (Decimal("1.50"), "numeric", "1.50", 1.5),
    "whole numeric": (Decimal("12"), "numeric", "12", 12),
    "uuid": (
        uuid.UUID(int=1),
        "uuid",
        "00000000-0000-0000-0000-000000000001",
        "00000000-0000-0000-0000-000000000001",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_cell_text_and_json_value(case: tuple[Any, str, str, Any]) -> None:
    value, type_name, shown, as_json = case
    assert cells.text(value, type_name) == shown
    assert cells.json_value(value, type_name) == as_json


@pytest.mark.parametrize("value", [{"a": 1}, ["x"], True, timedelta(days=1), b"\x01"])
def test_no_python_repr_reaches_a_cell(value: Any) -> None:
    assert cells.text(value, "") not in (repr(value), str(value))
