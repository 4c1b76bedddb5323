"""Time-ordered identifiers (UUIDv7, RFC 9562) for records, mutations and devices.

UUIDv7 ids sort by creation time, so the outbox and new records index well, and two
devices can never collide without coordination. Ids made in the same millisecond by
this process also sort in the order they were made (RFC 9562 §6.2 method 1: the 12
``rand_a`` bits are a counter seeded at random for each millisecond), so writes the
server refused — dead letters, keyed by their mutation id — keep their original order,
and a refused group is queued again in the order it was written.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = -1
_counter = 0


#: A clock that steps back by at most this much keeps the last millisecond (ids stay in
#: order); a bigger jump (a test clock set to another day) is taken as it is.
_BACKWARDS_MS = 10_000


def _sequence(ms: int) -> tuple[int, int]:
    """(ms, counter) for a new id: the counter goes up within one millisecond (and
    across a small step back of the clock); a later millisecond starts a fresh random
    seed with headroom; 2048+ ids in one millisecond borrow the next one."""
    global _last_ms, _counter
    with _lock:
        if _last_ms - _BACKWARDS_MS <= ms <= _last_ms:
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:
                ms = _last_ms = _last_ms + 1
                _counter = int.from_bytes(os.urandom(2), "big") & 0x7FF
        else:
            _last_ms = ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x7FF
        return ms, _counter


def uuid7(now_ms: int | None = None) -> str:
    """A new UUIDv7 as its canonical 36-character string."""
    ms, counter = _sequence(time.time_ns() // 1_000_000 if now_ms is None else now_ms)
    rand = int.from_bytes(os.urandom(8), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= counter << 64  # rand_a (12 bits): the counter
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b (62 bits)
    return str(uuid.UUID(int=value))


def new_device_id() -> str:
    """A random device id that is also a valid HLC node id (no ``:``)."""
    return "dev-" + os.urandom(8).hex()
