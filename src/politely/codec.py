"""How state crosses the store seam: compact, versioned MessagePack, never pickle.

Three encodings, each a MessagePack array whose first item is its version, so
a store written by one release is read by the next (or refused clearly):

- a visitor's **profile**: everything about the visitor but its invitation
  history and its remembered event ids. Stores treat it as opaque bytes.
- a visitor's **history** (`InvitationLog`): stores read and change it in
  their atomic claim, so its layout is part of the store contract (the Redis
  store's Lua script reads it with `cmsgpack`):
  `[1, [[id, at, rule, variant, session], ...], session, session_count, ever,
  [[rule, in_session, ever, last_variant], ...]]`.
- a **decision**, remembered under an event id so that a retry gets it again.

    >>> from politely.state import VisitorState
    >>> state = VisitorState()
    >>> state.visits, state.attributes = 2, {"plan": "pro"}
    >>> again = decode_profile(encode_profile(state))
    >>> again.visits, again.attributes
    (2, {'plan': 'pro'})
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

import msgspec

from politely.errors import StoreError
from politely.models import Decision, Invitation
from politely.state import InvitationLog, InvitationRecord, VisitorState

PROFILE_VERSION = 1
HISTORY_VERSION = 1
DECISION_VERSION = 1

_encoder = msgspec.msgpack.Encoder()
_decode = msgspec.msgpack.decode


def _unpack(data: bytes, version: int, what: str) -> list[Any]:
    try:
        items = _decode(data)
    except msgspec.DecodeError as error:
        raise StoreError(f"the store holds a {what} that is not MessagePack: {error}") from error
    if not isinstance(items, list) or not items or items[0] != version:
        found = items[0] if isinstance(items, list) and items else None
        raise StoreError(
            f"the store holds a {what} of version {found!r}; this release reads {version}"
        )
    return items


# --- profiles ---------------------------------------------------------------------------------


# The profile's layout: VisitorState's fields in this order after the version
# (`log` is the history, encoded apart). Append new fields; never reorder.
PROFILE_FIELDS = (
    "session",
    "session_start",
    "last_activity",
    "pageviews",
    "landing",
    "session_referrer",
    "utm",
    "visits",
    "chats",
    "page_url",
    "page_path",
    "page_title",
    "page_referrer",
    "page_start",
    "scroll",
    "attributes",
    "in_chat",
    "last_dismiss",
    "last_chat_end",
)


_profile_of = attrgetter(*PROFILE_FIELDS)


def encode_profile(s: VisitorState) -> bytes:
    return _encoder.encode((PROFILE_VERSION, *_profile_of(s)))


def decode_profile(data: bytes, log: InvitationLog | None = None) -> VisitorState:
    items = _unpack(data, PROFILE_VERSION, "visitor profile")
    if len(items) != len(PROFILE_FIELDS) + 1:
        found, expected = len(items), len(PROFILE_FIELDS) + 1
        raise StoreError(f"the store holds a visitor profile of {found} items, not {expected}")
    s = VisitorState.__new__(VisitorState)
    for name, value in zip(PROFILE_FIELDS, items[1:], strict=True):
        setattr(s, name, value)
    if s.utm is not None:
        s.utm = tuple(s.utm)  # type: ignore[assignment]
    s.log = log
    return s


# --- invitation histories -----------------------------------------------------------------------


def encode_history(log: InvitationLog) -> bytes:
    rules = sorted(set(log.by_rule_ever) | set(log.last_variant))
    return _encoder.encode(
        (
            HISTORY_VERSION,
            [(r.id, r.at, r.rule, r.variant, r.session) for r in log.recent],
            log.session,
            log.session_count,
            log.ever,
            [
                (
                    rule,
                    log.by_rule_session.get(rule, 0),
                    log.by_rule_ever.get(rule, 0),
                    log.last_variant.get(rule, 0),
                )
                for rule in rules
            ],
        )
    )


def decode_history(data: bytes) -> InvitationLog:
    _, recent, session, session_count, ever, by_rule = _unpack(
        data, HISTORY_VERSION, "invitation history"
    )
    log = InvitationLog()
    log.recent = [InvitationRecord(*record) for record in recent or ()]
    log.session = session
    log.session_count = session_count
    log.ever = ever
    for rule, in_session, ever_count, variant in by_rule or ():
        if in_session:
            log.by_rule_session[rule] = in_session
        log.by_rule_ever[rule] = ever_count
        log.last_variant[rule] = variant
    return log


# --- decisions --------------------------------------------------------------------------------


def encode_decision(d: Decision) -> bytes:
    i = d.invitation
    invitation = (i.id, i.rule, i.message, i.variant) if i is not None else None
    return _encoder.encode((DECISION_VERSION, invitation, d.recheck_in, d.chat, d.ruleset))


def decode_decision(data: bytes) -> Decision:
    _, invitation, recheck_in, chat, ruleset = _unpack(data, DECISION_VERSION, "decision")
    found = None
    if invitation is not None:
        id_, rule, message, variant = invitation
        found = Invitation.model_construct(id=id_, rule=rule, message=message, variant=variant)
    return Decision.model_construct(
        invitation=found, recheck_in=recheck_in, chat=chat, ruleset=ruleset
    )
