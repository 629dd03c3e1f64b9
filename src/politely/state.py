"""What the engine remembers: per visitor, per site, and blocks.

Plain slotted classes. The invitation history (`InvitationLog`) is kept apart
from the rest of a visitor's state (its profile): the store owns it and
changes it only in the atomic "record this invitation if every cap still
allows it" step, so concurrent requests can never exceed a cap. Both travel
to and from stores encoded as bytes (`politely.codec`), never as objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import msgspec

if TYPE_CHECKING:
    from politely.models import Decision

Count = tuple[str | None, int | None, str]  # a statistic: (rule, variant, what)
AGENT_STATUS_TTL = 120.0  # seconds; an older status is unknown (docs/contract.md, section 4)


class AgentStatus(msgspec.Struct, frozen=True):
    online: int
    available: int
    queue_length: int
    queue_wait: float  # seconds
    at: float  # when the site reported it

    def fresh(self, now: float) -> bool:
        return now - self.at <= AGENT_STATUS_TTL

    def reading(self, now: float) -> tuple[int, int, int, float] | None:
        """What conditions read of it at `now` (not when it was reported); None
        once stale. A recheck memo compares readings: reports differ in `at`."""
        if now - self.at > AGENT_STATUS_TTL:
            return None
        return (self.online, self.available, self.queue_length, self.queue_wait)


class Block(msgspec.Struct, frozen=True):
    reason: str
    until: float | None = None  # None: until lifted
    at: float = 0.0
    by: str | None = None  # who blocked, when the caller said

    def active(self, now: float) -> bool:
        return self.until is None or now < self.until


class InvitationRecord(msgspec.Struct, frozen=True):
    """One invitation shown: when, which rule and variant, in which session."""

    id: str
    at: float
    rule: str
    variant: int
    session: str


class InvitationLog:
    """A visitor's invitations: recent ones (for rolling windows) and counters.

    `recent` is trimmed to the longest window the rule set uses, but always
    keeps the last `KEEP_AT_LEAST` invitations, so `invitations.last` is known
    and an outcome naming a recent invitation finds it. Counters cover what
    trimming would lose: invitations this session and ever, per rule, and each
    rule's last variant.
    """

    KEEP_AT_LEAST = 8

    __slots__ = (
        "by_rule_ever",
        "by_rule_session",
        "ever",
        "last_variant",
        "recent",
        "session",
        "session_count",
    )

    def __init__(self) -> None:
        self.recent: list[InvitationRecord] = []
        self.session: str | None = None
        self.session_count = 0
        self.by_rule_session: dict[str, int] = {}
        self.ever = 0
        self.by_rule_ever: dict[str, int] = {}
        self.last_variant: dict[str, int] = {}

    def copy(self) -> InvitationLog:
        other = InvitationLog()
        other.recent = list(self.recent)
        other.session = self.session
        other.session_count = self.session_count
        other.by_rule_session = dict(self.by_rule_session)
        other.ever = self.ever
        other.by_rule_ever = dict(self.by_rule_ever)
        other.last_variant = dict(self.last_variant)
        return other

    @property
    def last(self) -> InvitationRecord | None:
        return self.recent[-1] if self.recent else None

    def in_session(self, session: str | None, rule: str | None = None) -> int:
        if session is None or session != self.session:
            return 0
        return self.session_count if rule is None else self.by_rule_session.get(rule, 0)

    def in_total(self, rule: str | None = None) -> int:
        return self.ever if rule is None else self.by_rule_ever.get(rule, 0)

    def times(self, rule: str | None = None) -> list[float]:
        return [r.at for r in self.recent if rule is None or r.rule == rule]

    def find(self, invitation_id: str | None) -> InvitationRecord | None:
        """The invitation an outcome refers to: by id, or the last one if none is named."""
        if invitation_id is None:
            return self.last
        for record in reversed(self.recent):
            if record.id == invitation_id:
                return record
        return None

    def record(self, invitation: InvitationRecord, keep_for: float) -> None:
        if invitation.session != self.session:
            self.session = invitation.session
            self.session_count = 0
            self.by_rule_session = {}
        self.session_count += 1
        rule = invitation.rule
        self.by_rule_session[rule] = self.by_rule_session.get(rule, 0) + 1
        self.ever += 1
        self.by_rule_ever[rule] = self.by_rule_ever.get(rule, 0) + 1
        self.last_variant[rule] = invitation.variant
        self.recent.append(invitation)
        horizon = invitation.at - keep_for
        while len(self.recent) > self.KEEP_AT_LEAST and self.recent[0].at <= horizon:
            del self.recent[0]


class VisitorState:
    """Everything the engine knows about one visitor, except blocks.

    The evaluator never changes a state it was given: it copies it (`copy`)
    and changes the copy, so `explain` can run on live state without touching
    it. `log` is the invitation history as loaded: only read by the evaluator,
    never part of the encoded profile; stores change it, atomically.
    """

    __slots__ = (
        "attributes",
        "chats",
        "in_chat",
        "landing",
        "last_activity",
        "last_chat_end",
        "last_dismiss",
        "log",
        "page_path",
        "page_referrer",
        "page_start",
        "page_title",
        "page_url",
        "pageviews",
        "scroll",
        "session",
        "session_referrer",
        "session_start",
        "utm",
        "visits",
    )

    def __init__(self) -> None:
        self.session: str | None = None
        self.session_start: float | None = None
        self.last_activity: float | None = None
        self.pageviews = 0
        self.landing: str | None = None
        self.session_referrer: str | None = None
        self.utm: tuple[str | None, str | None, str | None] | None = None
        self.visits = 0
        self.chats = 0
        self.page_url: str | None = None
        self.page_path: str | None = None
        self.page_title: str | None = None
        self.page_referrer: str | None = None
        self.page_start: float | None = None
        self.scroll: float = 0.0
        self.attributes: dict[str, Any] | None = None
        self.in_chat = False
        self.last_dismiss: float | None = None
        self.last_chat_end: float | None = None
        self.log: InvitationLog | None = None  # the store's history, read-only here

    def copy(self) -> VisitorState:
        """A shallow copy; spelled out because it is on every event's path."""
        o = VisitorState.__new__(VisitorState)
        o.session, o.session_start, o.last_activity = (
            self.session,
            self.session_start,
            self.last_activity,
        )
        o.pageviews, o.landing, o.session_referrer, o.utm = (
            self.pageviews,
            self.landing,
            self.session_referrer,
            self.utm,
        )
        o.visits, o.chats, o.in_chat = self.visits, self.chats, self.in_chat
        o.page_url, o.page_path, o.page_title, o.page_referrer = (
            self.page_url,
            self.page_path,
            self.page_title,
            self.page_referrer,
        )
        o.page_start, o.scroll, o.attributes = self.page_start, self.scroll, self.attributes
        o.last_dismiss, o.last_chat_end = self.last_dismiss, self.last_chat_end
        o.log = self.log
        return o


class SitewideUsage(msgspec.Struct, frozen=True, gc=False):
    """One sitewide cap's use, as the store counts it for an evaluation at `now`.

    A frozen msgspec Struct of three numbers (untracked by the collector): every
    load of every event makes one per sitewide cap, in a third of the time a
    named tuple takes.

    `used` is the invitations in the window, counted up to the cap's limit (a
    full cap reads its limit, so no store counts further than the limit: the
    cost of a load does not grow with the window's traffic). `release` is
    when the cap next allows an invitation (`now` if it does);
    `release_after_one` is the same if one more invitation were recorded now,
    which is what `recheck_in` needs right after an invitation.
    """

    used: int
    release: float
    release_after_one: float


class SiteReading(Protocol):
    """The site's side of what an event is decided on: a `Snapshot`, or what a
    store loaded (`stores.base.Loaded`) as it is, so a quiet tick (most events)
    reads it with no snapshot built."""

    @property
    def block(self) -> Block | None: ...
    @property
    def agents(self) -> AgentStatus | None: ...
    @property
    def sitewide(self) -> tuple[SitewideUsage, ...]: ...


class Snapshot(NamedTuple):
    """What the evaluator reads for one event: the visitor's and the site's state.

    A named tuple: one is built for every event, three times as fast as a
    frozen dataclass (`SitewideUsage` and the stores' `Loaded`, made as often,
    are frozen msgspec Structs, faster still).

    `sitewide` holds one usage per policy sitewide cap, in the policy's order.
    `replay` is the decision an earlier event with this event's id got, and
    when: a retry, answered without a write.
    """

    state: VisitorState | None
    block: Block | None
    agents: AgentStatus | None
    sitewide: tuple[SitewideUsage, ...] = ()
    replay: tuple[float, Decision] | None = None
