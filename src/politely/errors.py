"""Every exception politely raises derives from one root.

    PolitelyError
    ├── RulesError        rules that do not check: carries the diagnostics
    ├── FormatError       a file `politely fmt` cannot rewrite without changing it
    ├── EventError        an event that is not valid JSON of the event shape
    ├── TrafficError      a bad line in a traffic file (simulate, explain)
    └── StoreError        a store that cannot be reached or answered wrongly

Backend errors (sqlite3, redis) are translated into `StoreError` at the store
boundary and raised `from` the original, so callers catch one family.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from politely.diagnostics import Diagnostic


class PolitelyError(Exception):
    """The root of politely's exceptions."""


class RulesError(PolitelyError):
    """A rule set with errors; `diagnostics` holds all of them, warnings included."""

    def __init__(self, diagnostics: Sequence[Diagnostic], sources: Mapping[str, str]) -> None:
        from politely.diagnostics import render_all, summary

        self.diagnostics = tuple(diagnostics)
        self.sources = dict(sources)
        errors = [d for d in self.diagnostics if d.is_error]
        super().__init__(f"{summary(errors)}\n{render_all(errors, self.sources)}")


class FormatError(PolitelyError, ValueError):
    """A file with a syntax error or a malformed value; `diagnostic` says which.

    Formatting it would silently change its meaning, so the formatter refuses.
    """

    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic
        super().__init__(diagnostic.message)


class EventError(PolitelyError, ValueError):
    """An event that does not have the event shape (docs/contract.md, section 1)."""


class TrafficError(PolitelyError):
    """A traffic file line that is not a valid event; the message names the line."""


class StoreError(PolitelyError):
    """A store that is unreachable, too slow, or answered something unexpected."""
