"""Time-ordered identifiers (UUIDv7, RFC 9562) for records, mutations and devices.

UUIDv7 ids sort by creation time, so the outbox and new records index well, and two
devices can never collide without coordination.
"""

from __future__ import annotations

import os
import time
import uuid


def uuid7(now_ms: int | None = None) -> str:
    """A new UUIDv7 as its canonical 36-character string."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 64) & 0xFFF) << 64  # rand_a (12 bits)
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b (62 bits)
    return str(uuid.UUID(int=value))


def new_device_id() -> str:
    """A random device id that is also a valid HLC node id (no ``:``)."""
    return "dev-" + os.urandom(8).hex()
