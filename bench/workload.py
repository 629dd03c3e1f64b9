"""Generated inputs shared by the benchmarks: rule files, visitor contexts, traffic.

Everything is generated from a seed, so two runs measure the same work.

- `site_source(n)`: a realistic site (policy, a few defines, n rules that mix
  path globs, define references, visitor attributes, dwell, `not` and `or`,
  two message variants with a template slot, a cooldown and a per-session cap).
  Benchmark A parses it at 1,000 rules; benchmark F runs traffic against it.
- `condition_rules(n)`: the rules of benchmarks C, D and E, one shape written
  five ways (politely, a hand-written Python closure, rule-engine, CEL) so the
  implementations can be compared on exactly the same conditions.
- `visits(...)`: a stream of visitor contexts for those rules, a mix of pages
  that match a rule's path and pages that match none.
- `traffic(...)`: events for the full engine (F): page views, ticks and custom
  events from many visitors, in time order.
- `demo_traffic(...)`: traffic lines for the example site in rules/ (L), in
  time order, from a pool of returning visitors, with agents lines.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from politely import Event
from politely.state import AgentStatus, InvitationLog, InvitationRecord, VisitorState

# Monday 2026-01-05 10:00 UTC: inside every weekday schedule the rules use.
NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC).timestamp()

SECTIONS = (
    "pricing",
    "products",
    "docs",
    "blog",
    "support",
    "solutions",
    "integrations",
    "customers",
    "compare",
    "resources",
)
TOPICS = (
    "teams",
    "billing",
    "security",
    "reporting",
    "onboarding",
    "mobile",
    "exports",
    "api",
    "sso",
    "analytics",
)
# Pages no generated rule's path glob matches.
OTHER_PAGES = ("/", "/about", "/careers", "/contact", "/legal/privacy", "/checkout/cart")


def prefixes(count: int) -> list[str]:
    """`count` distinct folder prefixes such as `/pricing/teams-3/`."""
    out = []
    for j in range(count):
        section = SECTIONS[j % len(SECTIONS)]
        topic = TOPICS[(j // len(SECTIONS)) % len(TOPICS)]
        out.append(f"/{section}/{topic}-{j // (len(SECTIONS) * len(TOPICS))}/")
    return out


# --- A and F: a realistic site ------------------------------------------------------------

SITE_HEADER = """\
# A generated site for the benchmarks (bench/workload.py).

define engaged = session.pageviews >= 3 and page.dwell >= 20s
define big_cart = visitor.cart_value >= 100
define agent_free = agents.available > 0 and queue.wait < 2m
define from_ads = session.utm_medium in ["cpc", "display"] or session.referrer contains "google"
define reading = page.dwell >= 45s and page.scroll >= 50%

policy {
    at most 1 invitation per 10m
    at most 2 invitations per session
    at most 4 invitations per 7d
    at most 40 invitations per 1m sitewide
    quiet 1d after dismiss
    quiet 3d after chat
    only when agent_free
    never when page.path matches "/checkout/payment*"
    session timeout 30m
}
"""

_DEFINES = ("engaged", "big_cart", "from_ads", "reading")


def site_source(n_rules: int, seed: int = 1) -> str:
    """A policy, five defines and `n_rules` rules over `n_rules // 2` path prefixes."""
    rng = random.Random(seed)
    folders = prefixes(max(1, n_rules // 2))
    parts = [SITE_HEADER]
    for i in range(n_rules):
        prefix = folders[i % len(folders)]
        topic = prefix.strip("/").split("/")[1].split("-")[0]
        define = _DEFINES[i % len(_DEFINES)]
        dwell = 10 + rng.randrange(0, 110)
        events = "page_view, tick, add_to_cart" if i % 5 == 0 else "page_view, tick"
        extra = {
            0: "not visitor.returning",
            1: f'(visitor.plan != "enterprise" or visitor.cart_value >= {50 + i % 200})',
            2: 'not (visitor.chats > 0 or visitor.country in ["US", "CA"])',
            3: f"(session.pageviews >= {2 + i % 3} or page.title contains {topic.title()!r})",
        }[i % 4].replace("'", '"')
        during = "\n    during weekdays 08:00-20:00" if i % 7 == 0 else ""
        parts.append(
            f"rule {topic}_{i} {{\n"
            f"    priority {rng.randrange(0, 50)}\n"
            f"    on {events}\n"
            f'    when page.path matches "{prefix}*" and {define}\n'
            f"     and {extra}\n"
            f"     and page.dwell >= {dwell}s\n"
            f'    say "Questions about {topic}? We are here to help."\n'
            f'     or "Hi {{visitor.name or there}}! Need a hand with {topic}?"\n'
            f"    cooldown {1 + i % 6}h\n"
            f"    at most 1 per session{during}\n"
            f"}}\n"
        )
    return "\n".join(parts)


# --- C, D, E: one rule shape, written five ways ----------------------------------------------


@dataclass(frozen=True)
class ConditionRule:
    """Path starts with `prefix`, dwell >= `dwell` s, page views >= `pageviews`,
    not blocked, agents online > 0, time since the last invitation >= `since` s,
    invitations this session < `per_session`."""

    name: str
    prefix: str
    dwell: int
    pageviews: int
    since: int
    per_session: int


def condition_rules(n: int) -> list[ConditionRule]:
    """n rules over n // 2 prefixes: two rules per folder, with different thresholds."""
    folders = prefixes(max(1, n // 2))
    return [
        ConditionRule(
            name=f"r{i}",
            prefix=folders[i % len(folders)],
            dwell=10 + (i * 37) % 110,
            pageviews=1 + i % 4,
            since=60 * (5 + i % 25),
            per_session=1 + i % 3,
        )
        for i in range(n)
    ]


def politely_source(rules: list[ConditionRule]) -> str:
    """The rules in politely. `not blocked` has no counterpart: the engine stops
    blocked visitors before any rule is evaluated."""
    return "\n".join(
        f"rule {r.name} {{\n"
        f'    when page.path matches "{r.prefix}*" and page.dwell >= {r.dwell}s\n'
        f"     and session.pageviews >= {r.pageviews} and agents.online > 0\n"
        f"     and invitations.last >= {r.since}s and invitations.session < {r.per_session}\n"
        f'    say "Hi"\n'
        f"}}\n"
        for r in rules
    )


def hand_written(rule: ConditionRule) -> Callable[[dict[str, Any]], bool]:
    """What a programmer would write instead of a rule language: a closure."""
    prefix, dwell, pageviews = rule.prefix, rule.dwell, rule.pageviews
    since, per_session = rule.since, rule.per_session
    return lambda c: (
        c["path"].startswith(prefix)
        and c["dwell"] >= dwell
        and c["pageviews"] >= pageviews
        and not c["blocked"]
        and c["agents_online"] > 0
        and c["since_last"] >= since
        and c["invitations_session"] < per_session
    )


def rule_engine_text(rule: ConditionRule) -> str:
    return (
        f'path.starts_with("{rule.prefix}") and dwell >= {rule.dwell}'
        f" and pageviews >= {rule.pageviews} and not blocked and agents_online > 0"
        f" and since_last >= {rule.since} and invitations_session < {rule.per_session}"
    )


def cel_text(rule: ConditionRule) -> str:
    return (
        f'path.startsWith("{rule.prefix}") && dwell >= {rule.dwell}.0'
        f" && pageviews >= {rule.pageviews} && !blocked && agents_online > 0"
        f" && since_last >= {rule.since}.0 && invitations_session < {rule.per_session}"
    )


@dataclass(frozen=True)
class Visit:
    """One visitor at one moment, as all five implementations see it."""

    event: str
    path: str
    dwell: int
    pageviews: int
    agents_online: int
    since_last: float  # math.inf: never invited
    invitations_session: int

    def context(self) -> dict[str, Any]:
        """The dict the hand-written closures, rule-engine and CEL read."""
        return {
            "path": self.path,
            "dwell": float(self.dwell),
            "pageviews": self.pageviews,
            "blocked": False,
            "agents_online": self.agents_online,
            "since_last": float(self.since_last),
            "invitations_session": self.invitations_session,
        }

    def politely(self, now: float = NOW) -> tuple[VisitorState, Event, AgentStatus]:
        """The (state, event, agents) politely's generated functions read."""
        s = VisitorState()
        s.session, s.session_start, s.visits = "~1", now - 900, 1
        s.last_activity = now - self.dwell
        s.pageviews, s.landing = self.pageviews, "/"
        s.page_url = s.page_path = self.path
        s.page_start = now - self.dwell
        if not math.isinf(self.since_last):
            log = InvitationLog()
            session = "~1" if self.invitations_session else "~0"
            count = max(1, self.invitations_session)
            for k in range(count):
                at = now - self.since_last - 60 * (count - 1 - k)
                log.record(InvitationRecord(f"i{k}", at, "r0", 0, session), 7 * 86400)
            s.log = log
        online = self.agents_online
        agents = AgentStatus(online, online, 0, 0.0, now - 30)
        return s, Event(visitor="v", event=self.event, url=self.path), agents


def visits(
    rules: list[ConditionRule], count: int, seed: int = 7, *, unique_paths: bool = False
) -> list[Visit]:
    """60% of pages under some rule's folder, 40% elsewhere; 40% page views
    (dwell 0, matching no rule), 60% ticks. With `unique_paths` no path repeats,
    as on a shop with a long tail of product pages."""
    rng = random.Random(seed)
    folders = sorted({r.prefix for r in rules})
    out = []
    for i in range(count):
        item = i if unique_paths else rng.randrange(40)
        if rng.random() < 0.6:
            path = f"{rng.choice(folders)}item-{item}"
        else:
            page = rng.choice(OTHER_PAGES)
            path = f"{page}/{item}" if unique_paths else page
        event = "page_view" if rng.random() < 0.4 else "tick"
        dwell = 0 if event == "page_view" else rng.randrange(1, 240)
        invited = rng.choice((0, 0, 0, 0, 0, 0, 1, 1, 1, 2))
        if invited:
            since = float(rng.randrange(30, 3600))
        else:
            since = math.inf if rng.random() < 0.7 else float(rng.randrange(1800, 3 * 86400))
        online = 0 if rng.random() < 0.1 else rng.randint(1, 4)
        out.append(Visit(event, path, dwell, rng.randint(1, 8), online, since, invited))
    return out


# --- F: traffic for the full engine ------------------------------------------------------------


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def traffic(
    n_rules: int, n_events: int, seed: int = 11, start: float = NOW
) -> list[dict[str, Any]]:
    """About `n_events` events as JSON dicts, in time order: visitors arrive
    over the stream's span and browse pages of the site's folders (and others),
    with ticks while they read and an occasional custom `add_to_cart`."""
    rng = random.Random(seed)
    folders = prefixes(max(1, n_rules // 2))
    events: list[tuple[float, int, dict[str, Any]]] = []
    visitors = max(1, n_events // 8)
    span = max(60.0, visitors * 1.5)  # a new visitor every 1.5 s
    order = 0
    for v in range(visitors):
        t = start + rng.random() * span
        visitor = f"visitor-{seed}-{v}"
        for page in range(rng.randint(1, 6)):
            if rng.random() < 0.7:
                url = f"{rng.choice(folders)}item-{rng.randrange(200)}"
            else:
                url = rng.choice(OTHER_PAGES)
            if page == 0 and rng.random() < 0.2:
                url += "?utm_source=ads&utm_medium=cpc"
            view: dict[str, Any] = {"visitor": visitor, "event": "page_view", "url": url}
            if page == 0:
                view["referrer"] = rng.choice(("https://www.google.com/", "", "https://t.co/x"))
                if rng.random() < 0.5:
                    view["country"] = rng.choice(("DE", "FR", "US", "GB"))
                if rng.random() < 0.3:
                    view["attributes"] = {
                        "plan": rng.choice(("free", "pro", "enterprise")),
                        "cart_value": rng.randrange(0, 300),
                        "name": rng.choice(("Ada", "Linus", "Grace")),
                    }
            if rng.random() < 0.3:
                view["title"] = rng.choice(("Teams", "Billing", "Security", "Welcome"))
            events.append((t, order, view))
            order += 1
            dwell = rng.uniform(5, 120)
            tick = 10.0
            while tick < dwell:
                events.append((t + tick, order, {"visitor": visitor, "event": "tick"}))
                order += 1
                tick += rng.choice((10.0, 15.0, 30.0))
            if rng.random() < 0.15:
                cart = {"visitor": visitor, "event": "add_to_cart", "props": {"value": 80}}
                events.append((t + dwell / 2, order, cart))
                order += 1
            t += dwell
    events.sort(key=lambda item: (item[0], item[1]))
    out = []
    for at, _, event in events[:n_events]:
        event["at"] = iso(round(at))
        out.append(event)
    return out


# --- L: a day of traffic for the demo site in rules/ ------------------------------------------

# Monday 2026-01-05 08:30 in Berlin (07:30 UTC): inside the demo policy's hours.
DEMO_START = datetime(2026, 1, 5, 7, 30, tzinfo=UTC).timestamp()
DEMO_PAGES = (
    ("/", "Home"),
    ("/pricing", "Pricing"),
    ("/pricing/teams", "Plans for teams"),
    ("/products/lamp-3", "Desk lamp"),
    ("/products/shoe-1", "Trail shoe"),
    ("/products/sofa", "Sofa"),
    ("/blog/how-to-choose", "How to choose"),
    ("/cart", "Your cart"),
    ("/checkout/shipping", "Shipping"),
    ("/checkout/failed", "Error"),
    ("/account/orders", "Your orders"),
)


def demo_traffic(n_events: int, visitors: int, seed: int = 5) -> Iterator[dict[str, Any]]:
    """`n_events` event lines (and an agents line every minute) for the demo site
    of rules/, in time order, from a pool of `visitors` who come back in new
    sessions: a session starts every 2 s, browses 1-6 pages, ticks every
    10-30 s while reading, sometimes scrolls, puts a big cart and leaves
    (`exit_intent`), hits a checkout error, or answers an invitation. Page
    views are about a fifth of the events, ticks most of the rest."""
    rng = random.Random(seed)
    pending: list[tuple[float, int, dict[str, Any]]] = []  # (time, order, line)
    order = 0
    emitted = 0
    session_at = DEMO_START
    next_agents = DEMO_START

    def push(t: float, item: dict[str, Any]) -> None:
        nonlocal order
        heapq.heappush(pending, (t, order, item))
        order += 1

    while emitted < n_events:
        while pending and pending[0][0] < session_at and emitted < n_events:
            t, _, item = heapq.heappop(pending)
            while next_agents <= t:
                available = rng.choice((0, 1, 1, 2, 3))
                yield {
                    "at": iso(round(next_agents)),
                    "agents": {"online": 3, "available": available, "queue_wait": 20},
                }
                next_agents += 60.0
            item["at"] = iso(round(t))
            yield item
            emitted += 1
        visitor = f"v{rng.randrange(visitors):06d}"
        t = session_at
        for page in range(rng.randint(1, 6)):
            url, title = rng.choice(DEMO_PAGES)
            view: dict[str, Any] = {"visitor": visitor, "event": "page_view", "url": url}
            if rng.random() < 0.6:
                view["title"] = title
            if page == 0:
                view["referrer"] = rng.choice(("https://www.google.com/", "", "https://t.co/x"))
                if rng.random() < 0.2:
                    view["url"] = url + "?utm_source=newsletter&utm_medium=email"
            if url == "/cart":
                view["attributes"] = {"cart_value": rng.randrange(20, 400)}
            push(t, view)
            dwell = rng.uniform(10, 150)
            tick = rng.choice((10.0, 15.0))
            while tick < dwell:
                push(t + tick, {"visitor": visitor, "event": "tick"})
                if rng.random() < 0.08:
                    push(t + tick + 1, {"visitor": visitor, "event": "scroll", "scroll": 60})
                tick += rng.choice((10.0, 15.0, 30.0))
            if rng.random() < 0.02:
                outcome = rng.choice(("invitation_accepted", "invitation_dismissed"))
                push(t + dwell / 2, {"visitor": visitor, "event": outcome})
            if url == "/cart" and rng.random() < 0.3:
                push(t + dwell - 1, {"visitor": visitor, "event": "exit_intent"})
            if url == "/checkout/failed" and rng.random() < 0.5:
                push(t + 3, {"visitor": visitor, "event": "checkout_error"})
            t += dwell
        session_at += 2.0
