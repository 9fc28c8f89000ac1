"""What a new user reads first: `--help`, the README's command and exit-code tables, and the
warnings about CRAWLER_* variables that are not settings (issue 21, point 14)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
import typer

from crawler.cli import app
from tests.speed import FAST_ENV

README = Path(__file__).parents[2] / "README.md"
TIMEOUT = 60


def crawler(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    child = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")} | FAST_ENV
    child.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "crawler", *args],
        capture_output=True,
        text=True,
        env=child,
        timeout=TIMEOUT,
        check=False,
    )


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(title)
    end = text.find("\n#", start + len(title))
    return text[start : end if end != -1 else None]


def _commands() -> set[str]:
    group = typer.main.get_command(app)
    names: set[str] = set()
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", None)
        if subcommands:
            names.update(f"{name} {sub}" for sub in subcommands)
        else:
            names.add(name)
    return names


@pytest.mark.parametrize("command", ["crawl", "sql", "export", "runs", "db upgrade"])
def test_help_shows_plain_metavars_and_defaults(command: str) -> None:
    done = crawler(*command.split(), "--help")
    assert done.returncode == 0, done.stderr
    assert not re.search(r"<[a-z\[\]]+( range)?>", done.stdout), done.stdout
    assert not re.search(r"\bx[<>]=|<=x\b", done.stdout), done.stdout  # typer's `x>=1`
    if command == "export":
        assert re.search(r"--batch N\s+.*\[default: 1000;\s+at\s+least 1\]", done.stdout, re.S)
    if command == "crawl":
        for shown in ("--concurrency N", "[default: 16]", "--exclude REGEX", "[default: 5m]"):
            assert shown in done.stdout, done.stdout
        assert re.search(r"--max-depth N\s+.*\[default: 50\]", done.stdout), done.stdout
        # On/off flags show theirs too (README: "--help shows each flag's default").
        for flag in ("--ignore-robots", "--allow-private", "--store-body", "--json"):
            found = re.search(rf"{flag}\b[^\n]*\n?(?:\s{{20,}}[^\n]*\n)*", done.stdout)
            assert found and "[default: off]" in found.group(0), (flag, done.stdout)


def test_top_level_help_lists_every_exit_code() -> None:
    done = crawler("--help")
    assert done.returncode == 0, done.stderr
    for code in ("0", "1", "2", "3", "75", "130/143"):
        assert re.search(rf"(?<![\d/]){re.escape(code)}(?![\d/])", done.stdout), (code, done.stdout)
    assert "SQL" in done.stdout


def test_the_readme_command_table_has_every_command() -> None:
    table = _section("## Commands")
    listed = set(re.findall(r"^\| `crawler ([a-z]+(?: [a-z]+)?)", table, re.MULTILINE))
    listed = {name if name.split()[0] == "db" else name.split()[0] for name in listed}
    assert listed == _commands()


def test_the_readme_documents_sql_errors_and_a_damaged_schema() -> None:
    codes = _section("### Exit codes")
    assert re.search(r"^\| 2 \|.*SQL", codes, re.MULTILINE), codes
    assert re.search(r"^\| 3 \|.*schema", codes, re.MULTILINE), codes


def test_the_quickstart_queries_right_after_crawling() -> None:
    quickstart = _section("## Quickstart")
    assert quickstart.index("crawler crawl") < quickstart.index("crawler sql")
    assert "pytest" not in quickstart[: quickstart.index("crawler sql")]


def test_the_readme_does_not_promise_a_flag_for_every_setting() -> None:
    assert "Every setting has one name in three places" not in README.read_text()


def test_unknown_crawler_variables_warn_once_each(tmp_path: Path) -> None:
    env = {
        "CRAWLER_MAX_PAGE": "3",
        "CRAWLER_COLOUR": "1",
        "CRAWLER_TEST_DATABASE_URL": "postgresql://x@127.0.0.1:1/y",
        "CRAWLER_CONFIG": "",
        "CRAWLER_DATA_DIR": str(tmp_path / "nothing"),
    }
    done = crawler("db", "url", env=env)
    assert done.returncode == 2, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert warnings == [
        "crawler: warning: ignoring CRAWLER_COLOUR: not a setting",
        "crawler: warning: ignoring CRAWLER_MAX_PAGE: not a setting "
        "(did you mean CRAWLER_MAX_PAGES?)",
    ], done.stderr


def test_every_setting_has_a_flag_or_is_named_as_config_only() -> None:
    """The README says which settings have no flag; every other one has one on `crawl`."""
    import dataclasses

    from crawler.config import Settings

    crawl = typer.main.get_command(app).commands["crawl"]  # type: ignore[attr-defined]
    flags = {opt.lstrip("-").replace("-", "_") for p in crawl.params for opt in p.opts}
    flags |= {"seeds", "allow_hosts", "extract", "json"}  # arguments, --allow-host, the file
    config_only = set(re.findall(r"`([a-z_]+)`", _section("have no flag")))
    for field in dataclasses.fields(Settings):
        assert field.name in flags or field.name in config_only, field.name
