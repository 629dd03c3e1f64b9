"""An independent reading of conditions, for tests only: a direct interpreter of the
syntax tree (politely.nodes), written from docs/semantics.md section 4 without the
code generator. The property test in test_oracle.py checks that the generated
functions of a compiled rule set agree with it.

Field values are read straight from the visitor state; a missing value (None)
makes every test on it false, `!=` and `not in` included; custom fields
(`visitor.X`, `event.X`) and the attribute fields (`visitor.country`,
`visitor.language`, `visitor.device`) are typed at run time.
"""

from __future__ import annotations

import math
import re
from typing import Any

from politely import nodes as n
from politely.state import AgentStatus, VisitorState

DAY = 86400
_MISSING = None
# Known fields and how the oracle reads them, and their kinds.
_KNOWN_KIND = {
    "event": "text",
    "page.url": "text",
    "page.path": "text",
    "page.title": "text",
    "page.referrer": "text",
    "page.dwell": "number",
    "page.scroll": "number",
    "session.pageviews": "number",
    "session.duration": "number",
    "session.landing": "text",
    "session.referrer": "text",
    "session.utm_source": "text",
    "session.utm_medium": "text",
    "session.utm_campaign": "text",
    "visitor.visits": "number",
    "visitor.returning": "bool",
    "visitor.chats": "number",
    "agents.online": "number",
    "agents.available": "number",
    "queue.length": "number",
    "queue.wait": "number",
    "invitations.session": "number",
    "invitations.today": "number",
    "invitations.last": "number",
}
_RUNTIME_TEXT = {"visitor.country", "visitor.language", "visitor.device"}


def value_of(
    name: str, state: VisitorState, event: Any, agents: AgentStatus | None, now: float
) -> Any:
    """A field's value as docs/semantics.md describes it; None when missing."""
    s = state
    if name == "event":
        return event.event
    if name.startswith("page."):
        if name == "page.dwell":
            return None if s.page_start is None else now - s.page_start
        if name == "page.scroll":
            return None if s.page_start is None else s.scroll
        return {
            "page.url": s.page_url,
            "page.path": s.page_path,
            "page.title": s.page_title,
            "page.referrer": s.page_referrer,
        }[name]
    if name.startswith("session."):
        if name == "session.duration":
            return None if s.session_start is None else now - s.session_start
        if name.startswith("session.utm_"):
            if s.utm is None:
                return None
            return s.utm[["source", "medium", "campaign"].index(name[len("session.utm_") :])]
        return {
            "session.pageviews": s.pageviews,
            "session.landing": s.landing,
            "session.referrer": s.session_referrer,
        }[name]
    if name in ("visitor.visits", "visitor.returning", "visitor.chats"):
        return {
            "visitor.visits": s.visits,
            "visitor.returning": s.visits >= 2,
            "visitor.chats": s.chats,
        }[name]
    if name in ("agents.online", "agents.available", "queue.length", "queue.wait"):
        if agents is None:
            return None
        return {
            "agents.online": agents.online,
            "agents.available": agents.available,
            "queue.length": agents.queue_length,
            "queue.wait": agents.queue_wait,
        }[name]
    if name.startswith("invitations."):
        log = s.log
        if name == "invitations.session":
            if log is None or log.session != s.session:
                return 0
            return log.session_count
        if name == "invitations.today":
            return 0 if log is None else len([r for r in log.recent if now - r.at < DAY])
        if log is None or not log.recent:
            return math.inf
        return now - log.recent[-1].at
    # custom: visitor.X... from the attributes, event.X... from the event's props
    namespace, *path = name.split(".")
    current: Any = (s.attributes or {}) if namespace == "visitor" else event.props
    for key in path:
        if not isinstance(current, dict) or key not in current:
            return None
        current = current[key]
    return current


def literal(value: n.Value) -> Any:
    if isinstance(value, n.Duration):
        return value.seconds
    return value.value


def _kind_of_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "text"
    return "number"


def _has_kind(value: Any, kind: str) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "text":
        return isinstance(value, str)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _typed(name: str, value: Any, kind: str) -> bool:
    """May a test of `kind` look at this value? Known fields are trusted."""
    if value is None:
        return False
    if name in _KNOWN_KIND:
        return True
    if name in _RUNTIME_TEXT:
        return isinstance(value, str)
    return _has_kind(value, kind)


def glob_matches(pattern: str, text: str) -> bool:
    """`*` any run of characters, `?` one character, the rest literal; whole text."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    assert op == ">="
    return bool(left >= right)


def holds(
    condition: n.Condition,
    state: VisitorState,
    event: Any,
    agents: AgentStatus | None,
    now: float,
) -> bool:
    """Does the (define-expanded) condition hold?"""

    def go(c: n.Condition) -> bool:
        if isinstance(c, n.And):
            return all(go(o) for o in c.operands)
        if isinstance(c, n.Or):
            return any(go(o) for o in c.operands)
        if isinstance(c, n.Not):
            return not go(c.operand)
        assert not isinstance(c, n.Ref), "the oracle reads expanded conditions"
        name = c.field.name
        value = value_of(name, state, event, agents, now)
        if isinstance(c, n.Bare):
            if name in _KNOWN_KIND:
                return bool(value)
            return value is True
        if isinstance(c, n.Compare):
            right = literal(c.value)
            return _typed(name, value, _kind_of_literal(right)) and _compare(value, c.op, right)
        if isinstance(c, n.InList):
            values = [literal(v) for v in c.values]
            if not _typed(name, value, _kind_of_literal(values[0])):
                return False
            found = (
                any(value == v and _kind_of_literal(v) == _kind_of_literal(value) for v in values)
                if name not in _KNOWN_KIND
                else value in values
            )
            return not found if c.negated else found
        if isinstance(c, n.Contains):
            return _typed(name, value, "text") and c.text.value in value
        assert isinstance(c, n.Matches)
        return _typed(name, value, "text") and glob_matches(c.pattern.value, value)

    return go(condition)
