"""Prometheus metrics of one app (its own registry, so several apps can share a process).

With `PROMETHEUS_MULTIPROC_DIR` set (several workers), every worker writes its
values there and `/metrics` sums the folder, whichever worker answers.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "politely_requests", "HTTP requests", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "politely_request_duration_seconds",
            "HTTP request duration",
            ["route", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.decisions = Counter(
            "politely_decisions", "decisions by outcome", ["site", "outcome"], registry=r
        )
        self.invitations = Counter(
            "politely_invitations", "invitations by rule", ["site", "rule"], registry=r
        )
        self.store_errors = Counter(
            "politely_store_errors", "store errors and timeouts", ["site"], registry=r
        )
        self.degraded = Counter(
            "politely_degraded_decisions", "decisions made without the store", ["site"], registry=r
        )
        self.rate_limited = Counter(
            "politely_rate_limited", "requests refused with 429", ["site", "limit"], registry=r
        )
        self.rules_swaps = Counter(
            "politely_rules_swaps", "rule sets swapped in", ["site"], registry=r
        )

    def render(self) -> tuple[bytes, str]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
