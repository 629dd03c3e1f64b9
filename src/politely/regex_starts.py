"""What a regular expression's matches can start with, read from its parse.

The fast path (`politely.lalr_tables`) may only skip text, or take a bulk
match as a state's lexer would make it, where no alternative tried first
could have matched there instead: that is a question about the first
character of every match of an alternative. This answers it from the pattern's
own parse (Python's `re._parser`, the parser `re.compile` runs), erring one
way only: a pattern it cannot read (a back reference, case folding, a class it
does not know) may start with anything.

    >>> atoms = first_atoms(r"\\d+(\\.\\d+)?%", 0)
    >>> may_start_with(atoms, " \\n"), may_start_with(atoms, "7")
    (False, True)
    >>> first_characters(first_atoms(r"(?:[ \\t\\f\\r\\n])+", 0)) == frozenset(" \\t\\f\\r\\n")
    True
    >>> first_atoms(r"a*", 0) is None  # it matches the empty string: it starts anywhere
    True
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from re import _constants as sre
from re import _parser
from typing import Any

# One character a match may start with: an item of the parse that reads one
# character (LITERAL, NOT_LITERAL, ANY, IN), with its argument and the flags in force.
Atom = tuple[Any, Any, int]

_ONE_CHARACTER = frozenset({sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN})
_ZERO_WIDTH = frozenset({sre.AT, sre.ASSERT, sre.ASSERT_NOT})  # what follows starts the match
_REPEATS = frozenset({sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT})
_CATEGORIES = {
    sre.CATEGORY_DIGIT: r"\d",
    sre.CATEGORY_NOT_DIGIT: r"\D",
    sre.CATEGORY_SPACE: r"\s",
    sre.CATEGORY_NOT_SPACE: r"\S",
    sre.CATEGORY_WORD: r"\w",
    sre.CATEGORY_NOT_WORD: r"\W",
}
_FEW = 256  # characters of a range `first_characters` spells out


@lru_cache(maxsize=512)  # the grammar's terminals, each asked about by every state's lexer
def first_atoms(source: str, flags: int) -> tuple[Atom, ...] | None:
    """Every one-character item a match of the pattern can start with (more, never
    fewer); None when it can match the empty string or cannot be read."""
    parsed = _parser.parse(source, flags)
    atoms, nullable = _sequence(parsed, parsed.state.flags)
    return None if atoms is None or nullable else tuple(atoms)


def _sequence(items: Iterable[tuple[Any, Any]], flags: int) -> tuple[list[Atom] | None, bool]:
    """The first atoms of items read one after another, and whether all can be empty."""
    atoms: list[Atom] = []
    for op, argument in items:
        found, nullable = _item(op, argument, flags)
        if found is None:
            return None, True
        atoms += found
        if not nullable:
            return atoms, False
    return atoms, True


def _item(op: Any, argument: Any, flags: int) -> tuple[list[Atom] | None, bool]:
    """One item's first atoms, and whether it can match the empty string."""
    if op in _ONE_CHARACTER:
        return (None if flags & re.IGNORECASE else [(op, argument, flags)]), False
    if op in _ZERO_WIDTH:  # (a lookaround only narrows what may follow: ignored)
        return [], True
    if op is sre.BRANCH:
        atoms: list[Atom] = []
        nullable = False
        for alternative in argument[1]:
            found, empty = _sequence(alternative, flags)
            if found is None:
                return None, True
            atoms += found
            nullable = nullable or empty
        return atoms, nullable
    if op is sre.SUBPATTERN:
        _, add_flags, _, items = argument
        return _sequence(items, flags | add_flags)
    if op is sre.ATOMIC_GROUP:
        return _sequence(argument, flags)
    if op in _REPEATS:
        low, _, items = argument
        found, empty = _sequence(items, flags)
        return found, empty or low == 0
    return None, True  # a back reference, a conditional: anything


def may_start_with(atoms: tuple[Atom, ...] | None, characters: Iterable[str]) -> bool:
    """Whether a match may start with one of `characters` (None atoms: it may)."""
    if atoms is None:
        return True
    return any(_reads(atom, character) for atom in atoms for character in characters)


def _reads(atom: Atom, character: str) -> bool:
    """Whether the atom may match `character` (True where it cannot tell)."""
    op, argument, flags = atom
    code = ord(character)
    if op is sre.LITERAL:
        return bool(argument == code)
    if op is sre.NOT_LITERAL:
        return bool(argument != code)
    if op is not sre.IN:  # ANY
        return True
    negate = hit = False
    for kind, value in argument:
        if kind is sre.NEGATE:
            negate = True
        elif kind is sre.LITERAL:
            hit = hit or value == code
        elif kind is sre.RANGE:
            hit = hit or value[0] <= code <= value[1]
        elif kind is sre.CATEGORY and value in _CATEGORIES:
            hit = hit or re.fullmatch(_CATEGORIES[value], character, flags & re.ASCII) is not None
        else:
            return True
    return hit != negate


def first_characters(atoms: tuple[Atom, ...] | None) -> frozenset[str] | None:
    """Every character a match may start with, when the atoms name them one by one
    (literals, small ranges); else None."""
    if atoms is None:
        return None
    characters: set[str] = set()
    for op, argument, _ in atoms:
        if op is sre.LITERAL:
            characters.add(chr(argument))
        elif op is sre.IN:
            for kind, value in argument:
                if kind is sre.LITERAL:
                    characters.add(chr(value))
                elif kind is sre.RANGE and value[1] - value[0] < _FEW:
                    characters.update(map(chr, range(value[0], value[1] + 1)))
                else:
                    return None
        else:
            return None
    return frozenset(characters)
