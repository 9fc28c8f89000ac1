"""Maintenance commands of the `crawler` CLI: reparse (registered by cli.py)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the maintenance commands to the app."""
