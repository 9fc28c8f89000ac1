"""Plain `--help` for every command: metavars a person reads (`N`, `REGEX`, `DURATION`)
rather than Python types (`<list[str]>`, `<int range>`), and the default of every setting
and on/off flag (`[default: off]`), and a number's bounds in words (`at least 1`).

The options of settings default to None ("not given", so the environment and the config file
can fill them in), so typer cannot show their defaults; they come from `Settings` here.
`plain_help` walks the click command tree that typer built (`typer.main.get_command`), once,
before it runs. Typer keeps its click private, so the objects are read by their documented
attributes (`params`, `metavar`, `type`, `commands`), not by their classes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from crawler.config import Settings
from crawler.db import embedded

# A command's parameter name -> its setting, where the two differ.
SETTING_OF = {"allow_host": "allow_hosts", "data_dir_": "data_dir"}
METAVARS = {
    "config": "FILE",
    "out": "FILE",
    "database_url": "URL",
    "data_dir": "DIR",
    "include": "REGEX",
    "exclude": "REGEX",
    "allow_hosts": "HOST",
    "name": "NAME",
    "seeds": "SEED",
    "query": "STATEMENT",
    "run": "ID",
    "user_agent": "TEXT",
    "max_duration": "DURATION",
    "revisit_after": "DURATION",
    "database_wait": "DURATION",
    "render": "MODE",
    "browser_path": "PATH",
    "browser_cdp_url": "URL",
}
DURATIONS = frozenset({"max_duration", "revisit_after", "database_wait"})
# Settings whose default the option's own help already explains (or that have none).
DEFAULT_IN_HELP = frozenset({"name", "database_url", "allow_hosts", "include", "exclude"})
_UNITS = (("d", 86400), ("h", 3600), ("m", 60))


def _duration(seconds: float) -> str:
    if seconds == 0:
        return "0 (none)"
    for unit, size in _UNITS:
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


# Click's type names, as typer's click has them (a list option has its items' type).
TYPE_METAVARS = {
    "int": "N",
    "int range": "N",
    "float": "NUMBER",
    "float range": "NUMBER",
    "path": "PATH",
}


def _metavar(param: Any, key: str) -> str:
    if key in METAVARS:
        return METAVARS[key]
    choices = getattr(param.type, "choices", None)
    if choices:
        return "|".join(str(getattr(choice, "value", choice)) for choice in choices)
    return TYPE_METAVARS.get(param.type.name, "TEXT")


def _default_text(key: str) -> str | None:
    if key == "data_dir":
        return str(embedded.default_data_dir())
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    if key not in fields or key in DEFAULT_IN_HELP:
        return None
    value = fields[key].default
    if key in DURATIONS and isinstance(value, float):
        return _duration(value)
    if isinstance(value, bool) or value is None or value == ():
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _range_text(low: float | None, high: float | None) -> str | None:
    if low is None and high is None:
        return None
    if high is None:
        return f"at least {low}"
    if low is None:
        return f"at most {high}"
    return f"{low} to {high}"


def _flag_default(param: Any, key: str) -> None:
    """An on/off flag's default: its setting's (the option says None, "not given"), or, for a
    flag with no `--no-` form, its own; typer shows neither. Not where the help says it."""
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    value = fields[key].default if param.default is None and key in fields else param.default
    if "default" in (param.help or ""):
        return
    if isinstance(value, bool) and (param.default is None or not param.secondary_opts):
        param.help = f"{param.help or ''}  [default: {'on' if value else 'off'}]".strip()


def _plain_param(param: Any) -> None:
    key = SETTING_OF.get(param.name or "", param.name or "")
    if getattr(param, "is_flag", False):
        _flag_default(param, key)
        return
    if getattr(param, "count", False):
        return
    param.metavar = _metavar(param, key)
    if param.param_type_name == "argument" and param.nargs != 1:
        param.metavar += "..."  # SEED...: any number of them
    low, high = getattr(param.type, "min", None), getattr(param.type, "max", None)
    if low is not None or high is not None:
        # Click writes a bound as `x>=1` (in the help and in its error); words read better.
        text = _range_text(low, high)
        param.type._describe_range = lambda: text
    if param.param_type_name == "option" and param.default is None:
        shown = _default_text(key)
        if shown is not None:
            param.help = f"{param.help or ''}  [default: {shown}]".strip()


def plain_help(command: Any) -> None:
    """Give every parameter of the command (and its subcommands) a plain metavar and its
    setting's default."""
    for param in command.params:
        _plain_param(param)
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)
