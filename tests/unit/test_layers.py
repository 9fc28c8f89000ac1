"""The import layering of STYLE.md ("The house"), held by walking every module's AST.

A module imports only from layers below it, with these same-layer exceptions: the
foundations may import each other (config uses errors), and so may the pure modules (parse
and robots use urls); modules of the db package import each other; the fetcher's modules
(fetch, fetch_errors, guard) use each other; cli uses the entry layer's helpers (display,
cli_options, cli_reports, cli_maintenance). Only the fetcher's modules import aiohttp, only
db/ imports SQLAlchemy, Alembic and asyncpg, only render/ imports playwright, only report/
matplotlib and Jinja2, and nothing but __main__ imports cli. A subpackage's modules take its
layer unless LAYERS names them (render/'s pure detector and learner are layer 1). Imports
inside functions and under TYPE_CHECKING count too: they are dependencies.

A new module must be given a layer in LAYERS below: the test fails until it has one.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "crawler"

# Every module of the package -> its layer. Packages listed in SUBPACKAGES give their layer
# to every module inside them.
LAYERS: dict[str, int] = {
    # 0 foundations
    "crawler": 0,  # __init__.py: the version
    "crawler.config": 0,
    "crawler.records": 0,
    "crawler.errors": 0,
    "crawler.stored": 0,  # a crawl's stored settings, restored by later runs
    "crawler.config_sources": 0,  # config file, environment and flags -> Settings
    "crawler.summary": 0,  # what a run did, as printed at its end
    "crawler.kinds": 0,  # the closed sets: error kinds, task and run outcomes
    # 1 pure logic
    "crawler.urls": 1,
    "crawler.scope": 1,
    "crawler.robots": 1,
    "crawler.parse": 1,
    "crawler.politeness": 1,
    "crawler.lifecycle": 1,  # what a run's start and end decide and say
    "crawler.throttle": 1,  # adaptive delay per host (issue 18)
    "crawler.sitemap": 1,
    "crawler.extract": 1,  # CSS extraction rules on parse's tree
    "crawler.encoding": 1,  # which codec decodes an HTML body
    "crawler.cells": 1,  # how `crawler sql` shows a value
    "crawler.report": 1,  # report records -> one HTML string (matplotlib, Jinja2); no I/O
    "crawler.render.detect": 1,  # does static HTML look client-rendered
    "crawler.render.learn": 1,  # per-host: does rendering pay
    "crawler.decide": 1,  # the crawl's policy for one task: facts in, decisions out
    "crawler.headers": 1,  # reading a response's head
    "crawler.known": 1,  # the bounded cache of URLs known to be in the frontier
    "crawler.seams": 1,  # the Protocols the pool plugs into (Fetcher, Frontier, Store)
    # 2 adapters
    "crawler.fetch": 2,
    "crawler.guard": 2,  # the address guard: aiohttp's resolver, wrapped
    "crawler.fetch_errors": 2,  # aiohttp's exceptions as error kinds
    "crawler.db": 2,
    "crawler.export": 2,  # encodes the rows it is given onto a stream; never imports db/
    "crawler.render": 2,  # the browser (playwright); its pure modules are listed in layer 1
    # 3 concurrency
    "crawler.pool": 3,
    "crawler.hosts": 3,
    "crawler.runner": 3,  # applies one task's decisions
    "crawler.outage": 3,  # rides out a database outage for the whole pool
    "crawler.pacer": 3,  # what requests taught of their hosts, until the frontier hears it
    "crawler.sitemap_feed": 3,  # sitemaps into the frontier
    "crawler.loop_health": 3,  # event-loop lag and the collector's tuning
    "crawler.parse_workers": 3,  # parse on the loop or in worker processes
    "crawler.render.guard": 3,  # fetch's address guard and robots, as the browser's rules
    # 4 wiring
    "crawler.run": 4,
    "crawler.reparse": 4,  # stored bodies (db) through parse and extract, written back
    # 5 entry: cli and its helpers
    "crawler.cli": 5,
    "crawler.display": 5,
    "crawler.cli_reports": 5,
    "crawler.cli_report": 5,
    "crawler.cli_maintenance": 5,
    "crawler.cli_options": 5,
    "crawler.cli_search": 5,
    "crawler.cli_sql": 5,
    "crawler.cli_help": 5,
    "crawler.collector": 5,  # the garbage collector at the process's start and end
    "crawler.__main__": 5,
}
SUBPACKAGES = ("crawler.db", "crawler.report", "crawler.render")
LAYER_NAMES = {
    0: "foundations",
    1: "pure logic",
    2: "adapters",
    3: "concurrency",
    4: "wiring",
    5: "entry",
}
# Layers whose modules may import each other (cycles are caught separately); in layer 3 the
# pool uses the runner, hosts, the outage and its other rooms.
SAME_LAYER_OK = frozenset({0, 1, 3, 5})
# Same-layer imports allowed elsewhere: the fetcher's parts (its address guard and its
# classification of failures) beside it.
SAME_LAYER_PAIRS = frozenset(
    {
        ("crawler.fetch", "crawler.guard"),
        ("crawler.fetch", "crawler.fetch_errors"),
        ("crawler.fetch_errors", "crawler.guard"),
    }
)
# Third-party packages only these places may import.
OWNERS: dict[str, frozenset[str]] = {
    "aiohttp": frozenset({"crawler.fetch", "crawler.fetch_errors", "crawler.guard"}),
    "sqlalchemy": frozenset({"crawler.db"}),
    "alembic": frozenset({"crawler.db"}),
    "asyncpg": frozenset({"crawler.db"}),
    "matplotlib": frozenset({"crawler.report"}),
    "jinja2": frozenset({"crawler.report"}),
    "playwright": frozenset({"crawler.render"}),
}
CLI = "crawler.cli"
CLI_IMPORTERS = frozenset({"crawler.__main__"})


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # what it imports, as a dotted module name
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, source: str, known: dict[str, Path]) -> Iterator[Import]:
    """Every import in a module's source, nested ones included, resolved to module names."""
    is_package = name in known and known[name].name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, node.module] if node.module else parts)
            else:
                base = node.module or ""
            for alias in node.names:
                # `from crawler import cli_reports` imports a module; `from crawler import
                # __version__` an attribute of the package.
                candidate = f"{base}.{alias.name}"
                yield Import(name, candidate if candidate in known else base, node.lineno)


def owner_of(module: str) -> str:
    """The unit a module counts as: itself, or its subpackage (db/* is one adapter)."""
    for package in SUBPACKAGES:
        if module == package or module.startswith(package + "."):
            return package
    return module


def layer_of(module: str) -> int | None:
    """A module's own entry in LAYERS, else its subpackage's."""
    return LAYERS[module] if module in LAYERS else LAYERS.get(owner_of(module))


def _top(module: str) -> str:
    return module.split(".")[0]


MODULES = find_modules()
IMPORTS = [
    imp
    for name, path in MODULES.items()
    for imp in imports_of(name, path.read_text(encoding="utf-8"), MODULES)
]


def _where(imp: Import) -> str:
    path = MODULES.get(imp.module)
    place = path.relative_to(PACKAGE.parent).as_posix() if path else imp.module
    return f"{place}:{imp.line}: {imp.module} imports {imp.target}"


# -- the checks, as functions of a list of imports (so they can be tested on bad examples) --


def unmapped(modules: Iterable[str]) -> list[str]:
    return sorted(m for m in modules if layer_of(m) is None)


def layer_violations(imports: Iterable[Import]) -> list[str]:
    wrong = []
    for imp in imports:
        if _top(imp.target) != "crawler":
            continue
        mine, theirs = layer_of(imp.module), layer_of(imp.target)
        if mine is None or theirs is None:
            continue  # reported by test_every_module_has_an_explicit_layer
        if theirs < mine:
            continue
        if theirs == mine and (
            mine in SAME_LAYER_OK
            or owner_of(imp.module) == owner_of(imp.target)
            or (owner_of(imp.module), owner_of(imp.target)) in SAME_LAYER_PAIRS
        ):
            continue
        wrong.append(
            f"{_where(imp)}: layer {mine} ({LAYER_NAMES[mine]}) may not import "
            f"layer {theirs} ({LAYER_NAMES[theirs]})"
        )
    return wrong


def owner_violations(imports: Iterable[Import]) -> list[str]:
    return [
        f"{_where(imp)}: only {' and '.join(sorted(OWNERS[_top(imp.target)]))} may import "
        f"{_top(imp.target)}"
        for imp in imports
        if _top(imp.target) in OWNERS and owner_of(imp.module) not in OWNERS[_top(imp.target)]
    ]


def cli_violations(imports: Iterable[Import]) -> list[str]:
    return [
        f"{_where(imp)}: only crawler/__main__.py may import crawler.cli"
        for imp in imports
        if (imp.target == CLI or imp.target.startswith(CLI + "."))
        and imp.module not in CLI_IMPORTERS
    ]


def import_cycles(imports: Iterable[Import]) -> list[str]:
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.module, set())
        # A package that imports its own submodules (db/__init__) is not a cycle.
        if (
            _top(imp.target) == "crawler"
            and imp.target != imp.module
            and not imp.target.startswith(imp.module + ".")
        ):
            graph[imp.module].add(imp.target)
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


# -- the tests --------------------------------------------------------------------------------


def test_the_package_is_found() -> None:
    assert {"crawler.config", "crawler.run", "crawler.cli", "crawler.db.models"} <= set(MODULES)
    assert IMPORTS


def test_every_module_has_an_explicit_layer() -> None:
    missing = unmapped(MODULES)
    assert not missing, (
        f"modules without a layer: {', '.join(missing)}. Give each its layer in LAYERS of "
        "tests/unit/test_layers.py (see STYLE.md, 'The house')."
    )


def test_no_stale_layer_entries() -> None:
    stale = sorted(name for name in LAYERS if name not in MODULES)
    assert not stale, f"LAYERS names modules that do not exist: {', '.join(stale)}"


def test_imports_point_down_the_layers() -> None:
    wrong = layer_violations(IMPORTS)
    assert not wrong, "imports against the layering of STYLE.md:\n" + "\n".join(wrong)


def test_no_import_cycles() -> None:
    cycles = import_cycles(IMPORTS)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_third_party_adapters_have_one_owner() -> None:
    wrong = owner_violations(IMPORTS)
    assert not wrong, "\n".join(wrong)


def test_nothing_imports_the_cli_but_main() -> None:
    wrong = cli_violations(IMPORTS)
    assert not wrong, "\n".join(wrong)


# -- the checker itself, on bad examples -----------------------------------------------------


def test_the_walker_resolves_nested_relative_and_from_package_imports() -> None:
    source = (
        "from crawler import __version__, cli_reports\n"
        "from crawler.db import embedded\n"
        "def f():\n"
        "    import aiohttp.web\n"
        "    from . import urls\n"
        "    from .db.models import Base\n"
    )
    found = {imp.target for imp in imports_of("crawler.config", source, MODULES)}
    assert found == {
        "crawler",
        "crawler.cli_reports",
        "crawler.db.embedded",
        "aiohttp.web",
        "crawler.urls",
        "crawler.db.models",
    }
    in_db = imports_of("crawler.db.store", "from . import database", MODULES)
    assert {imp.target for imp in in_db} == {"crawler.db.database"}
    in_init = imports_of("crawler.db", "from .models import Base", MODULES)
    assert {imp.target for imp in in_init} == {"crawler.db.models"}
    up = imports_of("crawler.db.store", "from .. import records", MODULES)
    assert {imp.target for imp in up} == {"crawler.records"}


@pytest.mark.parametrize(
    ("module", "target"),
    [
        ("crawler.config", "crawler.urls"),  # foundations up to pure logic
        ("crawler.urls", "crawler.fetch"),  # pure logic up to an adapter
        ("crawler.fetch", "crawler.db.store"),  # one adapter to the other
        ("crawler.db.store", "crawler.fetch"),
        ("crawler.db.runs", "crawler.pool"),
        ("crawler.pool", "crawler.run"),  # concurrency up to wiring
        ("crawler.run", "crawler.display"),  # wiring up to the entry layer
        ("crawler.records", "crawler.cli"),
    ],
)
def test_upward_imports_are_caught(module: str, target: str) -> None:
    assert layer_violations([Import(module, target, 1)])


@pytest.mark.parametrize(
    ("module", "target"),
    [
        ("crawler.config", "crawler.errors"),
        ("crawler.parse", "crawler.urls"),
        ("crawler.robots", "crawler.urls"),
        ("crawler.db.store", "crawler.db.database"),
        ("crawler.db.store", "crawler.records"),
        ("crawler.pool", "crawler.scope"),
        ("crawler.run", "crawler.db.embedded"),
        ("crawler.cli", "crawler.display"),
        ("crawler.display", "crawler.run"),
    ],
)
def test_allowed_imports_pass(module: str, target: str) -> None:
    assert not layer_violations([Import(module, target, 1)])


def test_third_party_owners_cli_and_cycles_are_caught() -> None:
    assert owner_violations([Import("crawler.pool", "aiohttp", 1)])
    assert owner_violations([Import("crawler.run", "sqlalchemy.ext.asyncio", 1)])
    assert owner_violations([Import("crawler.fetch", "asyncpg", 1)])
    assert owner_violations([Import("crawler.cli", "alembic.command", 1)])
    assert not owner_violations([Import("crawler.db.migrate", "alembic.command", 1)])
    assert not owner_violations([Import("crawler.fetch", "aiohttp", 1)])
    assert cli_violations([Import("crawler.display", "crawler.cli", 1)])
    assert not cli_violations([Import("crawler.__main__", "crawler.cli", 1)])
    assert import_cycles(
        [Import("crawler.urls", "crawler.parse", 1), Import("crawler.parse", "crawler.urls", 1)]
    )


def test_a_module_missing_from_the_map_is_named() -> None:
    assert unmapped(["crawler.newer", "crawler.db.newer", "crawler.urls"]) == ["crawler.newer"]
