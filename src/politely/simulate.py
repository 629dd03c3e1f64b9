"""Replay recorded traffic against rules: what would have fired, how often, and why not.

A traffic file is JSON Lines, one object a line, in time order, each with `at`:

    {"at": "2026-01-05T10:00:00Z", "visitor": "v1", "event": "page_view", "url": "/pricing"}
    {"at": "2026-01-05T10:00:00Z", "agents": {"online": 3, "available": 1, "queue_wait": 20}}
    {"at": "2026-01-05T10:05:00Z", "block": {"visitor": "v9", "reason": "abuse"}}
    {"at": "2026-01-05T10:09:00Z", "unblock": "v9"}

Events are the JSON of LANGUAGE.md section 7. The simulation runs the real
engine on a clock that follows `at`, with a fresh in-memory store.
With `follow_ticks`, it also sends the ticks each decision asks for
(`recheck_in`), as the website snippet does, between a visitor's recorded
events: a visitor is assumed to stay until their last recorded event.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from politely.engine import Engine, describe_validation
from politely.errors import TrafficError
from politely.evaluator import Verdict
from politely.models import AgentsUpdate, Decision, Event
from politely.ruleset import RuleSet
from politely.state import Block
from politely.stats import Stats


@dataclass(frozen=True, slots=True)
class Step:
    """One evaluated event of the replay."""

    line: int | None  # None for a tick the simulation sent itself
    event: Event
    at: float
    verdict: Verdict

    @property
    def decision(self) -> Decision:
        return self.verdict.decision

    def as_json(self) -> dict[str, Any]:
        data = self.decision.model_dump(mode="json")
        data["visitor"] = self.event.visitor
        data["at"] = iso(self.at)
        return data


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


class SimulatedClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Summary:
    events: int = 0
    sent_ticks: int = 0
    visitors: set[str] = field(default_factory=set)
    sessions: int = 0
    first: float | None = None
    last: float | None = None
    per_visitor: Counter[str] = field(default_factory=Counter)

    def note(self, step: Step, new_session: bool) -> None:
        self.events += step.line is not None
        self.sent_ticks += step.line is None
        self.visitors.add(step.event.visitor)
        self.sessions += new_session
        self.first = step.at if self.first is None else min(self.first, step.at)
        self.last = step.at if self.last is None else max(self.last, step.at)
        if step.decision.invitation is not None:
            self.per_visitor[step.event.visitor] += 1


@dataclass(frozen=True, slots=True)
class _Control:
    """A traffic line that is not an event: agent status, a block, an unblock."""

    at: float
    agents: AgentsUpdate | None = None
    block: tuple[str, Block] | None = None
    unblock: str | None = None


def read_traffic(path: str | Path) -> Iterator[tuple[int, Event | _Control]]:
    """Validated traffic lines; a bad line raises `TrafficError("PATH:LINE: what")`."""
    previous = None
    with open(path, encoding="utf-8") as lines:
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            item = parse_traffic_line(text, f"{path}:{number}")
            at = item.at.timestamp() if isinstance(item, Event) else item.at  # type: ignore[union-attr]
            if previous is not None and at < previous:
                raise TrafficError(
                    f"{path}:{number}: `at` goes back in time; sort the file by `at`"
                )
            previous = at
            yield number, item


def parse_traffic_line(text: str, where: str) -> Event | _Control:
    try:
        data = json.loads(text.rstrip("\r\n"))
    except json.JSONDecodeError as error:
        raise TrafficError(f"{where}: not JSON: {error.msg} (column {error.colno})") from error
    if not isinstance(data, dict):
        raise TrafficError(f"{where}: a traffic line is a JSON object")
    if data.get("at") is None:
        raise TrafficError(f"{where}: `at` is missing: every traffic line needs its time")
    try:
        if "event" in data:
            return Event.model_validate(data)
        at = Event.model_validate({"visitor": "-", "event": "tick", "at": data["at"]}).timestamp
        assert at is not None
        if "agents" in data:
            return _Control(at, agents=AgentsUpdate.model_validate(data["agents"]))
        if "block" in data:
            block = data["block"]
            if not isinstance(block, dict) or "visitor" not in block:
                raise TrafficError(f'{where}: `block` needs {{"visitor": ..., "reason": ...}}')
            until = block.get("until")
            until_at = (
                Event.model_validate({"visitor": "-", "event": "tick", "at": until}).timestamp
                if until is not None
                else None
            )
            return _Control(
                at, block=(str(block["visitor"]), Block(str(block.get("reason", "")), until_at, at))
            )
        if "unblock" in data:
            return _Control(at, unblock=str(data["unblock"]))
    except ValidationError as error:
        raise TrafficError(f"{where}: {describe_validation(error)}") from error
    raise TrafficError(f"{where}: expected an event (with `event`), `agents`, `block` or `unblock`")


class Simulation:
    def __init__(
        self,
        rules: RuleSet,
        *,
        agents: AgentsUpdate | None = None,
        follow_ticks: bool = False,
    ) -> None:
        self.clock = SimulatedClock()
        self.engine = Engine(rules, clock=self.clock)
        self.constant_agents = agents
        self.follow_ticks = follow_ticks
        self.summary = Summary()
        self._sessions: dict[str, str | None] = {}

    @property
    def rules(self) -> RuleSet:
        return self.engine.rules

    def run(
        self,
        traffic: Iterable[tuple[int, Event | _Control]],
        last_seen: dict[str, float] | None = None,
        on_step: Callable[[Step, Any], None] | None = None,
    ) -> Iterator[Step]:
        """Evaluate every line; `on_step(step, snapshot)` sees the state before each one."""
        pending: list[tuple[float, int, str]] = []  # (time, order, visitor) of ticks to send
        wanted: dict[str, float] = {}
        order = 0
        for number, item in traffic:
            at = item.timestamp if isinstance(item, Event) else item.at
            assert at is not None
            while pending and pending[0][0] < at:
                tick_at, _, visitor = heapq.heappop(pending)
                if wanted.get(visitor) != tick_at:
                    continue
                del wanted[visitor]
                tick = Event(visitor=visitor, event="tick")
                step = self._evaluate(None, tick, tick_at, on_step)
                yield step
                order = self._schedule(step, last_seen, pending, wanted, order)
            if isinstance(item, _Control):
                self._control(item)
                continue
            wanted.pop(item.visitor, None)
            step = self._evaluate(number, item, at, on_step)
            yield step
            order = self._schedule(step, last_seen, pending, wanted, order)

    def _schedule(
        self,
        step: Step,
        last_seen: dict[str, float] | None,
        pending: list[tuple[float, int, str]],
        wanted: dict[str, float],
        order: int,
    ) -> int:
        recheck = step.decision.recheck_in
        if not self.follow_ticks or recheck is None or last_seen is None:
            return order
        visitor = step.event.visitor
        tick_at = step.at + recheck
        if tick_at >= last_seen.get(visitor, step.at):
            return order
        wanted[visitor] = tick_at
        heapq.heappush(pending, (tick_at, order, visitor))
        return order + 1

    def _control(self, item: _Control) -> None:
        self.clock.now = item.at
        if item.agents is not None:
            self.engine.set_agents(**item.agents.model_dump(), at=item.at)
        if item.block is not None:
            self.engine.store.block(self.engine.site, *item.block)
        if item.unblock is not None:
            self.engine.unblock(item.unblock)

    def _evaluate(
        self,
        line: int | None,
        event: Event,
        at: float,
        on_step: Callable[[Step, Any], None] | None,
    ) -> Step:
        self.clock.now = at
        engine = self.engine
        if self.constant_agents is not None:
            engine.set_agents(**self.constant_agents.model_dump(), at=at)
        snapshot, verdict = engine.decide(event, at)
        step = Step(line, event, at, verdict)
        if on_step is not None:
            on_step(step, snapshot)
        if verdict.state is not None:
            session = verdict.state.session
            new = session is not None and self._sessions.get(event.visitor) != session
            self._sessions[event.visitor] = session
        else:
            new = False
        self.summary.note(step, new)
        return step

    def stats(self) -> Stats:
        return self.engine.stats()


def last_seen_times(path: str | Path) -> dict[str, float]:
    """Each visitor's last recorded event time (a first pass for `follow_ticks`)."""
    last: dict[str, float] = {}
    for _, item in read_traffic(path):
        if isinstance(item, Event) and item.timestamp is not None:
            last[item.visitor] = item.timestamp
    return last


# --- the report ------------------------------------------------------------------------


def render_summary(summary: Summary, stats: Stats) -> str:
    lines: list[str] = []
    if summary.first is not None and summary.last is not None:
        span = f"from {iso(summary.first)} to {iso(summary.last)}"
    else:
        span = "no events"
    ticks = (
        f" (and {_count(summary.sent_ticks, 'tick')} sent as asked)" if summary.sent_ticks else ""
    )
    lines.append(
        f"{_count(summary.events, 'event')}{ticks} from {_count(len(summary.visitors), 'visitor')} "
        f"in {_count(summary.sessions, 'session')}, {span}"
    )
    lines.append("")
    per_1000 = 1000 / summary.sessions if summary.sessions else 0.0
    header = (
        f"{'invitations':<28}{'shown':>7}{'per 1,000 sessions':>20}{'accepted':>10}"
        f"{'dismissed':>11}{'acceptance':>12}"
    )
    lines.append(header)
    total = accepted_total = dismissed_total = 0
    for rule in stats.rules:
        total += rule.shown
        accepted_total += rule.accepted
        dismissed_total += rule.dismissed
        lines.append(
            _row(rule.rule, rule.shown, rule.shown * per_1000, rule.accepted, rule.dismissed, 2)
        )
        if len(rule.variants) > 1:
            for variant in rule.variants:
                label = f"variant {variant.variant}: {_short(variant.message, 12)}"
                lines.append(
                    _row(
                        label,
                        variant.shown,
                        variant.shown * per_1000,
                        variant.accepted,
                        variant.dismissed,
                        4,
                    )
                )
    lines.append(_row("total", total, total * per_1000, accepted_total, dismissed_total, 2))
    lines.append("")
    if summary.per_visitor:
        visitor, most = summary.per_visitor.most_common(1)[0]
        lines.append(f"most invitations to one visitor: {most} (visitor {visitor})")
    else:
        lines.append("most invitations to one visitor: 0")
    held = [(r.rule, r.suppressed) for r in stats.rules if r.suppressed]
    if held:
        lines.append("")
        lines.append("held back (the rule's condition held, but):")
        for name, reasons in held:
            text = ", ".join(f"{reason} {count:,}" for reason, count in reasons.items())
            lines.append(f"  {name:<26}{text}")
    if stats.suppressed:
        text = ", ".join(f"{reason} {count:,}" for reason, count in stats.suppressed.items())
        lines.append(f"visitors not considered: {text}")
    return "\n".join(lines)


def _row(label: str, shown: int, per: float, accepted: int, dismissed: int, indent: int) -> str:
    rate = f"{accepted / shown:.1%}" if shown and (accepted or dismissed) else "-"
    return (
        f"{' ' * indent}{label:<{28 - indent}}{shown:>7,}{per:>20.1f}"
        f"{accepted if shown else '-':>10}{dismissed if shown else '-':>11}{rate:>12}"
    )


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
