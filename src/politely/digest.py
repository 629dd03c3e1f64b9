"""SHA-256 digests that start OpenSSL only when it pays.

`import hashlib` loads OpenSSL: about 11 million instructions, some 6 ms, 3% of a
`politely check` of a small site, which only takes a few digests of a few
kilobytes (its files' cache keys). CPython's own SHA-256 (`_sha2`, `_sha256`
before Python 3.12) gives the same digests without that start-up, but is about
5x slower a byte, so large inputs go to hashlib's, as does every input once
hashlib is loaded anyway.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Protocol

OPENSSL_FROM = 256 * 1024  # bytes to hash: from here OpenSSL's speed pays for its start-up


class Hash(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...


def sha256(data: bytes | memoryview = b"", *, more: int = 0) -> Hash:
    """A SHA-256 of `data`, to update with about `more` bytes still to come."""
    if _OWN is None or "hashlib" in sys.modules or len(data) + more >= OPENSSL_FROM:
        import hashlib

        return hashlib.sha256(data)
    return _OWN(data)


def _own_sha256() -> Callable[[bytes | memoryview], Hash] | None:
    """CPython's built-in SHA-256, or None in a build without it."""
    for name in ("_sha2", "_sha256"):
        try:
            found: Callable[[bytes | memoryview], Hash] = importlib.import_module(name).sha256
        except (ImportError, AttributeError):
            continue
        return found
    return None


_OWN = _own_sha256()
