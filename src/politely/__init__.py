"""politely: a proactive chat-invitation rules engine that never pesters visitors.

>>> import politely
>>> engine = politely.Engine.from_source('rule hi { when page.dwell >= 30s say "Hi!" }')
>>> engine.evaluate({"visitor": "v", "event": "page_view", "url": "/", "at": 0}).recheck_in
30
"""

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
