"""The event outbox: what happened, written in the transaction that made it happen.

Event types (``EVENT_TYPES``):

* ``record.changed`` — every record a write path stored (push, manager API, import,
  merge) and every record an ownership move gave a new version (a reassignment — also
  the first step of a merge — and a team move, :func:`write_record_events`):
  ``{collection, record_id, version, deleted, owner_id, customer_id, fields}``;
* ``lead.converted`` — a lead turned ``converted`` (the device's offline group or the
  conversion API): ``{lead_id, customer_id, contact_id, opportunity_id, owner_id}``;
* ``order.placed`` — a ``quotes`` record that is (newly) an order:
  ``{order_id, customer_id, number, status, total, currency, quote_id, owner_id}``;
* ``reminder.due`` — a reminder whose time came (written by the dispatcher's scan of
  :func:`server.crm.reminders.due_between`, not by a write).

The sync engine calls :meth:`EventsRule.check_unit` last among the CRM rules — a unit
that reaches it is accepted — and :func:`write_events` from its flush, in the push's
transaction: an event exists exactly when its change committed, and a rolled-back push
leaves none. Nothing is written while no webhook is active (the outbox feeds webhooks
only; integrators who poll read the change feed).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select

from ..models import Record
from ..repository.rows import RowState
from ..repository.units import Batch, UnitWrite
from .models import IntegrationEvent, Webhook

events_t = cast(Table, IntegrationEvent.__table__)
records_t = cast(Table, Record.__table__)
webhooks_t = cast(Table, Webhook.__table__)

RECORD_CHANGED = "record.changed"
LEAD_CONVERTED = "lead.converted"
ORDER_PLACED = "order.placed"
REMINDER_DUE = "reminder.due"
EVENT_TYPES = (RECORD_CHANGED, LEAD_CONVERTED, ORDER_PLACED, REMINDER_DUE)
_SCRATCH = "integration_events"


def new_event_id() -> str:
    return f"evt-{uuid.uuid4().hex}"


def _pending(batch: Batch) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], batch.scratch.setdefault(_SCRATCH, []))


def _converted(w: UnitWrite) -> bool:
    now = w.row.record.fields.get("status") == "converted" and not w.row.record.deleted
    was = w.before is not None and w.before.record.fields.get("status") == "converted"
    return now and not was


def _placed(w: UnitWrite) -> bool:
    now = w.row.record.fields.get("kind") == "order" and not w.row.record.deleted
    was = (
        w.before is not None
        and not w.before.record.deleted
        and w.before.record.fields.get("kind") == "order"
    )
    return now and not was


class EventsRule:
    """Notes the typed events of each accepted unit (runs last: nothing refuses after)."""

    def check_unit(self, batch: Batch, unit: Sequence[UnitWrite]) -> None:
        for w in unit:
            f = w.row.record.fields
            if w.row.collection == "leads" and _converted(w):
                _pending(batch).append(
                    _event(
                        LEAD_CONVERTED,
                        w.row,
                        {
                            "lead_id": w.row.record_id,
                            "customer_id": f.get("converted_customer_id"),
                            "contact_id": f.get("converted_contact_id"),
                            "opportunity_id": f.get("converted_opportunity_id"),
                            "owner_id": w.row.owner_id,
                        },
                    )
                )
            elif w.row.collection == "quotes" and _placed(w):
                _pending(batch).append(
                    _event(
                        ORDER_PLACED,
                        w.row,
                        {
                            "order_id": w.row.record_id,
                            "customer_id": w.row.customer_id,
                            "number": f.get("number"),
                            "status": f.get("status"),
                            "total": f.get("total"),
                            "currency": f.get("currency"),
                            "quote_id": f.get("quote_id"),
                            "owner_id": w.row.owner_id,
                        },
                    )
                )


def _event(kind: str, row: RowState, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": kind,
        "collection": row.collection,
        "record_id": row.record_id,
        "owner_id": row.owner_id,
        "payload": payload,
    }


def webhooks_active(conn: Connection) -> bool:
    return (
        conn.execute(select(webhooks_t.c.id).where(webhooks_t.c.active).limit(1)).first()
        is not None
    )


def write_events(
    conn: Connection, batch: Batch | None, written: Sequence[RowState], now_ms: int
) -> int:
    """Insert the outbox rows of one flush (``record.changed`` for each written record,
    then the typed events the rule noted); none while no webhook is active."""
    typed = batch.scratch.pop(_SCRATCH, []) if batch is not None else []
    if not written and not typed:
        return 0
    if not webhooks_active(conn):
        return 0
    rows: list[dict[str, Any]] = []
    for r in written:
        if r.collection.startswith("_"):
            continue
        change = _change(
            r.collection,
            r.record_id,
            r.version,
            r.record.deleted,
            r.owner_id,
            r.customer_id,
            r.record.fields,
        )
        rows.append(_row(RECORD_CHANGED, r.collection, r.record_id, r.owner_id, change, now_ms))
    for e in typed:
        rows.append(
            _row(e["type"], e["collection"], e["record_id"], e["owner_id"], e["payload"], now_ms)
        )
    for start in range(0, len(rows), 500):
        conn.execute(insert(events_t), rows[start : start + 500])
    return len(rows)


def write_record_events(conn: Connection, pks: Sequence[int], now_ms: int) -> int:
    """``record.changed`` for stored records given a new version outside a push — an
    ownership move (reassignment, a team move re-scoping phones) — read back by primary
    key after the move, so the event carries what was stored; none while no webhook is
    active. Fan-out checks each webhook's scope against the new owner, as for any change."""
    if not pks or not webhooks_active(conn):
        return 0
    rows: list[dict[str, Any]] = []
    wanted = sorted(set(pks))
    for start in range(0, len(wanted), 500):
        for r in conn.execute(
            select(
                records_t.c.collection,
                records_t.c.record_id,
                records_t.c.version,
                records_t.c.deleted,
                records_t.c.owner_id,
                records_t.c.customer_id,
                records_t.c.data,
            )
            .where(records_t.c.id.in_(wanted[start : start + 500]))
            .order_by(records_t.c.version)
        ):
            if r.collection.startswith("_"):
                continue
            fields = json.loads(r.data) if r.data else {}
            change = _change(
                r.collection,
                r.record_id,
                int(r.version),
                bool(r.deleted),
                r.owner_id,
                r.customer_id,
                fields,
            )
            rows.append(_row(RECORD_CHANGED, r.collection, r.record_id, r.owner_id, change, now_ms))
    for start in range(0, len(rows), 500):
        conn.execute(insert(events_t), rows[start : start + 500])
    return len(rows)


def _change(
    collection: str,
    record_id: str,
    version: int,
    deleted: bool,
    owner_id: str | None,
    customer_id: str | None,
    fields: dict[str, Any],
) -> dict[str, Any]:
    """The payload of ``record.changed``."""
    return {
        "collection": collection,
        "record_id": record_id,
        "version": version,
        "deleted": deleted,
        "owner_id": owner_id,
        "customer_id": customer_id,
        "fields": fields,
    }


def _row(
    kind: str,
    collection: str | None,
    record_id: str | None,
    owner_id: str | None,
    payload: dict[str, Any],
    now_ms: int,
) -> dict[str, Any]:
    return {
        "event_id": new_event_id(),
        "type": kind,
        "collection": collection,
        "record_id": record_id,
        "owner_id": owner_id,
        "payload": json.dumps(payload, ensure_ascii=False, sort_keys=True),
        "created_at_ms": now_ms,
        "fanned_out": False,
    }


def add_event(
    conn: Connection,
    kind: str,
    payload: dict[str, Any],
    *,
    now_ms: int,
    collection: str | None = None,
    record_id: str | None = None,
    owner_id: str | None = None,
) -> None:
    """One event outside a push (``reminder.due``)."""
    conn.execute(insert(events_t), [_row(kind, collection, record_id, owner_id, payload, now_ms)])


__all__ = [
    "EVENT_TYPES",
    "LEAD_CONVERTED",
    "ORDER_PLACED",
    "RECORD_CHANGED",
    "REMINDER_DUE",
    "EventsRule",
    "add_event",
    "webhooks_active",
    "write_events",
    "write_record_events",
]
