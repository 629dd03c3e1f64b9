"""The HTTP service: `create_app(settings)` builds a FastAPI app over the library.

The service is a thin shell: every decision, explanation, block and statistic
comes from a site's `Engine`; this module adds HTTP, authentication, limits,
metrics and logs. Each store call runs in a thread: the public endpoint waits
at most `store_budget` seconds, then answers without an invitation
(`degraded`), as the engine does when the store raises.
"""

import asyncio
import hmac
import ipaddress
import json
import logging
import os
import secrets
import sys
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Header, HTTPException, Request, Security
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from politely.engine import DEGRADED_RECHECK, Clock
from politely.errors import EventError, RulesError, StoreError
from politely.explain import Explanation
from politely.models import Decision
from politely.service.config import ConfigError, discover_sites
from politely.service.metrics import Metrics
from politely.service.middleware import AccessLog, BodyLimit, SiteCors
from politely.service.ratelimit import RateLimiter
from politely.service.schemas import (
    VISITOR_PATTERN,
    AdminEvent,
    AgentsIn,
    BlockIn,
    BlockOut,
    BlocksOut,
    DiagnosticOut,
    Done,
    Health,
    InvalidRequest,
    Problem,
    PublicEvent,
    RulesIn,
    RulesOut,
    RulesProblem,
    RulesSwapped,
)
from politely.service.sites import Site
from politely.service.web import router as website
from politely.stats import Stats
from politely.stores import MemoryStore, Store, open_store

log = logging.getLogger("politely.service")
T = TypeVar("T")
TOKEN_ENV = "POLITELY_ADMIN_TOKEN"
STORE_THREADS = 32  # store calls at once per process (Redis: each waits on the network)
SQLITE_THREADS = 2  # SQLite: one writer at a time anyway (see Settings.store_threads)


@dataclass(frozen=True)
class Settings:
    path: Path
    store_url: str = "memory://"
    admin_token: str | None = None  # None: POLITELY_ADMIN_TOKEN, else a random one, printed once
    body_limit: int = 64 * 1024
    store_budget: float = 0.1  # seconds the public endpoint waits for the store
    admin_budget: float = 5.0  # seconds private endpoints wait for the store (then 503)
    ready_budget: float = 1.0  # seconds /readyz waits for the store's ping
    # The benchmark's yardstick: POST /_bench/sites/{site}/events parses the event as
    # the events endpoint does and answers a constant decision, without the engine,
    # the store or the rate limits. Off unless asked for; never in the schema.
    bare_route: bool = False
    # Threads for store calls; None: by store. SQLite takes one writer at a time,
    # and writers that wait for its lock sleep in its busy handler: 2 threads
    # queue them here instead (benchmark J: 32 threads left ~7% of the answers
    # degraded and p99 at the 100 ms budget; 2 threads, none, and more requests/s).
    store_threads: int | None = None


class StoreTimeoutError(StoreError):
    """The store did not answer within the budget."""


class Service:
    """The app's state: settings, the store, the sites and their engines."""

    def __init__(self, settings: Settings, store: Store | None, clock: Clock | None) -> None:
        self.settings = settings
        self.given_store = store
        self.store: Store | None = store
        self.clock = clock
        self.sites: dict[str, Site] = {}
        self.metrics = Metrics()
        self.limiter = RateLimiter(settings.store_url, settings.store_budget)
        self.executor = self.new_executor(self.threads_for(settings))
        self.stopped = False
        self.inline = False
        self.locks: dict[str, asyncio.Lock] = {}
        token = settings.admin_token or os.environ.get(TOKEN_ENV)
        if not token:
            token = secrets.token_urlsafe(32)
            print(f"politely: admin token (generated, shown once): {token}", file=sys.stderr)
        self.token = token.encode()

    @staticmethod
    def threads_for(settings: Settings) -> int:
        if settings.store_threads is not None:
            return settings.store_threads
        return SQLITE_THREADS if settings.store_url.startswith("sqlite:") else STORE_THREADS

    @staticmethod
    def new_executor(threads: int) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="politely-store")

    def start(self) -> None:
        places = discover_sites(self.settings.path)
        if self.stopped:  # the lifespan runs again (tests, schemathesis): a new pool
            self.executor = self.new_executor(self.threads_for(self.settings))
            self.stopped = False
        if self.store is None:
            self.store = open_store(self.settings.store_url)
        store = self.store
        # Inline only a memory store the service opened itself: a given store (a
        # test's failing or hanging one) keeps the thread and its budget.
        self.inline = self.given_store is None and type(store) is MemoryStore
        self.sites = {name: Site(place, store, self.clock) for name, place in places.items()}
        self.locks = {name: asyncio.Lock() for name in self.sites}
        for site in self.sites.values():
            log_swap(site, "start")

    def stop(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.stopped = True
        if self.given_store is None and self.store is not None:
            self.store.close()
            self.store = None

    async def call(self, function: Callable[[], T], budget: float) -> T:
        """Run a (store-touching) call in a thread; StoreTimeoutError after `budget` seconds.

        On the memory store the call runs inline instead: it never waits on I/O,
        and a thread hop would cost more than the call (about 0.25 ms a request)."""
        if self.inline:
            return function()
        future = asyncio.get_running_loop().run_in_executor(self.executor, function)
        try:
            async with asyncio.timeout(budget):
                return await future
        except TimeoutError as error:
            raise StoreTimeoutError(f"no answer from the store within {budget}s") from error

    def origins_of(self, name: str) -> tuple[str, ...]:
        site = self.sites.get(name)
        return site.config.origins if site is not None else ()

    def site(self, name: str) -> Site:
        site = self.sites.get(name)
        if site is None:
            raise HTTPException(404, f"no site named {name!r}")
        return site


def log_swap(site: Site, how: str) -> None:
    line = {
        "event": "rules",
        "how": how,
        "site": site.name,
        "ruleset": site.engine.rules.hash,
        "rules": len(site.engine.rules.rules),
        "files": sorted(site.sources),
    }
    log.info(json.dumps(line))


def create_app(
    settings: Settings, *, store: Store | None = None, clock: Clock | None = None
) -> FastAPI:
    """The service's app. Its lifespan compiles every site's rules and opens the store
    (unless one is given; a given store is not closed at shutdown)."""
    service = Service(settings, store, clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        await service.limiter.start()
        try:
            yield
        finally:
            await service.limiter.stop()
            service.stop()

    app = FastAPI(
        title="politely",
        summary="Proactive chat invitations that never pester visitors.",
        version="1",
        lifespan=lifespan,
        # Decision drops unset `degraded`/`visitor` with a serializer; the validation
        # schema is the one that lists its fields.
        separate_input_output_schemas=False,
    )
    app.state.service = service
    bearer = HTTPBearer(auto_error=False, description="the admin token")

    # Dependencies are coroutines: FastAPI runs a plain function in a worker thread.
    async def admin(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ) -> None:
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, service.token):
            raise HTTPException(
                401, "a valid admin token is needed", {"WWW-Authenticate": "Bearer"}
            )

    async def site_of(site: Annotated[str, PathParam(max_length=100)]) -> Site:
        return service.site(site)

    SiteArg = Annotated[Site, Depends(site_of)]  # noqa: N806
    Visitor = Annotated[  # noqa: N806
        str, PathParam(min_length=1, max_length=200, pattern=VISITOR_PATTERN)
    ]
    malformed = {
        "model": Problem,
        "description": "a body that is not JSON, or a bad Content-Length",
    }
    public_errors: dict[int | str, dict[str, Any]] = {
        400: malformed,
        404: {"model": Problem, "description": "unknown site"},
        413: {"model": Problem, "description": "body too large"},
        422: {"model": InvalidRequest, "description": "invalid body or parameter"},
        429: {"model": Problem, "description": "rate limited; see Retry-After"},
    }
    private_errors: dict[int | str, dict[str, Any]] = {
        400: malformed,
        401: {"model": Problem, "description": "missing or wrong admin token"},
        404: {"model": Problem, "description": "unknown site"},
        413: {"model": Problem, "description": "body too large"},
        422: {"model": InvalidRequest, "description": "invalid body or parameter"},
        503: {"model": Problem, "description": "the store did not answer"},
    }

    rules_refused = {
        "model": RulesProblem | InvalidRequest,
        "description": "rules that do not check (every diagnostic), or an invalid body",
    }

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()
        ]
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
            for e in errors
        )
        body = InvalidRequest(detail=detail, errors=jsonable_encoder(errors))
        return JSONResponse(body.model_dump(), status_code=422)

    @app.exception_handler(EventError)
    async def refused(request: Request, error: EventError) -> JSONResponse:
        """A value the library refuses that the schema let through: 422, never a 500."""
        body = InvalidRequest(detail=str(error), errors=[])
        return JSONResponse(body.model_dump(), status_code=422)

    @app.exception_handler(StoreError)
    async def store_down(request: Request, error: StoreError) -> JSONResponse:
        log.warning(json.dumps({"event": "store_error", "error": str(error)}))
        return JSONResponse({"detail": "the store did not answer"}, status_code=503)

    # --- public -------------------------------------------------------------------

    @app.post(
        "/v1/sites/{site}/events",
        response_model=Decision,
        responses=public_errors,
        tags=["public"],
        summary="Decide on one visitor event",
    )
    async def events(site: SiteArg, event: PublicEvent, request: Request) -> Response:
        config = site.config
        address = client_address(request, config.proxy_networks())
        per_address, per_visitor = config.rate_limits.items()
        visitor = event.visitor
        limits = [("address", per_address, (site.name, "address", address))]
        if visitor is not None:
            limits.append(("visitor", per_visitor, (site.name, "visitor", visitor)))
        over = await service.limiter.check(limits)
        if over is not None:
            return await too_many(site, *over)
        issued = visitor is None
        if visitor is None:
            visitor = secrets.token_hex(16)
        request.state.visitor = visitor
        engine = site.engine
        decision: Decision
        try:
            ready = event.model_copy(update={"visitor": visitor, "at": None})
            decision = await service.call(partial(engine.evaluate, ready), settings.store_budget)
        except EventError as error:
            return JSONResponse(
                InvalidRequest(detail=str(error), errors=[]).model_dump(), status_code=422
            )
        except Exception as error:  # never a 500 here: a timeout or a bug fails quiet
            level = logging.WARNING if isinstance(error, StoreError) else logging.ERROR
            log.log(
                level, json.dumps({"event": "degraded", "site": site.name, "error": repr(error)})
            )
            decision = Decision.model_construct(
                invitation=None,
                recheck_in=DEGRADED_RECHECK,
                chat="available",
                ruleset=engine.rules.hash,
                degraded=True,
            )
        m = service.metrics
        if decision.degraded:
            m.degraded.labels(site.name).inc()
            m.store_errors.labels(site.name).inc()
            m.decisions.labels(site.name, "degraded").inc()
        elif decision.invitation is not None:
            m.decisions.labels(site.name, "invitation").inc()
            m.invitations.labels(site.name, decision.invitation.rule).inc()
        else:
            m.decisions.labels(
                site.name, "none" if decision.chat == "available" else decision.chat
            ).inc()
        if issued:
            decision = decision.model_copy(update={"visitor": visitor})
        return JSONResponse(decision.model_dump(mode="json"))

    if settings.bare_route:

        @app.post("/_bench/sites/{site}/events", include_in_schema=False)
        async def bare(site: SiteArg, event: PublicEvent, request: Request) -> Response:
            request.state.visitor = event.visitor
            constant = {
                "invitation": None,
                "recheck_in": None,
                "chat": "available",
                "ruleset": site.engine.rules.hash,
            }
            return JSONResponse(constant)

    async def too_many(site: Site, which: str, item: Any, keys: tuple[str, ...]) -> JSONResponse:
        service.metrics.rate_limited.labels(site.name, which).inc()
        retry = await service.limiter.retry_after(item, *keys)
        return JSONResponse(
            {"detail": f"too many requests per {which}; retry in {retry}s"},
            status_code=429,
            headers={"Retry-After": str(retry)},
        )

    # --- private ------------------------------------------------------------------

    private: dict[str, Any] = {
        "dependencies": [Depends(admin)],
        "responses": private_errors,
        "tags": ["private"],
    }
    budget = settings.admin_budget

    @app.post("/v1/sites/{site}/explain", response_model=Explanation, **private)
    async def explain(site: SiteArg, event: AdminEvent) -> Explanation:
        ready = event.model_copy(update={"at": None})
        return await service.call(partial(site.engine.explain, ready), budget)

    @app.put("/v1/sites/{site}/agents", response_model=Done, **private)
    async def agents(site: SiteArg, status: AgentsIn) -> Done:
        engine = site.engine
        set_agents = partial(
            engine.set_agents,
            online=status.online,
            available=status.available,
            queue_length=status.queue_length,
            queue_wait=status.queue_wait_seconds,
        )
        await service.call(set_agents, budget)
        return Done(ok=True)

    @app.put("/v1/sites/{site}/blocks/{visitor}", response_model=Done, **private)
    async def block(
        site: SiteArg,
        visitor: Visitor,
        body: BlockIn,
        actor: Annotated[str | None, Header(alias="X-Politely-Actor", max_length=200)] = None,
    ) -> Done:
        call = partial(site.engine.block, visitor, body.reason, body.until, by=actor)
        await service.call(call, budget)
        return Done(ok=True)

    @app.delete("/v1/sites/{site}/blocks/{visitor}", response_model=Done, **private)
    async def unblock(site: SiteArg, visitor: Visitor) -> Done:
        return Done(ok=await service.call(partial(site.engine.unblock, visitor), budget))

    @app.get("/v1/sites/{site}/blocks", response_model=BlocksOut, **private)
    async def blocks(site: SiteArg) -> BlocksOut:
        found = await service.call(site.engine.blocks, budget)
        return BlocksOut(
            blocks=[
                BlockOut(
                    visitor=visitor,
                    reason=b.reason,
                    until=_time(b.until),
                    since=datetime.fromtimestamp(b.at, UTC),
                    by=b.by,
                )
                for visitor, b in sorted(found.items())
            ]
        )

    @app.get("/v1/sites/{site}/rules", response_model=RulesOut, **private)
    async def rules(site: SiteArg) -> RulesOut:
        return RulesOut(hash=site.engine.rules.hash, sources=site.sources)

    async def swap(site: Site, how: str, change: Callable[[], Any]) -> Response:
        async with service.locks[site.name]:
            try:
                result = await asyncio.to_thread(change)
            except RulesError as error:
                errors = sum(d.is_error for d in error.diagnostics)
                problem = RulesProblem(
                    detail=f"rules not changed: {errors} error{'s' * (errors != 1)}",
                    diagnostics=[_diagnostic(d) for d in error.diagnostics],
                )
                return JSONResponse(problem.model_dump(), status_code=422)
            except ConfigError as error:
                problem = RulesProblem(detail=f"site.toml: {error}", diagnostics=[])
                return JSONResponse(problem.model_dump(), status_code=422)
        service.metrics.rules_swaps.labels(site.name).inc()
        log_swap(site, how)
        swapped = RulesSwapped(
            hash=site.engine.rules.hash,
            rules=len(site.engine.rules.rules),
            warnings=[_diagnostic(d) for d in result.warnings],
        )
        return JSONResponse(swapped.model_dump())

    @app.put(
        "/v1/sites/{site}/rules",
        response_model=RulesSwapped,
        **{**private, "responses": {**private_errors, 422: rules_refused}},
    )
    async def upload(site: SiteArg, body: RulesIn) -> Response:
        return await swap(site, "upload", partial(site.swap, body.sources, write=True))

    @app.post(
        "/v1/sites/{site}/reload",
        response_model=RulesSwapped,
        **{**private, "responses": {**private_errors, 422: rules_refused}},
    )
    async def reload(site: SiteArg) -> Response:
        return await swap(site, "reload", site.reload)

    @app.get("/v1/sites/{site}/stats", response_model=Stats, **private)
    async def stats(site: SiteArg) -> Stats:
        return await service.call(site.engine.stats, budget)

    @app.delete("/v1/sites/{site}/visitors/{visitor}", response_model=Done, **private)
    async def forget(site: SiteArg, visitor: Visitor) -> Done:
        return Done(ok=await service.call(partial(site.engine.forget, visitor), budget))

    # --- operations ---------------------------------------------------------------

    @app.get("/healthz", response_model=Health, tags=["operations"])
    async def healthz() -> Health:
        return Health(status="ok")

    @app.get(
        "/readyz",
        response_model=Health,
        tags=["operations"],
        responses={503: {"model": Health, "description": "not ready"}},
    )
    async def readyz() -> Response:
        hashes = {name: s.engine.rules.hash for name, s in service.sites.items()}
        status = "ok"
        if service.store is None or not hashes:
            status = "rules not loaded"
        else:
            try:
                await service.call(service.store.ping, settings.ready_budget)
            except Exception as error:
                status = "store unavailable"
                log.warning(json.dumps({"event": "not_ready", "error": repr(error)}))
        body = Health(status=status, sites=hashes).model_dump()
        return JSONResponse(body, status_code=200 if status == "ok" else 503)

    @app.get(
        "/metrics",
        tags=["operations"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text"}},
    )
    async def metrics() -> Response:
        data, content_type = service.metrics.render()
        return Response(data, media_type=content_type)

    app.include_router(website)  # the snippet /v1/politely.js and the demo shop /demo/
    app.add_middleware(BodyLimit, limit=settings.body_limit)
    app.add_middleware(SiteCors, origins_of=service.origins_of)
    app.add_middleware(AccessLog, metrics=service.metrics, router=app.router)
    return app


def client_address(
    request: Request,
    proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the
    right-most X-Forwarded-For address that is not itself a trusted proxy."""
    peer = request.client.host if request.client is not None else "unknown"
    if not proxies or not _trusted(peer, proxies):
        return peer
    forwarded = request.headers.get("x-forwarded-for", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    address = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # garbage: keep the last address a trusted hop vouched for
        address = hop
        if not _trusted(hop, proxies):
            break
    return address


def _trusted(
    address: str, proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def _time(seconds: float | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None


def _diagnostic(d: Any) -> DiagnosticOut:
    return DiagnosticOut(
        path=d.path,
        line=d.line,
        column=d.column,
        end_line=d.end_line,
        end_column=d.end_column,
        severity=d.severity,
        code=d.code,
        message=d.message,
        help=list(d.hints),
    )
