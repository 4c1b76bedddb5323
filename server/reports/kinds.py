"""How a report reads one field: its *kind*, the same meaning on both databases.

* ``TEXT`` — the JSON string (enums, ids, names).
* ``NUMBER`` — a double-precision number; report sums of money are rounded to cents
  (the error of summing 10⁶ amounts in binary floating point is far below a cent, and
  ``numeric`` arithmetic measured several times slower).
* ``FLAG`` — a JSON boolean as ``1``/``0`` (``NULL`` when absent).
* ``DAY`` — the first ten characters of a date or date-time, ``YYYY-MM-DD``: a
  date-time's *local* calendar day in the offset it was recorded with (a deal closed at
  ``2026-10-31T23:00+08:00`` belongs to October 31, where the rep was). Compared with
  ISO date strings.
* ``EPOCH`` — a date-time as whole seconds since 1970 (the UTC instant), for durations
  and comparisons with a moment; ``NULL`` when absent or not an ISO date-time (a
  date-time without an offset is read as UTC).
* ``DAYNUM`` — a date as whole days since 1970-01-01, for date arithmetic ("ends
  within its own reminder window").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    TEXT = "text"
    NUMBER = "number"
    FLAG = "flag"
    DAY = "day"
    EPOCH = "epoch"
    DAYNUM = "daynum"


TEXT, NUMBER, FLAG, DAY, EPOCH, DAYNUM = (
    Kind.TEXT,
    Kind.NUMBER,
    Kind.FLAG,
    Kind.DAY,
    Kind.EPOCH,
    Kind.DAYNUM,
)


@dataclass(frozen=True, slots=True)
class F:
    """Field ``key`` of the record read as ``kind`` (when the column name differs)."""

    key: str
    kind: Kind


#: A view's columns: output name → kind (the field of that name) or :class:`F`.
Columns = Mapping[str, "F | Kind"]
