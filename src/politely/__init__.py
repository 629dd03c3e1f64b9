"""politely: a proactive chat-invitation rules engine that never pesters visitors.

>>> import politely
>>> engine = politely.Engine.from_source('rule hi { when page.dwell >= 30s say "Hi!" }')
>>> engine.evaluate({"visitor": "v", "event": "page_view", "url": "/", "at": 0}).recheck_in
30

The names below are imported on first use (PEP 562), so a command that only
checks rules never loads the engine, pydantic or the stores.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from politely.checker import CheckResult, check_path, check_sources
    from politely.compiler import compile_rules
    from politely.diagnostics import Diagnostic
    from politely.engine import Engine
    from politely.errors import (
        EventError,
        FormatError,
        PolitelyError,
        RulesError,
        StoreError,
        TrafficError,
    )
    from politely.models import Decision, Event, Invitation
    from politely.ruleset import RuleSet
    from politely.stats import Stats
    from politely.stores import MemoryStore, Store, open_store

__version__ = "0.1.0"

# Each public name and the module that defines it.
_HOMES = {
    "CheckResult": "politely.checker",
    "Decision": "politely.models",
    "Diagnostic": "politely.diagnostics",
    "Engine": "politely.engine",
    "Event": "politely.models",
    "EventError": "politely.errors",
    "FormatError": "politely.errors",
    "Invitation": "politely.models",
    "MemoryStore": "politely.stores",
    "PolitelyError": "politely.errors",
    "RuleSet": "politely.ruleset",
    "RulesError": "politely.errors",
    "Stats": "politely.stats",
    "Store": "politely.stores",
    "StoreError": "politely.errors",
    "TrafficError": "politely.errors",
    "check_path": "politely.checker",
    "check_sources": "politely.checker",
    "compile_rules": "politely.compiler",
    "open_store": "politely.stores",
}

__all__ = [
    "CheckResult",
    "Decision",
    "Diagnostic",
    "Engine",
    "Event",
    "EventError",
    "FormatError",
    "Invitation",
    "MemoryStore",
    "PolitelyError",
    "RuleSet",
    "RulesError",
    "Stats",
    "Store",
    "StoreError",
    "TrafficError",
    "__version__",
    "check_path",
    "check_sources",
    "compile_rules",
    "open_store",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:  # also how `from politely import parser` finds the submodule
        raise AttributeError(f"module 'politely' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
