"""The closed sets of crawler.kinds agree with the README that documents them."""

from __future__ import annotations

import re
from pathlib import Path

from crawler.kinds import ErrorKind

README = Path(__file__).parents[2] / "README.md"


def readme_error_kinds() -> list[str]:
    """The kinds named in the first column of the README's "Error kinds" table."""
    text = README.read_text(encoding="utf-8")
    table = text.split("\nError kinds:\n", 1)[1].split("\n\n", 1)[0].strip()
    kinds = []
    for line in table.splitlines()[2:]:  # past the header and its rule
        first_cell = line.split("|")[1]
        kinds.extend(re.findall(r"`([a-z_]+)`", first_cell))
    return kinds


def test_the_readme_documents_every_error_kind_once() -> None:
    documented = readme_error_kinds()
    assert len(documented) == len(set(documented))
    assert set(documented) == {kind.value for kind in ErrorKind}
