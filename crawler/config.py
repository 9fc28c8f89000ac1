"""One frozen Settings object, built once: defaults < config file < environment < flags.

Every setting has the same name everywhere: the TOML key `max_pages`, the environment variable
`CRAWLER_MAX_PAGES` and the flag `--max-pages`. Values are validated here, so the rest of the
program can trust them; every problem is a `ConfigError` with one clear line.

A crawl stores its settings (`Settings.to_json`: not those in NOT_STORED); a later run of it
takes them where the defaults would be, below whatever is given now (crawler/stored.py).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from crawler.errors import ConfigError

ENV_PREFIX = "CRAWLER_"
DEFAULT_USER_AGENT = "crawler/0.1 (+a PostgreSQL web crawler)"
LOG_FORMATS = ("text", "json")
# --render: never, auto (when the static HTML looks client-rendered), always.
RENDER_MODES = ("never", "auto", "always")
DATABASE_URL_PROBLEM = "must start with postgresql:// or postgresql+asyncpg://"
# CRAWLER_* variables that are not settings but are documented (README): never "unknown".
OTHER_VARIABLES = frozenset({"CRAWLER_CONFIG", "CRAWLER_TEST_DATABASE_URL"})


class SettingError(ConfigError):
    """A setting's value is invalid; `load_settings` names where the value came from."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{_flag(key)} {problem}")
        self.key = key
        self.problem = problem


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
    delay: float | None = None  # None: adaptive (crawler.throttle)
    max_crawl_delay: float = 30.0
    ignore_robots: bool = False
    obey_meta_robots: bool = True
    connect_timeout: float = 10.0
    read_timeout: float = 20.0  # with total_timeout, bounds a URL: see decide.TIMEOUT_RETRIES
    total_timeout: float = 30.0
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
                raise SettingError(key, "must be greater than 0")
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
            value = getattr(self, key)
            if value is not None and value < 0:
                raise SettingError(key, "must not be negative")
        for key in ("max_body_bytes", "max_header_bytes", "max_url_length", "lease_seconds"):
            if getattr(self, key) <= 0:
                raise SettingError(key, "must be greater than 0")
        if self.parse_processes > 64:
            raise SettingError("parse_processes", "must be at most 64")
        if self.concurrency > 1000:
            raise SettingError("concurrency", "must be at most 1000")
        if not 0.0 <= self.fail_on_error_rate <= 1.0:
            raise SettingError("fail_on_error_rate", "must be between 0 and 1")
        if self.log_format not in LOG_FORMATS:
            raise SettingError("log_format", f"must be one of {', '.join(LOG_FORMATS)}")
        for seed in self.seeds:
            check_seed(seed)
        for key in ("include", "exclude"):
            for pattern in getattr(self, key):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise SettingError(key, f"{pattern!r} is not a valid regex: {exc}") from None
        if self.database_url is not None:
            try:
                url = normalise_database_url(self.database_url)
            except ConfigError:
                raise SettingError("database_url", DATABASE_URL_PROBLEM) from None
            object.__setattr__(self, "database_url", url)
        if not self.user_agent.strip():
            raise SettingError("user_agent", "must not be empty")

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
        """The crawl's name: given, or the first seed's host (`host:port` when the port is
        not the scheme's default, so two sites on one host are two crawls)."""
        if self.name:
            return self.name
        if not self.seeds:
            raise ConfigError("give at least one seed URL (or --name of a crawl to resume)")
        parts = urlsplit(self.seeds[0])
        host = parts.hostname or self.seeds[0]
        if ":" in host:
            host = f"[{host}]"  # an IPv6 literal
        port = parts.port
        if port is None or port == _DEFAULT_PORTS.get(parts.scheme):
            return host
        return f"{host}:{port}"

    def to_json(self) -> dict[str, Any]:
        """The crawl settings, as stored with the crawl (see NOT_STORED: never the database
        URL, which may hold a password)."""
        out = dataclasses.asdict(self)
        for key in NOT_STORED:
            out.pop(key)
        return out


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


_DEFAULT_PORTS = {"http": 80, "https": 443}


def seed_problem(seed: str) -> str | None:
    """Why `seed` cannot be fetched at all, or None: "is not an http(s) URL with a host",
    "has no valid port (1 to 65535)"."""
    parts = urlsplit(seed)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an http(s) URL with a host"
    try:
        port = parts.port
    except ValueError:
        port = 0
    return "has no valid port (1 to 65535)" if port == 0 else None


def check_seed(seed: str) -> None:
    problem = seed_problem(seed)
    if problem is not None:
        raise ConfigError(f"seed {seed!r} {problem}")


def normalise_database_url(url: str) -> str:
    """Accept postgresql://, postgres:// and postgresql+asyncpg://; return the asyncpg form."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ConfigError(f"--database-url {DATABASE_URL_PROBLEM}")


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


def _coerce(key: str, value: Any, where: str) -> Any:
    """Check a raw value (from TOML, a string from the environment or a flag's value) against
    the key's type; `where` names its source in messages (see `_file_key`, `_env_name`)."""
    ftype = str(_FIELDS[key].type)
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
    if value is None and ftype.endswith("| None"):
        return None
    if ftype in ("float", "float | None"):
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


# -- a crawl's stored settings ----------------------------------------------------------------

# Settings that are not the crawl's own: which crawl and database, how this invocation reports,
# and this invocation's budgets. They are neither stored with a crawl nor restored from it.
NOT_STORED = frozenset(
    {
        "seeds",
        "name",
        "database_url",
        "data_dir",
        "json",
        "quiet",
        "log_format",
        "max_pages",
        "max_duration",
        "database_wait",
        "fail_on_error_rate",
        "browser_path",  # this machine's
        "browser_cdp_url",  # may carry a token
    }
)
