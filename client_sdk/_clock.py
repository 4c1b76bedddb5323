"""The wall-clock seam: the store and HLC read time through a :class:`Clock`.

Tests pass a clock they control (a device whose clock runs ahead, ages of pending
writes) instead of patching :mod:`time`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the Unix epoch."""
        ...


def wall_ms(clock: Clock) -> Callable[[], int]:
    """``clock`` in whole milliseconds (the wall time a hybrid logical clock reads)."""

    def read() -> int:
        return int(clock.time() * 1000)

    return read


class SystemClock:
    def time(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to (for tests and simulations)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
