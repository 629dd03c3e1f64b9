"""Rate limits of the public endpoint, counted where the store is shared.

With a `redis://` (or `rediss://`) store the counters live on the same Redis
server, and with `redis+cluster://` on the same Cluster, through the `limits`
library's asyncio Redis storage (redis-py's asyncio client): several
instances of the service then count one client's requests together. With any
other store they are kept in this process's memory.

When the shared counters cannot be reached (an error, or no answer within the
budget) the request is counted in memory instead, and the shared counters are
left alone for `BREAKER` seconds, so a dead Redis costs one timeout a second,
not one a request. The decision itself then degrades on the store, as usual.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from limits import RateLimitItem
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger("politely.service")

KEY_PREFIX = "politely:limits"
BREAKER = 1.0  # seconds the shared counters are skipped after they failed
TIMEOUT = 0.1  # seconds: the Redis client's timeouts unless the store URL says otherwise
STORE_OPTIONS = ("timeout", "connect_timeout", "socket_timeout", "breaker")  # politely's own


def shared_storage_url(store_url: str) -> tuple[str, dict[str, float]] | None:
    """The `limits` storage URI and client options for a store URL, or None when the
    store is not Redis (the counters then stay in memory).

    >>> shared_storage_url("redis://127.0.0.1:6379/0?timeout=2")
    ('async+redis://127.0.0.1:6379/0', {'socket_timeout': 2.0, 'socket_connect_timeout': 2.0})
    >>> shared_storage_url("redis+cluster://10.0.0.1:7000")[0]
    'async+redis+cluster://10.0.0.1:7000'
    >>> shared_storage_url("sqlite:///state.db") is None
    True
    """
    parts = urlsplit(store_url)
    if parts.scheme not in ("redis", "rediss", "redis+cluster"):
        return None
    query = dict(parse_qsl(parts.query))
    timeout = float(query.get("timeout", TIMEOUT))
    options = {
        "socket_timeout": float(query.get("socket_timeout", timeout)),
        "socket_connect_timeout": float(query.get("connect_timeout", timeout)),
    }
    rest = urlencode({k: v for k, v in query.items() if k not in STORE_OPTIONS})
    plain = urlunsplit((f"async+{parts.scheme}", parts.netloc, parts.path, rest, ""))
    return plain, options


class RateLimiter:
    """A moving-window limiter: `await hit(item, *keys)` is False over the limit."""

    def __init__(self, store_url: str, budget: float) -> None:
        self.budget = budget
        self.memory = MovingWindowRateLimiter(MemoryStorage())
        self.shared_url = shared_storage_url(store_url)
        self.shared: Any = None  # limits.aio.strategies.MovingWindowRateLimiter
        self._storage: Any = None
        self._skip_until = 0.0
        self.failures = 0  # calls to the shared counters that failed

    @property
    def where(self) -> str:
        return "memory" if self.shared_url is None else self.shared_url[0].split("://")[0][6:]

    async def start(self) -> None:
        """Build the shared limiter inside the running event loop (its client is bound to it)."""
        if self.shared_url is None or self.shared is not None:
            return
        from limits.aio.storage import RedisClusterStorage, RedisStorage
        from limits.aio.strategies import MovingWindowRateLimiter as AsyncLimiter

        uri, options = self.shared_url
        kind = RedisClusterStorage if uri.startswith("async+redis+cluster") else RedisStorage
        self._storage = kind(uri, implementation="redispy", key_prefix=KEY_PREFIX, **options)  # type: ignore[arg-type]
        self.shared = AsyncLimiter(self._storage)

    async def stop(self) -> None:
        storage, self._storage, self.shared = self._storage, None, None
        if storage is not None:
            client = storage.bridge.get_connection()
            try:
                await client.aclose()
            except Exception as error:  # closing a broken connection: nothing to keep
                log.debug("rate limit storage close: %r", error)

    async def _shared(self, method: str, item: RateLimitItem, keys: tuple[str, ...]) -> Any:
        """A call to the shared limiter, or None when it is off, skipped or failing."""
        if self.shared is None or time.monotonic() < self._skip_until:
            return None
        try:
            return await asyncio.wait_for(getattr(self.shared, method)(item, *keys), self.budget)
        except Exception as error:
            self.failures += 1
            self._skip_until = time.monotonic() + BREAKER
            log.warning(
                json.dumps(
                    {"event": "rate_limits_unshared", "error": repr(error), "for_s": BREAKER}
                )
            )
            return None

    async def hit(self, item: RateLimitItem, *keys: str) -> bool:
        shared = await self._shared("hit", item, keys)
        if shared is not None:
            return bool(shared)
        return self.memory.hit(item, *keys)

    async def retry_after(self, item: RateLimitItem, *keys: str) -> int:
        """Whole seconds (at least 1) until the window has room again."""
        stats = await self._shared("get_window_stats", item, keys)
        if stats is None:
            stats = self.memory.get_window_stats(item, *keys)
        return max(1, math.ceil(float(stats.reset_time) - time.time()))
