"""Shared test helpers: an injected clock, engines from source, CI strictness."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest

from politely import Engine
from redis_servers import make_redis_store, redis_kind, redis_store  # noqa: F401  (fixtures)

# Monday 2026-01-05 10:00:00 UTC: a whole second, inside most schedules.
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC).timestamp()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(module: str) -> ModuleType:
    """Import an optional test dependency: skip locally if missing, fail under CI=true."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if IN_CI:
            pytest.fail(f"{module} is required under CI=true but is not installed")
        pytest.skip(f"{module} is not installed")


class FakeClock:
    """A clock tests move by hand; never sleeps."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_engine(clock: FakeClock) -> Callable[..., Engine]:
    """`make_engine(source)` → an Engine on the test clock, trusting no event time."""

    def make(source: str, **options: Any) -> Engine:
        options.setdefault("clock", clock)
        options.setdefault("trust_event_time", False)
        return Engine.from_source(source, **options)

    return make
