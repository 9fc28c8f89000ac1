"""One frozen Settings object, built once: defaults < config file < environment < flags.

Every setting has the same name everywhere: the TOML key `max_pages`, the environment variable
`CRAWLER_MAX_PAGES` and the flag `--max-pages`. Values are validated here, so the rest of the
program can trust them; every problem is a `ConfigError` with one clear line.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from crawler.errors import ConfigError

ENV_PREFIX = "CRAWLER_"
DEFAULT_USER_AGENT = "crawler/0.1 (+a PostgreSQL web crawler)"
LOG_FORMATS = ("text", "json")
# --render: never, auto (when the static HTML looks client-rendered), always.
RENDER_MODES = ("never", "auto", "always")


@dataclass(frozen=True)
class ExtractRule:
    """A named field taken from each page with a CSS selector."""

    name: str
    css: str
    take: str = "text"
    all: bool = False


@dataclass(frozen=True)
class Settings:
    """Every knob of a crawl; see config.example.toml for what each one means."""

    seeds: tuple[str, ...] = ()
    name: str | None = None
    database_url: str | None = None
    data_dir: str | None = None
    concurrency: int = 16
    max_pages: int = 0
    max_depth: int = 50
    allow_hosts: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    user_agent: str = DEFAULT_USER_AGENT
    host_concurrency: int = 4
    delay: float = 0.0
    max_crawl_delay: float = 30.0
    ignore_robots: bool = False
    obey_meta_robots: bool = True
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 60.0
    max_body_bytes: int = 10 * 1024 * 1024
    max_header_bytes: int = 64 * 1024
    max_redirects: int = 10
    max_url_length: int = 2048
    max_pages_per_host: int = 0
    max_path_segments: int = 20
    max_segment_repeats: int = 3
    max_query_variants: int = 200
    retries: int = 2
    lease_seconds: float = 120.0
    max_duration: float = 0.0
    revisit_after: float = 0.0
    fail_on_error_rate: float = 1.0
    database_wait: float = 300.0
    allow_private: bool = False
    store_body: bool = False
    parse_processes: int = 1
    json: bool = False
    quiet: bool = False
    log_format: str = "text"
    extract: tuple[ExtractRule, ...] = ()
    # Rendering pages that need JavaScript in headless Chromium (crawler.render).
    render: str = "auto"
    render_concurrency: int = 2
    browser_path: str | None = None
    browser_cdp_url: str | None = None

    def __post_init__(self) -> None:
        self._check_render()
        positive = ("concurrency", "host_concurrency", "connect_timeout", "read_timeout")
        for key in positive:
            if getattr(self, key) <= 0:
                raise ConfigError(f"{_flag(key)} must be greater than 0")
        non_negative = (
            "max_pages_per_host",
            "max_path_segments",
            "max_segment_repeats",
            "max_query_variants",
            "max_duration",
            "revisit_after",
            "database_wait",
            "max_pages",
            "max_depth",
            "delay",
            "max_crawl_delay",
            "retries",
            "max_redirects",
            "total_timeout",
            "parse_processes",
        )
        for key in non_negative:
            if getattr(self, key) < 0:
                raise ConfigError(f"{_flag(key)} must not be negative")
        for key in ("max_body_bytes", "max_header_bytes", "max_url_length", "lease_seconds"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{_flag(key)} must be greater than 0")
        if self.parse_processes > 64:
            raise ConfigError("--parse-processes must be at most 64")
        if self.concurrency > 1000:
            raise ConfigError("--concurrency must be at most 1000")
        if not 0.0 <= self.fail_on_error_rate <= 1.0:
            raise ConfigError("--fail-on-error-rate must be between 0 and 1")
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"--log-format must be one of {', '.join(LOG_FORMATS)}")
        for seed in self.seeds:
            check_seed(seed)
        for key in ("include", "exclude"):
            for pattern in getattr(self, key):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ConfigError(
                        f"{_flag(key)} {pattern!r} is not a valid regex: {exc}"
                    ) from None
        if self.database_url is not None:
            object.__setattr__(self, "database_url", normalise_database_url(self.database_url))
        if not self.user_agent.strip():
            raise ConfigError("--user-agent must not be empty")

    def _check_render(self) -> None:
        if self.render not in RENDER_MODES:
            raise ConfigError(f"--render must be one of {', '.join(RENDER_MODES)}")
        if not 1 <= self.render_concurrency <= 32:
            raise ConfigError("--render-concurrency must be between 1 and 32")
        if self.browser_path is not None and self.browser_cdp_url is not None:
            raise ConfigError("give --browser-path or --browser-cdp-url, not both")
        if self.browser_path is not None and not self.browser_path.strip():
            raise ConfigError("--browser-path must not be empty")
        if self.browser_cdp_url is not None:
            parts = urlsplit(self.browser_cdp_url)
            if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
                raise ConfigError(
                    "--browser-cdp-url must be an http(s):// or ws(s):// URL with a host"
                )

    @property
    def crawl_name(self) -> str:
        """The crawl's name: given, or the first seed's host."""
        if self.name:
            return self.name
        if not self.seeds:
            raise ConfigError("give at least one seed URL (or --name of a crawl to resume)")
        return urlsplit(self.seeds[0]).hostname or self.seeds[0]

    def to_json(self) -> dict[str, Any]:
        """The settings as stored with the crawl (no database URL: it may hold a password)."""
        out = dataclasses.asdict(self)
        out.pop("database_url")
        return out


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def check_seed(seed: str) -> None:
    parts = urlsplit(seed)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"seed {seed!r} is not an http(s) URL with a host")


def normalise_database_url(url: str) -> str:
    """Accept postgresql://, postgres:// and postgresql+asyncpg://; return the asyncpg form."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ConfigError("--database-url must start with postgresql:// or postgresql+asyncpg://")


_FIELDS = {f.name: f for f in fields(Settings)}
_TUPLE_KEYS = frozenset(k for k, f in _FIELDS.items() if str(f.type).startswith("tuple"))
# Keys that are not settings of their own in the file or the environment.
_NOT_IN_ENV = frozenset({"seeds", "extract"})


_DURATION_KEYS = frozenset({"max_duration", "revisit_after", "database_wait"})
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any, where: str) -> float:
    """Seconds from a number or a string such as "90", "45s", "30m", "6h", "2d"."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ConfigError(f"{where} must be a duration such as 90s, 30m, 6h or 2d, not {value!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]


def _coerce(key: str, value: Any, source: str) -> Any:
    """Check a raw value (from TOML or a string from the environment) against the key's type."""
    ftype = str(_FIELDS[key].type)
    where = f"{source}: {key}"
    if key == "extract":
        return value
    if key in _DURATION_KEYS:
        return parse_duration(value, where)
    if key in _TUPLE_KEYS:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings")
        return tuple(value)
    if ftype == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{where} must be true or false, not {value!r}")
    if ftype == "int":
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a whole number, not {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a whole number, not {value!r}") from None
    if ftype == "float":
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, not {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number, not {value!r}") from None
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, not {value!r}")
    return value


def _extract_rules(raw: Any, source: str) -> tuple[ExtractRule, ...]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: [extract] must be a table of named rules")
    rules = []
    for name, rule in raw.items():
        if not isinstance(rule, dict) or not isinstance(rule.get("css"), str):
            raise ConfigError(f'{source}: [extract.{name}] needs css = "SELECTOR"')
        unknown = set(rule) - {"css", "take", "all"}
        if unknown:
            raise ConfigError(f"{source}: [extract.{name}] has unknown key {sorted(unknown)[0]!r}")
        take = rule.get("take", "text")
        if take not in ("text", "html") and not (
            isinstance(take, str) and take.startswith("attr:") and len(take) > 5
        ):
            raise ConfigError(
                f"{source}: [extract.{name}] take must be text, html or attr:NAME, not {take!r}"
            )
        all_ = rule.get("all", False)
        if not isinstance(all_, bool):
            raise ConfigError(f"{source}: [extract.{name}] all must be true or false")
        rules.append(ExtractRule(name=name, css=rule["css"], take=take, all=all_))
    return tuple(rules)


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
            out[key] = _extract_rules(value, str(path))
        else:
            out[key] = _coerce(key, value, str(path))
    return out


def read_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _FIELDS:
        if key in _NOT_IN_ENV:
            continue
        value = environ.get(ENV_PREFIX + key.upper())
        if value is not None:
            out[key] = _coerce(key, value, ENV_PREFIX + key.upper())
    return out


def load_settings(
    flags: Mapping[str, Any],
    *,
    environ: Mapping[str, str] = MappingProxyType({}),
    config_file: Path | None = None,
) -> Settings:
    """Build Settings: defaults < config file < environment < flags (None means 'not given')."""
    merged: dict[str, Any] = {}
    if config_file is None and environ.get(ENV_PREFIX + "CONFIG"):
        config_file = Path(environ[ENV_PREFIX + "CONFIG"])
    if config_file is not None:
        merged.update(read_config_file(config_file))
    merged.update(read_environment(environ))
    for key, value in flags.items():
        if key not in _FIELDS:
            raise ConfigError(f"unknown setting {key!r}")
        if value is None or (key in _TUPLE_KEYS and value == ()):
            continue
        merged[key] = _coerce(key, list(value) if key in _TUPLE_KEYS else value, "flag")
    try:
        return Settings(**merged)
    except TypeError as exc:  # pragma: no cover - guarded by the key checks above
        raise ConfigError(str(exc)) from None
