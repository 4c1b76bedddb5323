"""Hybrid logical clock (Kulkarni et al., 2014).

A timestamp is ``(wall_ms, counter, node)``. It is

* monotonic per device — ``now()`` never returns a value ≤ a previous one, even if the
  wall clock steps backwards;
* causal — ``receive(remote)`` moves the clock past every timestamp the device has seen,
  so an edit made after pulling a value always orders after that value;
* totally ordered — ties on ``(wall_ms, counter)`` are broken by the node (device) id, so
  every replica orders the same two writes the same way.

The wire form is a fixed-width string, ``"001732363212345:00000:device-id"`` (15 digits of
Unix milliseconds, 5 digits of counter, the node id), whose
lexicographic order *is* the timestamp order: servers compare HLCs as plain strings
(also in SQL), without parsing.

A device whose wall clock runs far ahead would otherwise win every last-writer-wins
merge forever. :func:`check_drift` lets the server refuse (or clamp) timestamps more than
``max_drift_ms`` ahead of its own clock; the SDK surfaces the ``clock_skew`` error.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import total_ordering

from .errors import ClockSkew

WALL_DIGITS = 15
COUNTER_DIGITS = 5
MAX_COUNTER = 10**COUNTER_DIGITS - 1
#: Default tolerated drift between a device's HLC and the server clock (5 minutes).
DEFAULT_MAX_DRIFT_MS = 5 * 60 * 1000


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@total_ordering
@dataclass(frozen=True, slots=True)
class Timestamp:
    """One HLC reading. Order: wall time, then counter, then node id."""

    wall_ms: int
    counter: int
    node: str

    def __post_init__(self) -> None:
        # The fixed-width wire form only sorts correctly inside these ranges.
        if not 0 <= self.wall_ms < 10**WALL_DIGITS or not 0 <= self.counter <= MAX_COUNTER:
            raise ValueError(f"HLC out of range: {self.wall_ms}:{self.counter}")
        if not self.node or ":" in self.node:
            raise ValueError("an HLC node id must be non-empty and contain no ':'")

    def encode(self) -> str:
        return f"{self.wall_ms:0{WALL_DIGITS}d}:{self.counter:0{COUNTER_DIGITS}d}:{self.node}"

    @classmethod
    def parse(cls, text: str) -> Timestamp:
        """The timestamp written ``text`` (:meth:`encode`); ``ValueError`` if it is not
        one. A match of the wire form is always in range (15 and 5 ASCII digits, a node
        without ``:``), so it is built without :meth:`__post_init__`'s checks — a push
        parses every mutation's HLC (``tests/sync_protocol/test_hlc.py``)."""
        found = _WIRE.fullmatch(text) if isinstance(text, str) else None
        if found is None:
            raise ValueError(f"not an HLC timestamp: {text!r}")
        wall, counter, node = found.groups()
        if cls is not Timestamp:  # a subclass may check more: its own constructor
            return cls(int(wall), int(counter), node)
        ts = _new(Timestamp)
        _set(ts, "wall_ms", int(wall))
        _set(ts, "counter", int(counter))
        _set(ts, "node", node)
        return ts

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Timestamp):
            return NotImplemented
        return (self.wall_ms, self.counter, self.node) < (other.wall_ms, other.counter, other.node)

    def __str__(self) -> str:
        return self.encode()


#: The wire form (:meth:`Timestamp.encode`): ASCII digits only (``str.isdigit`` and
#: ``\d`` take other scripts' digits too), a non-empty node id without ``:``.
_WIRE = re.compile(f"([0-9]{{{WALL_DIGITS}}}):([0-9]{{{COUNTER_DIGITS}}}):([^:]+)")
_new = object.__new__
_set = object.__setattr__


def is_hlc(text: str) -> bool:
    try:
        Timestamp.parse(text)
    except ValueError:
        return False
    return True


class HybridLogicalClock:
    """The clock of one node (device or server).

    ``wall`` is injectable so tests can skew or freeze the physical clock.
    """

    def __init__(
        self,
        node: str,
        *,
        wall: Callable[[], int] = wall_clock_ms,
        last: Timestamp | str | None = None,
    ) -> None:
        if not node or ":" in node:
            raise ValueError("an HLC node id must be non-empty and contain no ':'")
        self.node = node
        self._wall = wall
        if isinstance(last, str):
            last = Timestamp.parse(last)
        self._wall_ms = last.wall_ms if last else 0
        self._counter = last.counter if last else 0

    @property
    def last(self) -> Timestamp:
        return Timestamp(self._wall_ms, self._counter, self.node)

    def now(self) -> Timestamp:
        """A new timestamp for a local event, strictly greater than any before."""
        physical = self._wall()
        if physical > self._wall_ms:
            self._wall_ms, self._counter = physical, 0
        else:
            self._bump()
        return self.last

    def receive(self, remote: Timestamp | str) -> Timestamp:
        """Merge a timestamp seen from another node; returns the new local reading."""
        if isinstance(remote, str):
            remote = Timestamp.parse(remote)
        physical = self._wall()
        top = max(physical, self._wall_ms, remote.wall_ms)
        if top == self._wall_ms and top == remote.wall_ms:
            self._counter = max(self._counter, remote.counter)
            self._bump_from(top)
        elif top == self._wall_ms:
            self._bump_from(top)
        elif top == remote.wall_ms:
            self._wall_ms, self._counter = top, remote.counter
            self._bump_from(top)
        else:
            self._wall_ms, self._counter = top, 0
        return self.last

    def _bump_from(self, wall_ms: int) -> None:
        self._wall_ms = wall_ms
        self._bump()

    def _bump(self) -> None:
        if self._counter >= MAX_COUNTER:
            # Counter exhausted within one millisecond: borrow the next millisecond.
            self._wall_ms += 1
            self._counter = 0
        else:
            self._counter += 1


def check_drift(
    timestamp: Timestamp | str,
    *,
    server_now_ms: int,
    max_drift_ms: int = DEFAULT_MAX_DRIFT_MS,
) -> Timestamp:
    """Refuse a timestamp more than ``max_drift_ms`` ahead of the server's clock.

    Raises :class:`ClockSkew` with ``details.drift_ms`` and ``details.server_time_ms`` so
    the device can tell its user the clock is wrong. Timestamps in the past are fine:
    a device that was offline for days legitimately carries old timestamps.
    """
    ts = Timestamp.parse(timestamp) if isinstance(timestamp, str) else timestamp
    drift = ts.wall_ms - server_now_ms
    if drift > max_drift_ms:
        raise ClockSkew(
            f"device clock is {drift // 1000} s ahead of the server (limit "
            f"{max_drift_ms // 1000} s); fix the device's date and time",
            details={
                "drift_ms": drift,
                "server_time_ms": server_now_ms,
                "max_drift_ms": max_drift_ms,
            },
        )
    return ts


def clamp(timestamp: Timestamp | str, *, server_now_ms: int, max_drift_ms: int) -> Timestamp:
    """The timestamp, pulled back to at most ``now + max_drift``.

    A timestamp beyond the limit becomes ``(limit, 0, node)``: the counter is dropped
    too, because a skewed device's timestamps all clamp to the same wall time and their
    counters would then order them wrongly (an edit made in a new millisecond has a
    smaller counter than one made in the previous millisecond). All of one device's
    clamped edits in a push are therefore equal, and the merge orders equal timestamps
    of one device by arrival — the order the device queued them in. A later push clamps
    to a later limit, so a clamped write never beats a later normal write for longer
    than ``max_drift_ms``.
    """
    ts = Timestamp.parse(timestamp) if isinstance(timestamp, str) else timestamp
    limit = server_now_ms + max_drift_ms
    if ts.wall_ms <= limit:
        return ts
    return Timestamp(limit, 0, ts.node)
