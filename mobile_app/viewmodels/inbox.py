"""What waits for a person: conflicts to decide and writes the server refused.

**Conflict inbox.** A field whose merge policy is ``manual`` (a contract's signed amount,
its end date) and that two people changed is kept by the server with three values: the
rep's (*mine*), the other writer's (*theirs*) and the value both started from
(*original*). The rep keeps one or types a new value; the store pushes the choice with
``resolves`` so the server closes the conflict for everyone.

**Rejected writes.** A write the server refused is a dead letter carrying the server's
error code. The app explains it in the UI's language from the code (never the server's
English text), names the record (the customer's name, not its id) and offers only the
actions that can succeed: a validation error can be fixed and retried; a record that is
no longer the rep's (reassigned, out of scope, deleted) cannot — there the rep keeps
what they typed as a note on this phone, or discards it. Nothing is dropped silently.
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


#: Error codes after which the same write can succeed once the rep fixes a field.
FIXABLE = frozenset({"validation_failed", "total_mismatch", "possible_duplicate"})
#: The record is no longer the rep's to write: keep the text, or discard.
NOT_YOURS = frozenset({"forbidden", "not_found", "record_deleted", "append_only"})
#: Transient: the same write may simply be sent again.
TRANSIENT = frozenset({"internal_error", "service_unavailable", "rate_limited", "conflict"})


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
    #: What the rep can do: some of "fix", "resend", "keep", "discard".
    actions: tuple[str, ...] = ("discard",)
    kept: bool = False
    text: str = ""


def explain(session: Session, collection: str, code: str, details: dict[str, Any]) -> str:
    """Why the server refused a write, in the UI's language, from the error code."""
    tr = session.tr
    what = tr.entity_label(collection)
    if code == "forbidden" and details.get("evicted"):
        return tr("rejected.code.evicted", what=what)
    if code == "group_rejected":
        return tr("rejected.code.group_rejected", what=what)
    key = f"rejected.code.{code}"
    text = tr(key, what=what)
    return text if text != key else tr("rejected.code.other", what=what, code=code or "?")


def remember_names(session: Session) -> None:
    """Before a sync, note the names of records with unsent writes (and of their
    customers): a sync may evict them — reassigned while the rep was offline — and the
    refused write must still say *whose* it was, not show an id. Kept in memory only."""
    names: dict[str, str] = session.extras.setdefault("names", {})
    store = session.store
    for collection in ("customers", "contacts", "leads", "opportunities", "tasks", "tickets"):
        for record in store.collection(collection).query(where=lambda r: bool(r.pending)):
            f = record.fields
            name = f.get("name") or f.get("title") or f.get("number")
            if name:
                names[record.id] = str(name)
            customer_id = f.get("customer_id")
            if customer_id and str(customer_id) not in names:
                customer = store.collection("customers").get(str(customer_id))
                if customer is not None and customer.fields.get("name"):
                    names[str(customer_id)] = str(customer.fields["name"])
    for collection in ("activities", "ticket_comments"):
        for record in store.collection(collection).query(where=lambda r: bool(r.pending)):
            customer_id = str(record.fields.get("customer_id") or "")
            customer = store.collection("customers").get(customer_id) if customer_id else None
            if customer is not None and customer.fields.get("name"):
                names[customer_id] = str(customer.fields["name"])


def _customer_name(session: Session, fields: Mapping[str, Any]) -> str:
    customer_id = fields.get("customer_id")
    if not customer_id:
        return ""
    customer = session.store.collection("customers").get(str(customer_id))
    if customer is not None:
        return str(customer.fields.get("name") or "")
    return str(session.extras.get("names", {}).get(str(customer_id), ""))


def _typed_text(fields: Mapping[str, Any]) -> str:
    """The words the rep typed in a refused write (what "keep as a note" keeps)."""
    parts = [
        str(fields[k])
        for k in ("subject", "title", "name", "notes", "body", "description", "comment")
        if isinstance(fields.get(k), str) and fields.get(k)
    ]
    return "\n".join(dict.fromkeys(parts))


def actions_for(code: str, text: str) -> tuple[str, ...]:
    if code in FIXABLE:
        return ("fix", "discard")
    if code in NOT_YOURS:
        return ("keep", "discard") if text else ("discard",)
    if code in TRANSIENT or code == "group_rejected":
        return ("resend", "discard")
    return ("keep", "discard") if text else ("discard",)


class KeptNotes:
    """Refused writes the rep chose to keep as notes (ids only; the text stays encrypted
    in the store's dead-letter list). Persisted by the app through ``save``."""

    def __init__(self, ids: list[str] | None = None, save: Any = None) -> None:
        self.ids: list[str] = list(ids or [])
        self._save = save

    def add(self, dead_letter_id: str) -> None:
        if dead_letter_id not in self.ids:
            self.ids.append(dead_letter_id)
            if self._save:
                self._save(list(self.ids))

    def remove(self, dead_letter_id: str) -> None:
        if dead_letter_id in self.ids:
            self.ids.remove(dead_letter_id)
            if self._save:
                self._save(list(self.ids))


def kept_notes(session: Session) -> KeptNotes:
    kept = session.extras.get("kept_notes")
    if not isinstance(kept, KeptNotes):
        kept = session.extras["kept_notes"] = KeptNotes()
    return kept


def _dead_letter_title(
    session: Session, collection: str, record_id: str, fields: Mapping[str, Any]
) -> str:
    """The record's name (and its customer's); a refused insert never became a record,
    so its own fields name it — never a raw id when a name is known."""
    label = session.tr.entity_label(collection)
    record = session.store.collection(collection).get(record_id)
    merged = {**(dict(record.fields) if record else {}), **dict(fields)}
    name = merged.get("name") or merged.get("title") or merged.get("subject")
    name = name or merged.get("number") or session.extras.get("names", {}).get(record_id)
    customer = _customer_name(session, merged)
    if name and customer and customer not in str(name):
        return f"{label} · {name} · {customer}"
    if name or customer:
        return f"{label} · {name or customer}"
    return record_title(session, collection, record_id)


class RejectedWritesViewModel(Observable):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.rows: list[RejectedRow] = []
        self.kept: list[RejectedRow] = []
        self.edits: dict[str, dict[str, str]] = {}
        self.errors: dict[str, dict[str, str]] = {}
        self.message = ""

    def refresh(self) -> None:
        tr = self.session.tr
        kept = kept_notes(self.session)
        rows = []
        for d in self.session.store.dead_letters():
            code, _message, details = error_parts(d.error)
            field_errors = messages_by_field(
                tr,
                d.collection,
                [e for e in details.get("fields", []) if isinstance(e, Mapping)],
            )
            reason = explain(self.session, d.collection, code, details)
            if field_errors:
                reason = f"{reason} {'; '.join(field_errors.values())}"
            text = _typed_text(d.fields)
            rows.append(
                RejectedRow(
                    id=d.id,
                    collection=d.collection,
                    record_id=d.record_id,
                    title=_dead_letter_title(self.session, d.collection, d.record_id, d.fields),
                    op=d.op,
                    code=code,
                    reason=reason,
                    field_errors=field_errors,
                    fields={
                        k: to_text(spec_for(d.collection, k), v) for k, v in dict(d.fields).items()
                    },
                    raw=dict(d.fields),
                    actions=actions_for(code, text),
                    kept=d.id in kept.ids,
                    text=text,
                )
            )
        self.rows = [r for r in rows if not r.kept]
        self.kept = [r for r in rows if r.kept]
        self.notify()

    def keep_as_note(self, dead_letter_id: str) -> bool:
        """Keep the refused write's text as a note on this phone (nothing is sent)."""
        row = next((r for r in self.rows if r.id == dead_letter_id), None)
        if row is None or "keep" not in row.actions:
            return False
        kept_notes(self.session).add(dead_letter_id)
        self.message = self.session.tr("rejected.kept")
        self.refresh()
        return True

    def edit(self, dead_letter_id: str, field: str, text: str) -> None:
        self.edits.setdefault(dead_letter_id, {})[field] = text

    def retry(self, dead_letter_id: str) -> bool:
        """Send the write again with the rep's fixes (only the edited fields change)."""
        row = next((r for r in self.rows if r.id == dead_letter_id), None)
        if row is None or not {"fix", "resend"} & set(row.actions):
            return False  # e.g. a record no longer the rep's: retrying cannot succeed
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
        kept_notes(self.session).remove(dead_letter_id)
        self.edits.pop(dead_letter_id, None)
        self.message = self.session.tr("rejected.discarded")
        self.refresh()
