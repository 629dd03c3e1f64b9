"""Request and response bodies of the HTTP service, so `/openapi.json` says everything."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from politely.models import Count, Event, Instant

VISITOR_PATTERN = r"^[A-Za-z0-9_.:-]+$"
VisitorId = Annotated[str, Field(min_length=1, max_length=200, pattern=VISITOR_PATTERN)]


class PublicEvent(Event):
    """An event as a browser sends it: `visitor` may be left out (the service then
    issues one), and an `at` is ignored: the server's clock is the only clock."""

    visitor: VisitorId | None = None  # type: ignore[assignment]


class AdminEvent(Event):
    """An event to explain; `at` is ignored as on the public endpoint."""

    visitor: VisitorId


class AgentsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    online: Count
    available: Count
    queue_length: Count = 0
    queue_wait_seconds: Annotated[float, Field(ge=0, le=1_000_000_000, allow_inf_nan=False)] = 0.0


class BlockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=500)]
    until: Instant | None = None  # 1970 to 2999, as every time politely reads


class BlockOut(BaseModel):
    visitor: str
    reason: str
    until: datetime | None
    since: datetime
    by: str | None


class BlocksOut(BaseModel):
    blocks: list[BlockOut]


class RulesOut(BaseModel):
    hash: str
    sources: dict[str, str]


class RulesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: dict[str, Annotated[str, Field(max_length=1_000_000)]]


class DiagnosticOut(BaseModel):
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    severity: str
    code: str
    message: str
    help: list[str]


class RulesProblem(BaseModel):
    """A rule upload or reload that was refused: the running rules stay."""

    detail: str
    diagnostics: list[DiagnosticOut]


class RulesSwapped(BaseModel):
    hash: str
    rules: int
    warnings: list[DiagnosticOut]


class Done(BaseModel):
    ok: bool


class Problem(BaseModel):
    detail: str


class InvalidRequest(BaseModel):
    """A body or parameter that does not have the expected shape."""

    detail: str  # `field: what is wrong; ...`
    errors: list[dict[str, Any]]


class Health(BaseModel):
    status: str
    sites: dict[str, str] = Field(default_factory=dict)  # site → ruleset hash
