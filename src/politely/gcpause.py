"""Pausing the cyclic garbage collector while a large structure is built.

Parsing and compiling a site allocate millions of objects that all stay alive;
each collection the allocations trigger walks every one of them again, so on a
10,000-rule site the collector takes about as long as the work itself. Inside
`paused()` it does not run; when the last thread inside leaves, it runs again
as before (never if it was off: a caller's `gc.disable()` is respected).
Garbage made meanwhile is collected afterwards as usual.

    >>> import gc
    >>> with paused():
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_inside = 0  # threads inside `paused`
_restore = False  # whether the collector was on when the first of them entered


@contextmanager
def paused() -> Iterator[None]:
    global _inside, _restore
    with _lock:
        if _inside == 0:
            _restore = gc.isenabled()
            gc.disable()
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0 and _restore:
                gc.enable()
