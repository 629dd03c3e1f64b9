"""Helpers the scenario tests share: sending events to an engine, and time units."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from politely import Decision, Engine

MakeEngine = Callable[..., Engine]
MINUTE, HOUR, DAY = 60, 3600, 86400


def send(engine: Engine, visitor: str, event: str, **fields: Any) -> Decision:
    return engine.evaluate({"visitor": visitor, "event": event, **fields})


def view(engine: Engine, visitor: str = "v1", url: str = "/", **fields: Any) -> Decision:
    """A page view (of `/` unless told otherwise)."""
    return send(engine, visitor, "page_view", url=url, **fields)


def tick(engine: Engine, visitor: str = "v1", **fields: Any) -> Decision:
    return send(engine, visitor, "tick", **fields)
