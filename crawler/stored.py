"""A crawl's stored settings: which settings were given now, and a later run's settings with
the stored ones in place of the defaults.

`crawls.config` holds `Settings.to_json()` (every setting but those in `NOT_STORED`). A resumed
or repeated run takes it where the defaults would be; what is given now (a flag, the
environment, a config file) wins, and `with_stored` says which stored values it changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from crawler.config import (
    _FIELDS,
    _NOT_IN_ENV,
    _TUPLE_KEYS,
    ENV_PREFIX,
    ExtractRule,
    Settings,
    _coerce,
    _flag,
)
from crawler.config_sources import env_name, file_key, read_config_file
from crawler.errors import ConfigError


def given_settings(
    flags: Mapping[str, Any],
    *,
    environ: Mapping[str, str] = MappingProxyType({}),
    config_file: Path | None = None,
) -> dict[str, str]:
    """The settings given explicitly (a flag, the environment, a config file): the ones that
    win over a crawl's stored settings, each with where its value came from, named as config
    errors name it (`--delay`, `CRAWLER_DELAY`, `config file F: delay`). Call it after
    load_settings checked the same input."""
    given: dict[str, str] = {}
    if config_file is None and environ.get(ENV_PREFIX + "CONFIG"):
        config_file = Path(environ[ENV_PREFIX + "CONFIG"])
    if config_file is not None:
        given.update({key: file_key(config_file, key) for key in read_config_file(config_file)})
    given.update(
        {
            key: env_name(key)
            for key in _FIELDS
            if key not in _NOT_IN_ENV and env_name(key) in environ
        }
    )
    given.update(
        {
            key: _flag(key)
            for key, value in flags.items()
            if value is not None and not (key in _TUPLE_KEYS and value == ())
        }
    )
    return given


def with_stored(
    settings: Settings, stored: Mapping[str, Any], given: Collection[str]
) -> tuple[Settings, dict[str, tuple[Any, Any]]]:
    """`settings` with a crawl's stored settings in place of the defaults: each stored
    setting not given explicitly now takes its stored value. Also returns the settings given
    now that differ from the stored ones, as {key: (stored, now)}."""
    restored: dict[str, Any] = {}
    changed: dict[str, tuple[Any, Any]] = {}
    current = settings.to_json()
    for key, value in stored.items():
        if key not in current or value is None:
            continue  # not a crawl setting (any more)
        if key == "extract":
            old: Any = _stored_rules(value)
        else:
            old = _coerce(key, value, "the crawl's stored settings")
        if key not in given:
            restored[key] = old
        elif old != getattr(settings, key):
            changed[key] = (old, getattr(settings, key))
    return dataclasses.replace(settings, **restored), changed


def _stored_rules(value: Any) -> tuple[ExtractRule, ...]:
    keys = {f.name for f in fields(ExtractRule)}
    try:
        return tuple(ExtractRule(**{k: v for k, v in rule.items() if k in keys}) for rule in value)
    except (TypeError, AttributeError):
        raise ConfigError("the crawl's stored settings: extract rules are not valid") from None


def describe_change(key: str, stored: Any, now: Any, source: str | None = None) -> str:
    """One changed setting for a person, named by `source`, where the new value came from
    (default: its flag): `--delay 0.2 -> 0.0`, `CRAWLER_DELAY 0.2 -> 0.0`."""

    def show(value: Any) -> str:
        if key == "extract":
            return ",".join(rule.name for rule in value) or "none"
        if isinstance(value, tuple):
            return ",".join(value) or "none"
        return str(value)

    return f"{source or _flag(key)} {show(stored)} -> {show(now)}"
