"""The shapes that cross the edges: events in, decisions out (LANGUAGE.md section 7).

Pydantic validates an event once, where it enters (the library's `evaluate`
given a dict, the HTTP service, a traffic file); the evaluator then reads the
model's attributes directly. Decisions are built with `model_construct`: the
engine made every field itself, so validating them again would only cost time.

    >>> Event.model_validate({"visitor": "v1", "event": "page_view", "url": "/pricing"}).url
    '/pricing'
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

Name = Annotated[str, Field(min_length=1, max_length=200)]
ShortText = Annotated[str, Field(max_length=2000)]


class Event(BaseModel):
    """One thing a visitor did, or a `tick` asking whether to invite now."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    visitor: Name
    event: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
    session: Name | None = None
    at: datetime | None = None
    url: ShortText | None = None
    title: ShortText | None = None
    referrer: ShortText | None = None
    scroll: Annotated[float, Field(ge=0, le=100)] | None = None
    props: dict[str, Any] = Field(default_factory=dict)
    attributes: dict[str, Any] = Field(default_factory=dict)
    country: Annotated[str, Field(max_length=100)] | None = None
    language: Annotated[str, Field(max_length=100)] | None = None
    device: Annotated[str, Field(max_length=100)] | None = None
    invitation: Annotated[str, Field(max_length=200)] | None = None
    id: Annotated[str, Field(min_length=1, max_length=200)] | None = None

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        """A time without a zone is read as UTC, the zone of every example."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @property
    def timestamp(self) -> float | None:
        return self.at.timestamp() if self.at is not None else None


def split_url(url: str) -> tuple[str, str]:
    """(page.url, page.path) from what the site sent: an absolute URL or a path."""
    if url.startswith("/") and not url.startswith("//") and "#" not in url:
        return url, url.split("?", 1)[0]
    parts = urlsplit(url)
    path = parts.path or "/"
    return (path + "?" + parts.query if parts.query else path), path


class Invitation(BaseModel):
    """What to show: `message` is plain text; the site must insert it as text."""

    id: str
    rule: str
    message: str
    variant: int


ChatStatus = Literal["available", "blocked", "in_chat"]


class Decision(BaseModel):
    """The engine's answer to one event."""

    model_config = ConfigDict(frozen=True)

    invitation: Invitation | None = None
    recheck_in: int | None = None
    chat: ChatStatus = "available"
    ruleset: str = ""
    degraded: bool = False  # the store could not be reached: no invitation, ask again later
    visitor: str | None = None  # set when the service issued the visitor's id

    @model_serializer(mode="wrap")
    def _only_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """`degraded` and `visitor` appear in JSON only when they say something."""
        data: dict[str, Any] = handler(self)
        if not data.get("degraded"):
            data.pop("degraded", None)
        if data.get("visitor") is None:
            data.pop("visitor", None)
        return data


class AgentsUpdate(BaseModel):
    """Agent status as a site reports it (`queue_wait` in seconds)."""

    online: Annotated[int, Field(ge=0)]
    available: Annotated[int, Field(ge=0)]
    queue_length: Annotated[int, Field(ge=0)] = 0
    queue_wait: Annotated[float, Field(ge=0)] = 0.0
