"""Settings: the example file, precedence, validation and what is never stored."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from crawler.config import NOT_STORED, ExtractRule, Settings, normalise_database_url
from crawler.config_sources import load_settings, read_config_file, unknown_environment
from crawler.errors import ConfigError
from crawler.stored import given_settings

EXAMPLE = Path(__file__).parents[2] / "config.example.toml"
FIELDS = [f.name for f in dataclasses.fields(Settings)]
# Settings without a TOML default (None, or rules): the example shows an example value.
NO_DEFAULT = {
    "name",
    "database_url",
    "data_dir",
    "extract",
    "browser_path",
    "browser_cdp_url",
    "delay",
}
# One setting of the example: `# key = value`, commented out.
SETTING_LINE = re.compile(r"^# (\w+) = \S")
RULE = {"take": "text", "all": False}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "crawler.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -- the example file ------------------------------------------------------------------------


def _uncommented_defaults() -> str:
    """The example with every setting that has a default uncommented."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    out = []
    for line in lines:
        found = SETTING_LINE.match(line)
        if found and found.group(1) in FIELDS and found.group(1) not in NO_DEFAULT:
            line = line.removeprefix("# ")
        out.append(line)
    return "\n".join(out) + "\n"


def test_example_as_written_changes_nothing() -> None:
    """Every key is commented out: the file sets nothing, so it can never outrank a crawl's
    stored settings (issue 21: it turned a stored store_body true into false)."""
    assert read_config_file(EXAMPLE) == {}
    assert tomllib.loads(EXAMPLE.read_text(encoding="utf-8")) == {}
    assert load_settings({}, config_file=EXAMPLE) == Settings()
    # ... and gives no setting that would win over a crawl's stored ones.
    assert not given_settings({}, config_file=EXAMPLE)


def test_example_uncommented_parses_to_the_defaults_field_by_field(tmp_path: Path) -> None:
    path = _write(tmp_path, _uncommented_defaults())
    from_file = read_config_file(path)
    settings = load_settings({}, config_file=path)
    defaults = Settings()
    for name in FIELDS:
        assert getattr(settings, name) == getattr(defaults, name), (
            f"config.example.toml shows {name} = {getattr(settings, name)!r}, "
            f"but the default is {getattr(defaults, name)!r}"
        )
    assert settings == defaults
    # Every setting with a default is shown with it (not only named in prose).
    assert set(from_file) == set(FIELDS) - NO_DEFAULT


@pytest.mark.parametrize("name", FIELDS)
def test_every_setting_is_in_the_example_with_a_comment(name: str) -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    if name == "extract":
        pattern = re.compile(r"^# \[extract\.\w+\]$")
    else:
        pattern = re.compile(rf"^# {name} = \S")
    found = [i for i, line in enumerate(lines) if pattern.match(line)]
    assert found, f"config.example.toml does not show the setting {name!r}"
    # The setting's block (settings may share one) opens with a comment that explains it.
    i = found[0] - 1
    while i >= 0 and SETTING_LINE.match(lines[i]):
        i -= 1
    assert i >= 0 and lines[i].startswith("# ") and len(lines[i]) > 2, (
        f"{name} in config.example.toml has no comment saying what it means"
    )


def test_example_commented_extract_rule_is_valid_when_uncommented(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    start = text.index("# [extract.")
    rules = "\n".join(line.removeprefix("#").strip() for line in text[start:].splitlines())
    settings = load_settings({}, config_file=_write(tmp_path, rules))
    assert settings.extract
    assert all(isinstance(rule, ExtractRule) for rule in settings.extract)


# -- precedence: flags > environment > config file > defaults --------------------------------


def test_precedence_flags_over_env_over_file_over_defaults(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        'concurrency = 3\nmax_pages = 10\nmax_depth = 5\nuser_agent = "from-file"\n',
    )
    environ = {"CRAWLER_CONCURRENCY": "5", "CRAWLER_MAX_PAGES": "20"}
    settings = load_settings({"concurrency": 7}, environ=environ, config_file=config)
    assert settings.concurrency == 7  # flag
    assert settings.max_pages == 20  # environment
    assert settings.max_depth == 5  # file
    assert settings.user_agent == "from-file"  # file
    assert settings.delay == Settings().delay  # default


def test_a_flag_given_as_none_or_empty_is_not_given() -> None:
    environ = {"CRAWLER_CONCURRENCY": "5", "CRAWLER_ALLOW_HOSTS": "a.example, b.example"}
    settings = load_settings({"concurrency": None, "allow_hosts": ()}, environ=environ)
    assert settings.concurrency == 5
    assert settings.allow_hosts == ("a.example", "b.example")


def test_environment_values_are_typed() -> None:
    environ = {
        "CRAWLER_IGNORE_ROBOTS": "yes",
        "CRAWLER_DELAY": "0.5",
        "CRAWLER_MAX_DEPTH": "3",
        "CRAWLER_EXCLUDE": r"\.pdf$,/private/",
        "CRAWLER_LOG_FORMAT": "json",
    }
    settings = load_settings({}, environ=environ)
    assert settings.ignore_robots is True
    assert settings.delay == 0.5
    assert settings.max_depth == 3
    assert settings.exclude == (r"\.pdf$", "/private/")
    assert settings.log_format == "json"


def test_durations_take_units_everywhere(tmp_path: Path) -> None:
    config = _write(tmp_path, 'revisit_after = "6h"\nmax_duration = 90\n')
    environ = {"CRAWLER_MAX_DURATION": "30m"}
    settings = load_settings({"database_wait": "2d"}, environ=environ, config_file=config)
    assert settings.revisit_after == 6 * 3600
    assert settings.max_duration == 30 * 60
    assert settings.database_wait == 2 * 86400


def test_crawler_config_names_the_file_and_config_file_overrides_it(tmp_path: Path) -> None:
    env_file = tmp_path / "env.toml"
    env_file.write_text("max_depth = 2\n", encoding="utf-8")
    flag_file = tmp_path / "flag.toml"
    flag_file.write_text("max_depth = 4\n", encoding="utf-8")
    environ = {"CRAWLER_CONFIG": str(env_file)}
    assert load_settings({}, environ=environ).max_depth == 2
    assert load_settings({}, environ=environ, config_file=flag_file).max_depth == 4


def test_file_lists_and_extract_rules(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        'seeds = ["https://example.com/"]\n'
        'allow_hosts = ["example.com", "www.example.com"]\n'
        '[extract.price]\ncss = "span.price"\n'
        '[extract.images]\ncss = "img"\ntake = "attr:src"\nall = true\n',
    )
    settings = load_settings({}, config_file=config)
    assert settings.seeds == ("https://example.com/",)
    assert settings.allow_hosts == ("example.com", "www.example.com")
    assert settings.extract == (
        ExtractRule("price", "span.price"),
        ExtractRule("images", "img", take="attr:src", all=True),
    )
    assert settings.crawl_name == "example.com"


# -- mistakes: a ConfigError whose message names the setting ----------------------------------

FileCase = tuple[str, str]

BAD_FILES: dict[str, FileCase] = {
    "wrong type int": ('concurrency = "many"', "concurrency"),
    "wrong type float": ('delay = "soon"', "delay"),
    "wrong type bool": ('ignore_robots = "maybe"', "ignore_robots"),
    "bool for int": ("max_pages = true", "max_pages"),
    "wrong type list": ("allow_hosts = 3", "allow_hosts"),
    "list of non-strings": ("include = [1, 2]", "include"),
    "wrong type str": ("user_agent = 5", "user_agent"),
    "negative concurrency": ("concurrency = -1", "concurrency"),
    "zero concurrency": ("concurrency = 0", "concurrency"),
    "too much concurrency": ("concurrency = 100000", "concurrency"),
    "negative max_pages": ("max_pages = -1", "max_pages"),
    "negative delay": ("delay = -0.5", "delay"),
    "zero read_timeout": ("read_timeout = 0", "read_timeout"),
    "zero max_body_bytes": ("max_body_bytes = 0", "max_body_bytes"),
    "bad log format": ('log_format = "xml"', "log_format"),
    "empty user agent": ('user_agent = "  "', "user_agent"),
    "bad include regex": ('include = ["("]', "include"),
    "bad exclude regex": ('exclude = ["[a-"]', "exclude"),
    "unknown key": ("colour = true", "colour"),
    "bad database url": ('database_url = "mysql://u@h/db"', "database_url"),
    "non-http seed": ('seeds = ["ftp://x/"]', "ftp://x/"),
    "seed without host": ('seeds = ["http:///path"]', "http:///path"),
    "bad duration": ('max_duration = "soon"', "max_duration"),
    "duration with unknown unit": ('revisit_after = "3y"', "revisit_after"),
    "negative duration": ("database_wait = -1", "database_wait"),
    "error rate over 1": ("fail_on_error_rate = 1.5", "fail_on_error_rate"),
    "extract without css": ('[extract.price]\ntake = "text"', "extract.price"),
    "extract bad take": ('[extract.price]\ncss = "b"\ntake = "attr:"', "extract.price"),
    "extract unknown key": ('[extract.price]\ncss = "b"\nfirst = true', "extract.price"),
    "extract bad all": ('[extract.price]\ncss = "b"\nall = "yes"', "extract.price"),
    "extract not a table": ('extract = "b"', "extract"),
}


@pytest.mark.parametrize("case", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_file_values_raise_config_error_naming_the_setting(
    tmp_path: Path, case: FileCase
) -> None:
    text, named = case
    with pytest.raises(ConfigError) as info:
        load_settings({}, config_file=_write(tmp_path, text + "\n"))
    message = str(info.value)
    assert named in message
    assert "\n" not in message
    assert "--" not in message, "a mistake in the config file is named as a flag"
    if named.startswith("extract"):
        assert message.startswith("config file "), message


BAD_ENVIRONMENTS: dict[str, tuple[dict[str, str], str]] = {
    "int": ({"CRAWLER_MAX_PAGES": "abc"}, "CRAWLER_MAX_PAGES"),
    "float": ({"CRAWLER_DELAY": "soon"}, "CRAWLER_DELAY"),
    "bool": ({"CRAWLER_IGNORE_ROBOTS": "maybe"}, "CRAWLER_IGNORE_ROBOTS"),
    "negative": ({"CRAWLER_CONCURRENCY": "-4"}, "CRAWLER_CONCURRENCY must be greater"),
    "database url": ({"CRAWLER_DATABASE_URL": "sqlite:///x.db"}, "CRAWLER_DATABASE_URL must"),
}


@pytest.mark.parametrize("case", BAD_ENVIRONMENTS.values(), ids=BAD_ENVIRONMENTS.keys())
def test_bad_environment_raises_config_error_naming_the_variable(
    case: tuple[dict[str, str], str],
) -> None:
    environ, named = case
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_settings({}, environ=environ)


BAD_FLAGS: dict[str, tuple[dict[str, Any], str]] = {
    "wrong type": ({"concurrency": "abc"}, "concurrency"),
    "negative concurrency": ({"concurrency": -1}, "--concurrency"),
    "zero concurrency": ({"concurrency": 0}, "--concurrency"),
    "bad regex": ({"include": ("(unclosed",)}, "--include"),
    "unknown key": ({"colour": True}, "colour"),
    "bad database url": ({"database_url": "mysql://u:p@h/db"}, "--database-url"),
    "non-http seed": ({"seeds": ("ftp://x/",)}, "ftp://x/"),
    "relative seed": ({"seeds": ("example.com",)}, "example.com"),
    "negative parse processes": ({"parse_processes": -1}, "--parse-processes"),
    "too many parse processes": ({"parse_processes": 65}, "--parse-processes"),
}


@pytest.mark.parametrize("case", BAD_FLAGS.values(), ids=BAD_FLAGS.keys())
def test_bad_flags_raise_config_error_naming_the_setting(case: tuple[dict[str, Any], str]) -> None:
    flags, named = case
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_settings(flags)


def test_missing_file_from_environment_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_settings({}, environ={"CRAWLER_CONFIG": str(path)})
    assert str(path) in str(info.value)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "concurrency = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        read_config_file(path)
    assert str(path) in str(info.value)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_settings({}, config_file=path)
    assert str(path) in str(info.value)


def test_settings_validate_on_construction() -> None:
    with pytest.raises(ConfigError, match="--host-concurrency"):
        Settings(host_concurrency=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().concurrency = 3  # type: ignore[misc]


def test_crawl_name_needs_a_seed_or_a_name() -> None:
    assert Settings(name="mine").crawl_name == "mine"
    assert Settings(seeds=("https://Example.COM:8443/x",)).crawl_name == "example.com:8443"
    with pytest.raises(ConfigError, match="seed"):
        _ = Settings().crawl_name


# -- database URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgres://u:p@h/db", "postgresql+asyncpg://u:p@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        (
            "postgresql://postgres@/crawler?host=/var/run/postgresql",
            "postgresql+asyncpg://postgres@/crawler?host=/var/run/postgresql",
        ),
    ],
)
def test_normalise_database_url(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected
    assert Settings(database_url=given).database_url == expected


@pytest.mark.parametrize("url", ["mysql://u@h/db", "sqlite:///x.db", "h:5432/db", ""])
def test_normalise_database_url_rejects_other_schemes(url: str) -> None:
    with pytest.raises(ConfigError, match="--database-url"):
        normalise_database_url(url)


def test_to_json_never_contains_the_database_url() -> None:
    settings = Settings(
        seeds=("https://example.com/",),
        database_url="postgresql://crawler:s3cret@db.internal:5432/crawls",
        extract=(ExtractRule("price", "span.price"),),
    )
    stored = settings.to_json()
    assert "database_url" not in stored
    text = json.dumps(stored)  # it is JSON as it is
    assert "s3cret" not in text
    assert "db.internal" not in text
    assert json.loads(text)["extract"] == [{"name": "price", "css": "span.price", **RULE}]
    # Only the crawl's settings: not its seeds (crawls.seeds), output or this run's budgets.
    assert set(stored) == set(FIELDS) - NOT_STORED


def test_example_file_is_plain_toml() -> None:
    # Uncommented, it loads without our loader too: valid TOML for any other tool.
    raw = tomllib.loads(_uncommented_defaults())
    assert raw["concurrency"] == Settings().concurrency


def test_errors_name_the_real_source_of_the_value(tmp_path: Path) -> None:
    """A bad value is named where it came from: the config file and key, the environment
    variable, or the flag (issue 21, point 14)."""
    path = _write(tmp_path, 'exclude = ["("]\nrevisit_after = "soon"\n')
    with pytest.raises(ConfigError) as info:
        load_settings({}, config_file=path)
    assert str(info.value).startswith(f"config file {path}: ")
    assert "--" not in str(info.value)
    good = _write(tmp_path, 'exclude = ["("]\n')
    with pytest.raises(ConfigError) as info:
        load_settings({}, config_file=good)
    assert str(info.value).startswith(f"config file {good}: exclude '(' is not a valid regex")
    with pytest.raises(ConfigError, match=r"^--revisit-after must be a duration"):
        load_settings({"revisit_after": "soon"})
    with pytest.raises(ConfigError, match=r"^CRAWLER_REVISIT_AFTER must be a duration"):
        load_settings({}, environ={"CRAWLER_REVISIT_AFTER": "soon"})
    with pytest.raises(ConfigError, match=r"^CRAWLER_EXCLUDE '\[' is not a valid regex"):
        load_settings({}, environ={"CRAWLER_EXCLUDE": "["})
    # A flag overrides the file's value, and its own mistake is named as the flag.
    with pytest.raises(ConfigError, match=r"^--concurrency must be greater than 0"):
        load_settings({"concurrency": 0}, config_file=_write(tmp_path, "concurrency = 4\n"))


def test_unknown_crawler_variables_are_named_with_a_hint() -> None:
    environ = {
        "CRAWLER_MAX_PAGE": "5",
        "CRAWLER_BOGUS": "1",
        "CRAWLER_SEEDS": "https://a.example/",
        # documented, not settings: never reported
        "CRAWLER_CONFIG": "x.toml",
        "CRAWLER_TEST_DATABASE_URL": "postgresql://x/y",
        "CRAWLER_DATABASE_URL": "postgresql://x/y",
        "CRAWLER_DATA_DIR": "/x",
        "CRAWLER_MAX_PAGES": "3",
        "OTHER": "1",
    }
    assert unknown_environment(environ) == [
        ("CRAWLER_BOGUS", None),
        ("CRAWLER_MAX_PAGE", "CRAWLER_MAX_PAGES"),
        ("CRAWLER_SEEDS", None),
    ]
