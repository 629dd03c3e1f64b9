"""Where state lives: a small protocol in domain terms, and stores chosen by URL.

>>> store = open_store("memory://")
>>> type(store).__name__
'MemoryStore'
"""

from __future__ import annotations

from politely.errors import StoreError
from politely.stores.base import Store
from politely.stores.memory import MemoryStore
from politely.stores.sqlite import SQLiteStore, open_sqlite

__all__ = ["MemoryStore", "SQLiteStore", "Store", "open_store"]


def open_store(url: str = "memory://") -> Store:
    """A store for a URL: `memory://`, `sqlite:///path.db`, `redis://host:port/db`
    or `redis+cluster://host:port` (docs/stores.md).

    A store keeps each visitor as long as the engine's write asks (the site's
    retention, never less than its rules need), whoever built the store.
    """
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "memory":
        return MemoryStore()
    if scheme == "sqlite":
        return open_sqlite(url)
    if scheme in ("redis", "rediss", "redis+cluster"):
        from politely.stores.redis import open_redis  # redis-py only when asked for

        return open_redis(url)
    raise StoreError(
        f"unknown store URL {url!r}: use memory://, sqlite:///path.db, redis:// or redis+cluster://"
    )
