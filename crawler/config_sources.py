"""Where settings come from: the TOML config file, the CRAWLER_* environment and the flags,
merged by `load_settings` (defaults < config file < environment < flags) into one Settings.

Each value is checked where it is read, and a problem names its real source: the config
file and key, the environment variable, or the flag.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from crawler.config import (
    _FIELDS,
    _NOT_IN_ENV,
    _TUPLE_KEYS,
    ENV_PREFIX,
    OTHER_VARIABLES,
    SettingError,
    Settings,
    _coerce,
    _extract_rules,
    _flag,
)
from crawler.errors import ConfigError


def read_config_file(path: Path) -> dict[str, Any]:
    """Read and check a TOML config file; unknown keys are mistakes, not silently ignored."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _FIELDS:
            raise ConfigError(f"config file {path}: unknown setting {key!r}")
        if key == "extract":
            out[key] = _extract_rules(value, f"config file {path}")
        else:
            out[key] = _coerce(key, value, file_key(path, key))
    return out


def file_key(path: Path, key: str) -> str:
    """A config file's key, as messages name it."""
    return f"config file {path}: {key}"


def env_name(key: str) -> str:
    """A setting's environment variable."""
    return ENV_PREFIX + key.upper()


def read_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _FIELDS:
        if key in _NOT_IN_ENV:
            continue
        value = environ.get(env_name(key))
        if value is not None:
            out[key] = _coerce(key, value, env_name(key))
    return out


def unknown_environment(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """The CRAWLER_* variables that are neither a setting nor documented otherwise (typos,
    mostly), each with the known name closest to it, if one is close."""
    import difflib

    known = {env_name(k) for k in _FIELDS if k not in _NOT_IN_ENV} | OTHER_VARIABLES
    suffixes = sorted(name.removeprefix(ENV_PREFIX) for name in known)
    found: list[tuple[str, str | None]] = []
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) and name not in known:
            suffix = name.removeprefix(ENV_PREFIX)
            close = difflib.get_close_matches(suffix, suffixes, n=1, cutoff=0.8)
            found.append((name, ENV_PREFIX + close[0] if close else None))
    return found


def load_settings(
    flags: Mapping[str, Any],
    *,
    environ: Mapping[str, str] = MappingProxyType({}),
    config_file: Path | None = None,
) -> Settings:
    """Build Settings: defaults < config file < environment < flags (None means 'not given')."""
    merged: dict[str, Any] = {}
    where: dict[str, str] = {}  # key -> the source of its value, for messages
    if config_file is None and environ.get(ENV_PREFIX + "CONFIG"):
        config_file = Path(environ[ENV_PREFIX + "CONFIG"])
    if config_file is not None:
        from_file = read_config_file(config_file)
        merged.update(from_file)
        where.update({key: file_key(config_file, key) for key in from_file})
    from_env = read_environment(environ)
    merged.update(from_env)
    where.update({key: env_name(key) for key in from_env})
    for key, value in flags.items():
        if key not in _FIELDS:
            raise ConfigError(f"unknown setting {key!r}")
        if value is None or (key in _TUPLE_KEYS and value == ()):
            continue
        merged[key] = _coerce(key, list(value) if key in _TUPLE_KEYS else value, _flag(key))
        where[key] = _flag(key)
    try:
        return Settings(**merged)
    except SettingError as exc:
        raise ConfigError(f"{where.get(exc.key, _flag(exc.key))} {exc.problem}") from None
    except TypeError as exc:  # pragma: no cover - guarded by the key checks above
        raise ConfigError(str(exc)) from None
