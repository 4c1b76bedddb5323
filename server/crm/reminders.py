"""Reminders on the server: the ``reminders`` table and the queries over it.

Every write refreshes the reminder of the tasks, contracts and customers it touched
(:func:`index_reminders`, from the push flush), using :func:`sync_protocol.reminders.
reminder_of` — the function phones use on their own records. "What is due" is then an
index range scan on ``due_at_ms`` joined to the record for scope:

* :func:`due_for` — the reminders due now (or within ``ahead_ms``) that a principal may
  see, optionally for one user (a reminder is *for* its ``user_id`` — a task's assignee —
  else for the record's owner): the manager API, the console, ``GET /v1/reminders``;
* :func:`due_between` — reminders whose due time falls in ``(after_ms, until_ms]``, for
  the ``reminder.due`` webhook (no scope: the integration layer decides who hears it).

Dates are read in :data:`TEAM_TZ` (China Standard Time).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, or_, select

from sync_protocol.reminders import SOURCES, reminder_of

from ..accounts import Principal
from ..models import Record, ReminderRow
from ..repository.writing import delete_by_key, insert_rows
from .indexing import IndexedRow

reminders_t = cast(Table, ReminderRow.__table__)
records_t = cast(Table, Record.__table__)


def _team_tz() -> tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("Asia/Shanghai")
    except Exception:  # no tz database on the host: the same offset, without history
        return timezone(timedelta(hours=8), "CST")


TEAM_TZ = _team_tz()


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def index_reminders(
    conn: Connection, rows: Sequence[IndexedRow], tz: tzinfo = TEAM_TZ, *, fresh: bool = False
) -> None:
    """Replace the reminders of ``rows`` (tasks, contracts, customers); ``fresh``: the
    table holds none of them yet (a backfill), nothing to delete."""
    mine = [r for r in rows if r.collection in SOURCES]
    if not mine:
        return
    if not fresh:
        by_collection: dict[str, list[str]] = {}
        for r in mine:
            by_collection.setdefault(r.collection, []).append(r.record_id)
        for collection, ids in sorted(by_collection.items()):
            for start in range(0, len(ids), 500):
                delete_by_key(conn, "reminders", collection, sorted(ids[start : start + 500]))
    values: list[tuple[Any, ...]] = []
    for r in mine:
        reminder = None if r.deleted else reminder_of(r.collection, r.record_id, r.fields, tz=tz)
        if reminder is None:
            continue
        values.append(
            (
                r.collection,
                r.record_id,
                reminder.kind,
                _ms(reminder.due_at),
                _ms(reminder.until) if reminder.until else None,
                reminder.user_id,
                reminder.title[:300],
            )
        )
    # One statement straight to the driver (SQLAlchemy's per-row parameter handling
    # cost more than the insert: a push of 1,000 customers writes 1,000 reminders).
    insert_rows(conn, "reminders", _COLUMNS, values)


_COLUMNS = (
    ("collection", "text"),
    ("record_id", "text"),
    ("kind", "text"),
    ("due_at_ms", "bigint"),
    ("until_ms", "bigint"),
    ("user_id", "text"),
    ("title", "text"),
)


@dataclass(frozen=True, slots=True)
class DueReminder:
    kind: str
    collection: str
    record_id: str
    customer_id: str | None
    owner_id: str | None
    #: Whom it is for: the task's assignee, else the record's owner.
    user_id: str | None
    title: str
    due_at_ms: int
    until_ms: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "collection": self.collection,
            "record_id": self.record_id,
            "customer_id": self.customer_id,
            "owner_id": self.owner_id,
            "user_id": self.user_id,
            "title": self.title,
            "due_at": _iso(self.due_at_ms),
            "until": _iso(self.until_ms) if self.until_ms is not None else None,
        }


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _select() -> Any:
    return select(
        reminders_t.c.kind,
        reminders_t.c.collection,
        reminders_t.c.record_id,
        records_t.c.customer_id,
        records_t.c.owner_id,
        reminders_t.c.user_id,
        reminders_t.c.title,
        reminders_t.c.due_at_ms,
        reminders_t.c.until_ms,
    ).join(
        records_t,
        and_(
            records_t.c.collection == reminders_t.c.collection,
            records_t.c.record_id == reminders_t.c.record_id,
        ),
    )


def _rows(conn: Connection, stmt: Any) -> list[DueReminder]:
    out = []
    for r in conn.execute(stmt):
        out.append(
            DueReminder(
                r.kind,
                r.collection,
                r.record_id,
                r.customer_id,
                r.owner_id,
                r.user_id or r.owner_id,
                r.title,
                int(r.due_at_ms),
                None if r.until_ms is None else int(r.until_ms),
            )
        )
    return out


def due_for(
    conn: Connection,
    principal: Principal,
    *,
    now_ms: int,
    ahead_ms: int = 0,
    user_ids: Iterable[str] | None = None,
    limit: int = 1000,
) -> list[DueReminder]:
    """Reminders due at ``now_ms`` (or within ``ahead_ms``) in the principal's scope,
    soonest first; ``user_ids`` keeps those *for* these users."""
    stmt = _select().where(
        reminders_t.c.due_at_ms <= now_ms + ahead_ms,
        or_(reminders_t.c.until_ms.is_(None), reminders_t.c.until_ms > now_ms),
        records_t.c.deleted.is_(False),
    )
    if principal.role != "admin":
        people = sorted(principal.team_member_ids | {principal.user_id})
        stmt = stmt.where(
            or_(records_t.c.owner_id.in_(people), reminders_t.c.user_id == principal.user_id)
        )
    if user_ids is not None:
        wanted = sorted(set(user_ids))
        stmt = stmt.where(
            or_(
                reminders_t.c.user_id.in_(wanted),
                and_(reminders_t.c.user_id.is_(None), records_t.c.owner_id.in_(wanted)),
            )
        )
    order = (reminders_t.c.due_at_ms, reminders_t.c.collection, reminders_t.c.record_id)
    return _rows(conn, stmt.order_by(*order).limit(limit))


def due_between(conn: Connection, after_ms: int, until_ms: int) -> list[DueReminder]:
    """Reminders that *became* due in ``(after_ms, until_ms]`` (and are still live): what
    a ``reminder.due`` event announces. Call it with consecutive windows."""
    stmt = _select().where(
        reminders_t.c.due_at_ms > after_ms,
        reminders_t.c.due_at_ms <= until_ms,
        or_(reminders_t.c.until_ms.is_(None), reminders_t.c.until_ms > until_ms),
        records_t.c.deleted.is_(False),
    )
    return _rows(conn, stmt.order_by(reminders_t.c.due_at_ms, reminders_t.c.record_id))
