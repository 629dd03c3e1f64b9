"""`gcpause.paused` turns the collector back on only when the last thread leaves,
and never turns on a collector the caller had turned off."""

from __future__ import annotations

import gc
import threading

from politely import gcpause


def test_the_collector_runs_again_when_the_last_thread_leaves() -> None:
    entered, leave = threading.Event(), threading.Event()

    def inside() -> None:
        with gcpause.paused():
            entered.set()
            leave.wait(10)

    other = threading.Thread(target=inside)
    with gcpause.paused():
        other.start()
        entered.wait(10)
    assert not gc.isenabled()  # the other thread is still inside
    leave.set()
    other.join(10)
    assert gc.isenabled()


def test_a_collector_turned_off_stays_off() -> None:
    gc.disable()
    try:
        with gcpause.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
