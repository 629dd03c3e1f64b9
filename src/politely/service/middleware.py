"""Small ASGI middlewares: body size limit, per-site CORS, one JSON log line a request."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from politely.service.metrics import Metrics

log = logging.getLogger("politely.service")

EVENTS_PATH = re.compile(r"^/v1/sites/([^/]+)/events$")


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: Any = ()) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class BodyLimit:
    """413 for a body over `limit` bytes, before the endpoint runs: at once when
    Content-Length says so, else by counting what arrives (chunked bodies)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = {"detail": f"request body over {self.limit} bytes"}
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_json(send, 400, {"detail": "bad Content-Length"})
                    return
                if declared > self.limit:
                    await _send_json(send, 413, too_big)
                    return
        # Read the whole (small) body first, so the endpoint only runs on a body that fits.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _send_json(send, 413, too_big)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class SiteCors:
    """CORS for the public events endpoint only, limited to each site's origins,
    without credentials. Private endpoints get no CORS headers at all."""

    def __init__(self, app: ASGIApp, origins_of: Callable[[str], tuple[str, ...]]) -> None:
        self.app = app
        self.origins_of = origins_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = EVENTS_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        origin = _header(scope, b"origin") if match else None
        if match is None or origin is None:
            await self.app(scope, receive, send)
            return
        allowed = origin in self.origins_of(match.group(1))
        vary = [(b"vary", b"Origin")]
        cors = (
            # Retry-After is not a safelisted header: exposed, the snippet can honour a 429
            [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-expose-headers", b"Retry-After"),
            ]
            if allowed
            else []
        )
        if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method"):
            if not allowed:
                await _send_json(send, 400, {"detail": "origin not allowed"}, vary)
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [
                        *cors,
                        *vary,
                        (b"access-control-allow-methods", b"POST"),
                        (b"access-control-allow-headers", b"content-type"),
                        (b"access-control-max-age", b"600"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *cors, *vary]
            await send(message)

        await self.app(scope, receive, send_with_cors)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class AccessLog:
    """One JSON log line per request (route, status, duration, visitor id: no other
    personal data) and the request metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics, router: Router) -> None:
        self.app = app
        self.metrics = metrics
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            duration = time.perf_counter() - start
            route = self._route(scope)
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route, str(status)).observe(duration)
            line = {
                "event": "request",
                "method": scope["method"],
                "route": route,
                "status": status,
                "duration_ms": round(duration * 1000, 3),
            }
            visitor = scope.get("state", {}).get("visitor")
            if visitor is not None:
                line["visitor"] = visitor
            site = scope.get("path_params", {}).get("site")
            if site is not None and "route" in scope:
                line["site"] = site
            log.info(json.dumps(line))

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is not None:
            return str(route.path)
        for candidate in self.router.routes:
            if candidate.matches(scope)[0] == Match.FULL:
                return str(getattr(candidate, "path", "<other>"))
        return "<unmatched>"
