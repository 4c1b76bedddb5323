"""What waits for a person: conflicts to decide and writes the server refused.

**Conflict inbox.** A field whose merge policy is ``manual`` (a contract's signed amount,
its end date) and that two people changed is kept by the server with three values: the
rep's (*mine*), the other writer's (*theirs*) and the value both started from
(*original*). The rep keeps one or types a new value; the store pushes the choice with
``resolves`` so the server closes the conflict for everyone.

**Rejected writes.** A write the server refused (validation, permission, a deleted
record) is a dead letter carrying the server's reason. The rep fixes the fields and
retries, or discards it — it is never dropped silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sync_protocol import CRM_SCHEMA

from .base import Observable, Session, error_parts
from .fields import (
    NotConvertible,
    convert_form,
    message_for,
    messages_by_field,
    spec_for,
    to_text,
    to_value,
)


@dataclass(frozen=True, slots=True)
class ConflictRow:
    id: str
    collection: str
    record_id: str
    record_title: str
    field: str
    field_label: str
    mine: str
    theirs: str
    original: str


def record_title(session: Session, collection: str, record_id: str) -> str:
    """A readable name for a record: its name/title/number, with the entity label."""
    record = (
        session.store.collection(collection).get(record_id) if collection in CRM_SCHEMA else None
    )
    label = session.tr.entity_label(collection)
    if record is None:
        return f"{label} {record_id[:8]}"
    f = record.fields
    name = f.get("name") or f.get("title") or f.get("number") or record_id[:8]
    return f"{label} · {name}"


class ConflictInboxViewModel(Observable):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.rows: list[ConflictRow] = []
        self.typed: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.message = ""

    def refresh(self) -> None:
        tr = self.session.tr
        empty = tr("conflicts.empty_value")

        def show(collection: str, field: str, value: Any) -> str:
            if field == "_deleted":
                return "×" if value else "✓"
            text = to_text(spec_for(collection, field), value)
            return text if text else empty

        self.rows = [
            ConflictRow(
                id=c.id,
                collection=c.collection,
                record_id=c.record_id,
                record_title=record_title(self.session, c.collection, c.record_id),
                field=c.field,
                field_label=tr.field_label(c.collection, c.field),
                mine=show(c.collection, c.field, c.local),
                theirs=show(c.collection, c.field, c.remote),
                original=show(c.collection, c.field, c.base),
            )
            for c in self.session.store.conflicts()
        ]
        self.notify()

    def keep_mine(self, conflict_id: str) -> None:
        self._resolve(conflict_id, "local")

    def keep_theirs(self, conflict_id: str) -> None:
        self._resolve(conflict_id, "remote")

    def type_value(self, conflict_id: str, text: str) -> None:
        self.typed[conflict_id] = text

    def use_typed(self, conflict_id: str) -> bool:
        """Resolve with the typed text, converted to the field's type and validated."""
        row = next((r for r in self.rows if r.id == conflict_id), None)
        if row is None:
            return False
        tr = self.session.tr
        spec = spec_for(row.collection, row.field)
        try:
            value = to_value(spec, self.typed.get(conflict_id, ""))
        except NotConvertible as exc:
            self.errors[conflict_id] = message_for(
                tr, row.collection, {"field": row.field, "code": exc.code, "message": exc.code}
            )
            self.notify()
            return False
        problem = spec.validate(row.field, value) if spec else None
        if problem:
            self.errors[conflict_id] = message_for(tr, row.collection, problem)
            self.notify()
            return False
        self._resolve(conflict_id, "value", value)
        return True

    def _resolve(self, conflict_id: str, choice: str, value: Any = None) -> None:
        self.session.store.resolve_conflict(conflict_id, choice, value)
        self.errors.pop(conflict_id, None)
        self.typed.pop(conflict_id, None)
        self.message = self.session.tr("conflicts.resolved")
        self.refresh()


@dataclass(frozen=True, slots=True)
class RejectedRow:
    id: str
    collection: str
    record_id: str
    title: str
    op: str
    code: str
    reason: str
    field_errors: dict[str, str]
    fields: dict[str, str]
    raw: dict[str, Any]


def _dead_letter_title(
    session: Session, collection: str, record_id: str, fields: Mapping[str, Any]
) -> str:
    """The record's name; a refused insert never became a record, so its fields name it."""
    if session.store.collection(collection).get(record_id) is None:
        name = fields.get("name") or fields.get("title") or fields.get("number")
        if name:
            return f"{session.tr.entity_label(collection)} · {name}"
    return record_title(session, collection, record_id)


class RejectedWritesViewModel(Observable):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.rows: list[RejectedRow] = []
        self.edits: dict[str, dict[str, str]] = {}
        self.errors: dict[str, dict[str, str]] = {}
        self.message = ""

    def refresh(self) -> None:
        tr = self.session.tr
        rows = []
        for d in self.session.store.dead_letters():
            code, message, details = error_parts(d.error)
            field_errors = messages_by_field(
                tr,
                d.collection,
                [e for e in details.get("fields", []) if isinstance(e, Mapping)],
            )
            reason = "; ".join(field_errors.values()) or message or code
            rows.append(
                RejectedRow(
                    id=d.id,
                    collection=d.collection,
                    record_id=d.record_id,
                    title=_dead_letter_title(self.session, d.collection, d.record_id, d.fields),
                    op=d.op,
                    code=code,
                    reason=tr("rejected.reason", reason=reason),
                    field_errors=field_errors,
                    fields={
                        k: to_text(spec_for(d.collection, k), v) for k, v in dict(d.fields).items()
                    },
                    raw=dict(d.fields),
                )
            )
        self.rows = rows
        self.notify()

    def edit(self, dead_letter_id: str, field: str, text: str) -> None:
        self.edits.setdefault(dead_letter_id, {})[field] = text

    def retry(self, dead_letter_id: str) -> bool:
        """Send the write again with the rep's fixes (only the edited fields change)."""
        row = next((r for r in self.rows if r.id == dead_letter_id), None)
        if row is None:
            return False
        tr = self.session.tr
        edits = self.edits.get(dead_letter_id, {})
        fixed: dict[str, Any] | None = None
        if edits:
            values, errors = convert_form(row.collection, edits)
            entity = CRM_SCHEMA.get(row.collection)
            if entity is not None:
                errors += entity.validate(
                    {k: v for k, v in values.items() if v is not None}, partial=True
                )
            if errors:
                self.errors[dead_letter_id] = messages_by_field(tr, row.collection, errors)
                self.notify()
                return False
            fixed = {**row.raw, **values}
        self.session.store.retry_dead_letter(dead_letter_id, fixed)
        self.edits.pop(dead_letter_id, None)
        self.errors.pop(dead_letter_id, None)
        self.message = tr("rejected.retried")
        self.refresh()
        return True

    def discard(self, dead_letter_id: str) -> None:
        self.session.store.discard_dead_letter(dead_letter_id)
        self.edits.pop(dead_letter_id, None)
        self.message = self.session.tr("rejected.discarded")
        self.refresh()
