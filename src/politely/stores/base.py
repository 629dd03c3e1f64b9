"""The store protocol: what the engine needs from storage, as plain data.

A store keeps, per site: each visitor's profile (opaque bytes), invitation
history (bytes in the layout `politely.codec` documents), remembered event
ids with their encoded decisions, and a version; the site's sitewide
invitation times, blocks, agent status and statistics. It runs no evaluator
code: the engine loads a `Loaded`, evaluates, and hands back a `Write`.

`commit` is the one atomic step, all or nothing:

1. if the visitor's version is not `write.version`, change nothing and answer
   `CONFLICT` (another event of this visitor was committed in between: the
   engine loads and evaluates again, so no event is ever lost);
2. if the write carries a `Claim`, check its caps against the stored history
   and the site's sitewide times; if they all allow it, record the invitation
   (history, sitewide) and answer `APPLIED`, else answer `REFUSED`;
3. either way save the profile, remember the event id with the decision of
   that outcome (`decision` or `refused`), add that outcome's statistics
   counts, bump the version and keep the visitor `keep_for` seconds.

Backend errors are raised as `StoreError` (the engine then fails quiet).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from typing import NamedTuple, Protocol

import msgspec

from politely.caps import Cap
from politely.state import AgentStatus, Block, Count, InvitationRecord, SitewideUsage


class Outcome(Enum):
    APPLIED = "applied"
    REFUSED = "refused"  # a cap no longer allowed the claim; everything else was saved
    CONFLICT = "conflict"  # the visitor changed since it was loaded; nothing was saved


class Loaded(msgspec.Struct, frozen=True):
    """A visitor as stored, and what the site's caps need, at one moment.

    This and the other plain records of the seam (`Claim`, `Remember`, `Write`)
    are made for every event: named tuples, not frozen dataclasses, which take
    three times as long to build; this one, made for every event of every
    store, a frozen msgspec Struct, made in C in a third of a named tuple's time."""

    version: int  # 0: never stored
    profile: bytes | None
    history: bytes | None
    block: Block | None  # an active block only
    agents: AgentStatus | None
    sitewide: tuple[SitewideUsage, ...]  # one per asked cap, in its order
    replay: tuple[float, bytes] | None  # the event id's remembered (time, decision)


class Claim(NamedTuple):
    """Record `record` if every cap still allows it: `caps` against the visitor's
    history (session caps count `record.session`), `sitewide` against the site's."""

    record: InvitationRecord
    caps: tuple[Cap, ...]
    sitewide: tuple[Cap, ...]
    keep_for: float  # trim history older than this (the longest rolling window)
    keep_sitewide_for: float


class Remember(NamedTuple):
    """An event id to remember with its decision, so a retry is answered the same."""

    event_id: str
    at: float
    decision: bytes
    refused: bytes | None = None  # the decision to remember when the claim is refused
    keep_for: float = 600.0  # forget ids older than this...
    keep_at_most: int = 64  # ...and all but this many


class Write(NamedTuple):
    """One event's change to one visitor, applied by `commit` or not at all."""

    version: int  # the version it was evaluated on
    at: float
    profile: bytes | None  # None: unchanged
    keep_for: float  # keep the visitor this long after `at` (inf: until erased)
    claim: Claim | None = None
    remember: Remember | None = None
    counts: tuple[Count, ...] = ()
    refused_counts: tuple[Count, ...] = ()  # instead of `counts` when the claim is refused


class Store(Protocol):
    def load(
        self,
        site: str,
        visitor: str,
        now: float,
        *,
        event_id: str | None = None,
        sitewide: Sequence[Cap] = (),
    ) -> Loaded:
        """The visitor, its active block, the site's agents, and each sitewide cap's use."""
        ...

    def commit(self, site: str, visitor: str, write: Write) -> Outcome:
        """Apply `write` atomically, as the module docstring says."""
        ...

    def count(self, site: str, counts: Iterable[Count]) -> None:
        """Add statistics for an event that changed nothing else (no version check)."""
        ...

    def forget(self, site: str, visitor: str) -> bool:
        """Erase everything stored about a visitor: profile, history, ids, block."""
        ...

    def block(self, site: str, visitor: str, block: Block) -> None: ...

    def unblock(self, site: str, visitor: str) -> bool: ...

    def blocks(self, site: str, now: float) -> Mapping[str, Block]: ...

    def set_agents(self, site: str, status: AgentStatus) -> None: ...

    def stats(self, site: str) -> Counter[Count]: ...

    def ping(self) -> None:
        """Raise StoreError unless the store answers (readiness checks)."""
        ...

    def close(self) -> None: ...
