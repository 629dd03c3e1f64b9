"""The store protocol: everything the engine needs from storage, in domain terms.

Only `commit` must be atomic: it checks every cap of the verdict's invitation
against the store's own invitation history (which concurrent requests on any
server instance may have changed since `load`) and records the invitation
only if they all still allow it; it then saves the visitor's new state. An
event id the stored state has already seen means a retry raced its original:
commit returns the original's decision and changes nothing. The rest of a
visitor's state is last-writer-wins: two events of one visitor arriving at
the same instant may lose one page view, never break a cap.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

from politely.state import AgentStatus, Block, Snapshot

if TYPE_CHECKING:
    from politely.evaluator import Count, Verdict


class Store(Protocol):
    def load(self, visitor: str, now: float) -> Snapshot:
        """The visitor's state and block, and the site's agents and recent invitations."""
        ...

    def commit(self, visitor: str, verdict: Verdict, now: float) -> Verdict:
        """Atomically: record the invitation if every cap still allows it, save the state.

        Returns the verdict as applied: `verdict.refused()` when a cap no longer
        allowed it, `verdict.replay(first)` when its event id was already seen.
        """
        ...

    def retain_for(self, seconds: float) -> None:
        """Keep an idle visitor at least this long (a rule set's `retention`)."""
        ...

    def block(self, visitor: str, block: Block) -> None: ...

    def unblock(self, visitor: str) -> bool: ...

    def blocks(self, now: float) -> Mapping[str, Block]: ...

    def set_agents(self, status: AgentStatus) -> None: ...

    def count(self, counts: Iterable[Count]) -> None:
        """Add to the site's statistics: (rule, variant, what) triples."""
        ...

    def stats(self) -> Counter[Count]: ...

    def close(self) -> None: ...
