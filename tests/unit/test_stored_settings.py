"""A crawl's stored settings (issue 21): the default crawl name, seed ports, and how the
settings given now combine with the ones stored with a crawl."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crawler.config import NOT_STORED, ExtractRule, Settings
from crawler.config_sources import load_settings
from crawler.errors import ConfigError
from crawler.stored import describe_change, given_settings, with_stored


@pytest.mark.parametrize(
    ("seed", "name"),
    [
        ("http://127.0.0.1:18990/", "127.0.0.1:18990"),
        ("http://127.0.0.1:18991/x", "127.0.0.1:18991"),
        ("http://example.com:80/", "example.com"),
        ("https://example.com:443/", "example.com"),
        ("https://example.com:80/", "example.com:80"),
        ("http://Example.COM/", "example.com"),
        ("http://[::1]:8080/", "[::1]:8080"),
    ],
)
def test_default_name_keeps_a_port_that_is_not_the_schemes(seed: str, name: str) -> None:
    assert Settings(seeds=(seed,)).crawl_name == name


@pytest.mark.parametrize(
    "seed", ["http://127.0.0.1:99999/", "http://127.0.0.1:0/", "http://h:port/", "http://h:-1/"]
)
def test_a_seed_with_a_bad_port_is_a_config_error(seed: str) -> None:
    with pytest.raises(ConfigError, match="port"):
        Settings(seeds=(seed,))


STORED: dict[str, Any] = {
    **Settings(include=("sql-",), delay=0.2, ignore_robots=True).to_json(),
    "json": True,  # older versions stored output settings too: never restored
    "retired_setting": 1,  # a setting this version does not know
}


def test_stored_settings_take_the_place_of_the_defaults() -> None:
    settings, changed = with_stored(Settings(name="x"), STORED, frozenset({"name"}))
    assert settings.include == ("sql-",)
    assert settings.delay == 0.2
    assert settings.ignore_robots is True
    assert settings.json is False
    assert changed == {}


def test_settings_given_now_win_and_are_reported() -> None:
    now = Settings(name="x", delay=0.0, concurrency=16, max_pages=20)
    given = frozenset({"name", "delay", "concurrency", "max_pages"})
    settings, changed = with_stored(now, STORED, given)
    assert settings.delay == 0.0
    assert settings.include == ("sql-",)
    assert settings.max_pages == 20
    # concurrency was given, but equal to the stored value: no change to report.
    assert changed == {"delay": (0.2, 0.0)}
    assert describe_change("delay", 0.2, 0.0) == "--delay 0.2 -> 0.0"
    assert describe_change("include", ("sql-",), ()) == "--include sql- -> none"


def test_extract_rules_are_restored() -> None:
    rules = (ExtractRule("price", "span.price", take="attr:data-p", all=True),)
    stored = Settings(extract=rules).to_json()
    settings, _ = with_stored(Settings(), stored, frozenset())
    assert settings.extract == rules


def test_budgets_output_and_the_database_are_never_stored() -> None:
    stored = Settings(
        max_pages=5, max_duration=9, json=True, database_url="postgresql://u:p@h/d"
    ).to_json()
    assert not NOT_STORED & set(stored)


def test_given_settings_are_flags_environment_and_file(tmp_path: Path) -> None:
    config = tmp_path / "crawler.toml"
    config.write_text("user_agent = 'file'\n", encoding="utf-8")
    flags = {"delay": 0.0, "include": (), "ignore_robots": False, "concurrency": None}
    environ = {"CRAWLER_RETRIES": "1", "CRAWLER_CONFIG": str(config)}
    load_settings(flags, environ=environ)  # the input is valid
    given = given_settings(flags, environ=environ)
    assert set(given) == {"delay", "ignore_robots", "retries", "user_agent"}


def test_given_settings_name_where_each_value_came_from(tmp_path: Path) -> None:
    """The "settings changed" line names the real source, as config errors do (issue 21)."""
    config = tmp_path / "crawler.toml"
    config.write_text("delay = 0.5\nstore_body = false\nretries = 4\n", encoding="utf-8")
    environ = {"CRAWLER_DELAY": "0.3", "CRAWLER_MAX_PAGES": "5"}
    flags = {"retries": 1, "delay": None}
    load_settings(flags, environ=environ, config_file=config)  # the input is valid
    given = given_settings(flags, environ=environ, config_file=config)
    assert given == {
        "store_body": f"config file {config}: store_body",
        "delay": "CRAWLER_DELAY",
        "max_pages": "CRAWLER_MAX_PAGES",
        "retries": "--retries",
    }
    assert describe_change("delay", 0.2, 0.3, given["delay"]) == "CRAWLER_DELAY 0.2 -> 0.3"
    assert describe_change("store_body", True, False, given["store_body"]) == (
        f"config file {config}: store_body True -> False"
    )
