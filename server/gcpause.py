"""The cyclic garbage collector held off while a push runs.

A 1,000-mutation push keeps ~100,000 objects alive until it answers (parsed mutations,
row states, encoded rows): each collection of the young generation during it walked
the survivors again, and each older one all of them — ~15 % of a push's CPU measured
on SQLite at 100,000 records. Those objects are freed by reference counting when the
push ends; the few cycles it makes are collected at the first collection after it.

:func:`collector_paused` switches the collector off while at least one push runs (a
count shared by the threads serving pushes) and back on when the last one ends —
unless it was off already when the first began (someone else's choice: left alone).
Allocations still count meanwhile, so the first allocation after the pause starts a
collection of what survived.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_running = 0
_ours = False


@contextmanager
def collector_paused() -> Iterator[None]:
    global _running, _ours
    with _lock:
        if _running == 0:
            _ours = gc.isenabled()
            if _ours:
                gc.disable()
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0 and _ours:
                _ours = False
                gc.enable()
