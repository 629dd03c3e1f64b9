"""Where state lives: a small protocol in domain terms, and stores chosen by URL.

>>> store = open_store("memory://")
>>> type(store).__name__
'MemoryStore'
"""

from __future__ import annotations

from collections.abc import Callable

from politely.stores.base import Store
from politely.stores.memory import MemoryStore

__all__ = ["MemoryStore", "Store", "open_store"]


def open_store(
    url: str = "memory://",
    *,
    clock: Callable[[], float] | None = None,
    horizon: float | None = None,
) -> Store:
    """A store for a URL: `memory://` (others arrive with their own issue)."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "memory":
        return MemoryStore(clock=clock, ttl=horizon)
    raise ValueError(f"unknown store URL {url!r}: use memory://")
