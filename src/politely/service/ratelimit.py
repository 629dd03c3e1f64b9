"""Rate limits of the public endpoint, counted where the store is shared.

With a `redis://` (or `rediss://`) store the counters live on the same Redis
server, and with `redis+cluster://` on the same Cluster, through the `limits`
library's asyncio Redis storage (redis-py's asyncio client): several
instances of the service then count one client's requests together. With any
other store they are kept in this process's memory (`LocalWindows`: the same
moving window, without threads or locks: the event loop is its only caller).

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
from collections import deque
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from limits import RateLimitItem

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


class LocalWindows:
    """Moving windows in this process's memory: per key, the times of the requests
    admitted within the last period (at most the limit's amount of them), oldest
    first. A hit is O(1) amortized; keys idle for their whole period are swept
    every `SWEEP_EVERY` hits.

    >>> from limits import parse
    >>> windows, item = LocalWindows(), parse("2/minute")
    >>> [windows.hit(item, "v1", now=t) for t in (0.0, 1.0, 2.0, 60.5)]
    [True, True, False, True]
    >>> windows.retry_after(item, "v1", now=61.0)
    1
    """

    SWEEP_EVERY = 8192

    def __init__(self) -> None:
        self.windows: dict[tuple[Any, ...], tuple[float, deque[float]]] = {}
        self._hits = 0

    def hit(self, item: RateLimitItem, *keys: str, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        self._hits += 1
        if self._hits % self.SWEEP_EVERY == 0:
            self.sweep(now)
        key = (item.amount, item.get_expiry(), *keys)
        found = self.windows.get(key)
        if found is None:
            found = self.windows[key] = (float(item.get_expiry()), deque())
        period, times = found
        while times and times[0] <= now - period:
            times.popleft()
        if len(times) >= item.amount:
            return False
        times.append(now)
        return True

    def retry_after(self, item: RateLimitItem, *keys: str, now: float | None = None) -> int:
        now = time.time() if now is None else now
        found = self.windows.get((item.amount, item.get_expiry(), *keys))
        if found is None or not found[1]:
            return 1
        period, times = found
        return max(1, math.ceil(times[0] + period - now))

    def sweep(self, now: float) -> None:
        stale = [
            key
            for key, (period, times) in self.windows.items()
            if not times or times[-1] <= now - period
        ]
        for key in stale:
            del self.windows[key]


class RateLimiter:
    """A moving-window limiter: `await hit(item, *keys)` is False over the limit."""

    def __init__(self, store_url: str, budget: float) -> None:
        self.budget = budget
        self.memory = LocalWindows()
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

    async def check(
        self, limits: Sequence[tuple[str, RateLimitItem, tuple[str, ...]]]
    ) -> tuple[str, RateLimitItem, tuple[str, ...]] | None:
        """Count a request against each (name, item, keys); the first limit it is
        over, or None. On Redis the hits go out together (one round trip's wait
        for all, not one each); in memory they stop at the first refusal."""
        if self.shared is not None and time.monotonic() >= self._skip_until and len(limits) > 1:
            hits = await asyncio.gather(*(self._shared("hit", i, k) for _, i, k in limits))
            if all(hit is not None for hit in hits):
                return next((lim for lim, hit in zip(limits, hits, strict=True) if not hit), None)
        for limit in limits:
            _, item, keys = limit
            if not await self.hit(item, *keys):
                return limit
        return None

    async def retry_after(self, item: RateLimitItem, *keys: str) -> int:
        """Whole seconds (at least 1) until the window has room again."""
        stats = await self._shared("get_window_stats", item, keys)
        if stats is None:
            return self.memory.retry_after(item, *keys)
        return max(1, math.ceil(float(stats.reset_time) - time.time()))
