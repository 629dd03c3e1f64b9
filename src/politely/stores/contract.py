"""The store contract's rules over plain data, shared by the Python stores.

The memory and SQLite stores call these inside their atomic step; the Redis
store's Lua script does the same with the same layout (`politely.codec`).

    >>> from politely.caps import Cap
    >>> from politely.state import InvitationRecord
    >>> record = InvitationRecord("i1", 100.0, "r", 0, "s1")
    >>> claim = Claim(record, (Cap(1, 600),), (), keep_for=600, keep_sitewide_for=0)
    >>> first = admit(None, claim)
    >>> admit(first, claim) is None  # the cap is used
    True
"""

from __future__ import annotations

from politely.caps import visitor_allows
from politely.codec import decode_history, encode_history
from politely.state import InvitationLog
from politely.stores.base import Claim, Remember


def admit(history: bytes | None, claim: Claim) -> bytes | None:
    """The history with the claim's invitation recorded, or None if a cap refuses it."""
    log = decode_history(history) if history is not None else InvitationLog()
    record = claim.record
    if not visitor_allows(claim.caps, log, record.session, record.at):
        return None
    log.record(record, claim.keep_for)
    return encode_history(log)


def remember(
    seen: dict[str, tuple[float, bytes]] | None, entry: Remember, decision: bytes
) -> dict[str, tuple[float, bytes]]:
    """Remembered event ids after this one: recent ones only, at most `keep_at_most`."""
    kept = {
        key: value
        for key, value in (seen or {}).items()
        if entry.at - value[0] < entry.keep_for and key != entry.event_id
    }
    kept[entry.event_id] = (entry.at, decision)
    while len(kept) > entry.keep_at_most:
        del kept[next(iter(kept))]
    return kept


def replay(
    seen: dict[str, tuple[float, bytes]] | None, event_id: str | None
) -> tuple[float, bytes] | None:
    if event_id is None or not seen:
        return None
    return seen.get(event_id)
