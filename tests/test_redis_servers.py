"""The tests' own Redis servers: with several test workers starting servers at once, a
free port can be taken before the server binds it, and a test must never end up on
another worker's server (each flushes the server it uses)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import redis_servers
from redis_servers import Server


@pytest.fixture
def holder() -> Iterator[Server]:
    """A server holding a port, as another worker's would."""
    started = Server()
    yield started
    started.kill()


def test_a_server_whose_free_port_was_taken_starts_on_another(
    holder: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = iter([holder.port])
    real_free_port = redis_servers.free_port
    monkeypatch.setattr(
        redis_servers, "free_port", lambda **kw: next(ports, None) or real_free_port(**kw)
    )
    mine = Server()
    try:
        assert mine.port != holder.port
        assert mine.process is not None
        assert f"process_id:{mine.process.pid}\r\n".encode() in mine.command("INFO", "server")
    finally:
        mine.kill()
