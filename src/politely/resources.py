"""Files politely ships beside its code: the grammar.

The grammar is written once, in `grammar/politely.lark` at the top of the
repository. The wheel carries it inside the package, as `politely/politely.lark`
(hatch's `force-include`, see pyproject.toml). A source checkout or an editable
install has no package copy: the grammar is then read from `grammar/` next to
the source tree (`src/politely/../../grammar/`).

    >>> grammar_text().startswith("//")
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

GRAMMAR = "politely.lark"
SOURCE_TREE_GRAMMAR = Path(__file__).resolve().parent.parent.parent / "grammar" / GRAMMAR


def grammar_file() -> Traversable:
    """Where the grammar is: the package's copy, else `grammar/` beside the source.

    An installed package is a folder, so its copy is a plain file beside this
    module; only a zipped package needs `importlib.resources` (slower to import
    than a whole `politely check` of a small site takes to run)."""
    beside = Path(__file__).with_name(GRAMMAR)
    if beside.is_file():
        return beside
    if not Path(__file__).is_file():  # imported from an archive
        from importlib.resources import files

        packaged = files("politely") / GRAMMAR
        if packaged.is_file():
            return packaged
    if SOURCE_TREE_GRAMMAR.is_file():
        return SOURCE_TREE_GRAMMAR
    raise FileNotFoundError(
        f"politely's grammar is missing: neither the package's {GRAMMAR} nor "
        f"{SOURCE_TREE_GRAMMAR} exists; reinstall politely"
    )


def grammar_text() -> str:
    return grammar_file().read_text(encoding="utf-8")
