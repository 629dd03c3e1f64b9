"""Reading a site's rule files: one file or a folder of them, as text.

Kept apart from checking so the checker works on texts alone (the service
has no files). Bad bytes become replacement characters, which the checker
reports; the byte-order mark goes before parsing so carets line up.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from politely import nodes as n
from politely.parser import BOM


def source_paths(path: str | Path) -> list[Path]:
    """A `.rules` file, or every `*.rules` file of a folder in file-name order.

    Raises FileNotFoundError when there is nothing to read.
    """
    root = Path(path)
    if root.is_dir():
        files = sorted(root.glob("*.rules"), key=lambda p: p.name)
        if not files:
            raise FileNotFoundError(f"{root}: no *.rules files in this folder")
        return files
    if root.is_file():
        return [root]
    raise FileNotFoundError(f"{root}: no such file or folder")


def read_sources(path: str | Path) -> dict[str, str]:
    """The site's files and their texts. Files that are not UTF-8 are read with
    replacement characters; the checker reports them."""
    return {str(f): f.read_bytes().decode("utf-8", errors="replace") for f in source_paths(path)}


def without_bom(sources: Mapping[str, str]) -> dict[str, str]:
    """The texts as the parser sees them, so carets line up."""
    return {path: text.removeprefix(BOM) for path, text in sources.items()}


def first_bad_byte(text: str) -> n.Span | None:
    """Where a file that is not UTF-8 first went wrong (its line), or None."""
    if "\ufffd" not in text:
        return None
    line = text[: text.index("\ufffd")].count("\n") + 1
    return n.Span(line, 1, line, 2)
