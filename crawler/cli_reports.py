"""Reporting commands of the `crawler` CLI: runs, changes, export (registered by cli.py)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the reporting commands to the app."""
