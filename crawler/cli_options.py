"""Options shared by the commands of the `crawler` CLI, and Settings built from them."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from crawler.config import Settings
from crawler.config_sources import load_settings, unknown_environment
from crawler.errors import ConfigError

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

    A CRAWLER_* variable that is no setting (a typo, mostly) gets a warning on stderr. The
    config file's extraction rules are checked here (a bad CSS selector is named with its file,
    exit 2 before any work)."""
    for name, close in unknown_environment(os.environ):
        hint = f" (did you mean {close}?)" if close else ""
        print(f"crawler: warning: ignoring {name}: not a setting{hint}", file=sys.stderr)
    settings = load_settings(flags, environ=os.environ, config_file=config)
    if settings.extract:  # rules come only from a config file: name it, as for its other keys
        from crawler.extract import compile_rules

        try:
            compile_rules(settings.extract)
        except ConfigError as exc:
            source = config or os.environ.get("CRAWLER_CONFIG")
            raise ConfigError(f"config file {source}: {exc}") from None
    return settings


def exit_with(code: int) -> None:
    """End the command with `code` (typer ignores a command's return value)."""
    if code:
        raise typer.Exit(code)
