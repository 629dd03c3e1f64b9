"""The clauses a rule or the policy may hold: one table beside the grammar.

The checker reads where each clause may stand and how often, the formatter
its keyword, the syntax errors which token starts it (docs/language.md).

    >>> CLAUSE_OF[n.Cap].keyword, CLAUSE_OF[n.Cap].in_rule, CLAUSE_OF[n.When].in_policy
    ('at most', 'many', None)
"""

from __future__ import annotations

from typing import Literal

import msgspec

from politely import nodes as n

Times = Literal["once", "many"] | None  # None: does not belong there


class ClauseSpec(msgspec.Struct, frozen=True):
    node: type[n.Clause]
    keyword: str  # as written and formatted
    token: str  # the grammar's terminal for its first word
    in_rule: Times
    in_policy: Times

    def times(self, in_policy: bool) -> Times:
        return self.in_policy if in_policy else self.in_rule


CLAUSES = (
    ClauseSpec(n.On, "on", "ON", "once", None),
    ClauseSpec(n.When, "when", "WHEN", "once", None),
    ClauseSpec(n.Say, "say", "SAY", "once", None),
    ClauseSpec(n.Priority, "priority", "PRIORITY", "once", None),
    ClauseSpec(n.Cooldown, "cooldown", "COOLDOWN", "many", None),
    ClauseSpec(n.Cap, "at most", "AT", "many", "many"),
    ClauseSpec(n.During, "during", "DURING", "once", "once"),
    ClauseSpec(n.Quiet, "quiet", "QUIET", None, "many"),  # once per `after`: the checker
    ClauseSpec(n.Only, "only when", "ONLY", None, "once"),
    ClauseSpec(n.Never, "never when", "NEVER", None, "once"),
    ClauseSpec(n.SessionTimeout, "session timeout", "SESSION", None, "once"),
)
CLAUSE_OF: dict[type, ClauseSpec] = {spec.node: spec for spec in CLAUSES}
CLAUSE_BY_TOKEN = {spec.token: spec for spec in CLAUSES}
# Clauses whose body is a condition: two of them join with and/or.
CONDITION_CLAUSES = (n.When, n.Only, n.Never)
