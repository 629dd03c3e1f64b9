"""Helpers for the HTTP service tests: a site folder, an app, a client over ASGI."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from conftest import T0
from politely.errors import StoreError
from politely.service import Settings, create_app
from politely.stores import MemoryStore

TOKEN = "s3cret-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
HELLO = """\
rule hello {
    when page.dwell >= 20s and agents.available > 0
    say "Hi! Any questions?"
}
"""
PRICING = """\
rule pricing {
    when page.path matches "/pricing*" and agents.available > 0
    say "Comparing plans?"
}
"""


def site_folder(root: Path, toml: str | None = None, rules: str = HELLO) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "hello.rules").write_text(rules, encoding="utf-8")
    if toml is not None:
        (root / "site.toml").write_text(toml, encoding="utf-8")
    return root


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_app(path: Path, store: Any = None, clock: Any = None, **settings: Any) -> FastAPI:
    settings.setdefault("admin_token", TOKEN)
    return create_app(Settings(path, **settings), store=store, clock=clock or Clock())


@asynccontextmanager
async def running(
    app: FastAPI, client: tuple[str, int] = ("127.0.0.1", 5555)
) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://politely") as http:
            yield http


class FlakyStore(MemoryStore):
    """A memory store that can be made to raise, or to hang until released."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self.release = threading.Event()
        self.release.set()
        self.loads = 0

    def _trouble(self) -> None:
        if self.failing:
            raise StoreError("the store is down")
        self.release.wait(timeout=30)

    def load(self, *args: Any, **kwargs: Any) -> Any:
        self.loads += 1
        self._trouble()
        return super().load(*args, **kwargs)

    def ping(self) -> None:
        self._trouble()
