"""SQL text helpers for tests and benchmarks that run the crawler's statements on asyncpg."""

from __future__ import annotations

import re


def positional(sql: str) -> tuple[str, list[str]]:
    """The statement with $n placeholders for asyncpg, and the parameter names in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return re.sub(r"(?<!:):([a-z_0-9]+)", number, sql), names


def plain_url(url: str) -> str:
    """asyncpg.connect wants postgresql://, not SQLAlchemy's postgresql+asyncpg://."""
    return url.replace("postgresql+asyncpg://", "postgresql://")
