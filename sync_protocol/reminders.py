"""Reminders (提醒): computed from each record's own fields, the same way on every side.

There is no reminders collection to sync: a reminder is a *function of a record*, so a
phone computes its reps' reminders from the records it already holds — offline, at the
right moment — and the server computes the same ones for the manager API, the console
and the ``reminder.due`` webhook (it keeps them in a table refreshed on every write).

=============  =========================================  =====================  ==========
kind           when the record has                         due at                 for
=============  =========================================  =====================  ==========
``task``       ``status`` open and ``remind_at``           ``remind_at``          ``assignee_id``, else the customer's owner
``contract``   ``status`` signed/active, ``ends_on`` and   ``ends_on`` −          the customer's owner
               ``remind_days_before``                      ``remind_days_before``
                                                           days, at the start of
                                                           that day
``follow_up``  ``next_follow_up`` (customers)              the start of that day  the owner
=============  =========================================  =====================  ==========

A reminder is **due** from its due time on, and stays due until the record changes
(task done, follow-up date moved) — for a contract, until the end of ``ends_on``
(afterwards the contract has expired and the expiry report lists it). Dates are read
in the team's time zone (the caller passes it; the server's is ``Asia/Shanghai`` unless
configured).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

TASK, CONTRACT, FOLLOW_UP = "task", "contract", "follow_up"
#: The collections reminders come from, and the fields each reminder depends on.
SOURCES: Mapping[str, tuple[str, ...]] = {
    "tasks": ("status", "remind_at", "title", "assignee_id"),
    "contracts": ("status", "ends_on", "remind_days_before", "number", "title"),
    "customers": ("next_follow_up", "name"),
}
_LIVE_CONTRACTS = ("signed", "active")


@dataclass(frozen=True, slots=True)
class Reminder:
    """One reminder of one record."""

    kind: str
    collection: str
    record_id: str
    due_at: datetime
    #: When it stops being due (``None``: when the record changes).
    until: datetime | None
    title: str
    #: The user it is for when the record names one (a task's assignee), else ``None``:
    #: the record's owner.
    user_id: str | None = None

    def is_due(self, now: datetime) -> bool:
        return self.due_at <= now and (self.until is None or now < self.until)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "collection": self.collection,
            "record_id": self.record_id,
            "due_at": self.due_at.isoformat(),
            "until": self.until.isoformat() if self.until else None,
            "title": self.title,
            "user_id": self.user_id,
        }


def _datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _start(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0, 0), tz)


def reminder_of(
    collection: str, record_id: str, fields: Mapping[str, Any], *, tz: tzinfo
) -> Reminder | None:
    """The reminder a record carries, if any (see the module docstring)."""
    if collection == "tasks":
        at = _datetime(fields.get("remind_at"))
        if at is None or fields.get("status") != "open":
            return None
        assignee = fields.get("assignee_id")
        return Reminder(
            TASK,
            collection,
            record_id,
            at,
            None,
            str(fields.get("title") or ""),
            assignee if isinstance(assignee, str) else None,
        )
    if collection == "contracts":
        ends = _date(fields.get("ends_on"))
        days = fields.get("remind_days_before")
        if ends is None or not isinstance(days, int) or fields.get("status") not in _LIVE_CONTRACTS:
            return None
        title = " ".join(str(fields.get(n)) for n in ("number", "title") if fields.get(n))
        return Reminder(
            CONTRACT,
            collection,
            record_id,
            _start(ends - timedelta(days=days), tz),
            _start(ends + timedelta(days=1), tz),
            title,
        )
    if collection == "customers":
        day = _date(fields.get("next_follow_up"))
        if day is None:
            return None
        return Reminder(
            FOLLOW_UP, collection, record_id, _start(day, tz), None, str(fields.get("name") or "")
        )
    return None


def due_reminders(
    records: Iterable[tuple[str, str, Mapping[str, Any]]],
    *,
    now: datetime,
    tz: tzinfo,
    ahead: timedelta = timedelta(0),
) -> list[Reminder]:
    """The reminders due at ``now`` (or within ``ahead`` of it) among ``(collection,
    record id, fields)`` triples, soonest first. A device passes its live records."""
    horizon = now + ahead
    found = []
    for collection, record_id, fields in records:
        reminder = reminder_of(collection, record_id, fields, tz=tz)
        if reminder is None or reminder.due_at > horizon:
            continue
        if reminder.until is None or now < reminder.until:
            found.append(reminder)
    return sorted(found, key=lambda r: (r.due_at, r.collection, r.record_id))


__all__ = [
    "CONTRACT",
    "FOLLOW_UP",
    "SOURCES",
    "TASK",
    "Reminder",
    "due_reminders",
    "reminder_of",
]
