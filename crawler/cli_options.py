"""Options shared by the commands of the `crawler` CLI, and Settings built from them."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from crawler.config import Settings, load_settings, unknown_environment

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="TOML config file (env CRAWLER_CONFIG).")
]
DatabaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="PostgreSQL URL (env CRAWLER_DATABASE_URL); default: the embedded server.",
    ),
]
DataDirOpt = Annotated[
    str | None,
    typer.Option("--data-dir", help="Embedded PostgreSQL's folder (env CRAWLER_DATA_DIR)."),
]


def settings_from(config: Path | None, **flags: Any) -> Settings:
    """Settings from flags (None: not given) over the environment over the config file.

    A CRAWLER_* variable that is no setting (a typo, mostly) gets a warning on stderr."""
    for name, close in unknown_environment(os.environ):
        hint = f" (did you mean {close}?)" if close else ""
        print(f"crawler: warning: ignoring {name}: not a setting{hint}", file=sys.stderr)
    return load_settings(flags, environ=os.environ, config_file=config)


def exit_with(code: int) -> None:
    """End the command with `code` (typer ignores a command's return value)."""
    if code:
        raise typer.Exit(code)
