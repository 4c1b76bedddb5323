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

**Possible duplicates.** A customer or lead the rep created that the server finds
looks like an existing one (``possible_duplicate``: same phone, e-mail or name +
company) is explained with the existing record's name. The rep *keeps it anyway*
(sent again with ``override: ["possible_duplicate"]``, the rest of its group with it),
*adds the work to the existing customer* (the new customer is dropped and every refused
write that named it — a lead conversion's contact, deal and lead, a visit — is written
again naming the existing one), or discards it. A write refused only because another
write of its group was (``group_rejected``) points at that one instead of offering a
resend that cannot succeed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from .ports import DeadLetterPort


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
FIXABLE = frozenset({"validation_failed", "total_mismatch"})
DUPLICATE = "possible_duplicate"
#: Field errors no typed value cures: the lead was converted by someone else meanwhile;
#: a link names a record that is gone or outside the rep's scope.
UNFIXABLE_FIELDS = frozenset({"already_converted", "unknown_ref"})
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
    #: What the rep can do: some of "fix", "resend", "keep", "keep_anyway",
    #: "use_existing", "discard".
    actions: tuple[str, ...] = ("discard",)
    kept: bool = False
    text: str = ""
    #: ``possible_duplicate``: the records the server compared it with.
    matches: tuple[DuplicateMatch, ...] = ()
    #: The mutation group it was written in, and how many refused writes share it.
    group: str | None = None
    group_size: int = 1


@dataclass(frozen=True, slots=True)
class DuplicateMatch:
    """One record a ``possible_duplicate`` names (a colleague's: ``visible`` False)."""

    record_id: str
    collection: str
    name: str
    matched_on: str
    visible: bool


def duplicate_matches(details: Mapping[str, Any]) -> tuple[DuplicateMatch, ...]:
    out = []
    for m in details.get("matches") or ():
        if not isinstance(m, Mapping):
            continue
        visible = m.get("visible", True) is not False and bool(m.get("record_id"))
        out.append(
            DuplicateMatch(
                record_id=str(m.get("record_id") or "") if visible else "",
                collection=str(m.get("collection") or "customers"),
                name=str(m.get("name") or "") if visible else "",
                matched_on=str(m.get("matched_on") or "name_company"),
                visible=visible,
            )
        )
    return tuple(out)


def explain(session: Session, collection: str, code: str, details: dict[str, Any]) -> str:
    """Why the server refused a write, in the UI's language, from the error code."""
    tr = session.tr
    what = tr.entity_label(collection)
    if code == "forbidden" and details.get("evicted"):
        return tr("rejected.code.evicted", what=what)
    if code == DUPLICATE:
        return explain_duplicate(session, collection, duplicate_matches(details))
    if code == "group_rejected":
        return tr("rejected.code.group_rejected", what=what)
    key = f"rejected.code.{code}"
    text = tr(key, what=what)
    return text if text != key else tr("rejected.code.other", what=what, code=code or "?")


def explain_duplicate(
    session: Session, collection: str, matches: tuple[DuplicateMatch, ...]
) -> str:
    """``possible_duplicate`` in words: which record it looks like, on what, and what the
    rep can do (a colleague's record is named only as existing, never by name)."""
    tr = session.tr
    what = tr.entity_label(collection)
    if not matches:
        return tr("rejected.code.possible_duplicate", what=what)
    first = matches[0]
    on = tr(f"rejected.dup.on.{first.matched_on}")
    if first.visible:
        text = tr(
            "rejected.dup.visible",
            what=what,
            other=tr.entity_label(first.collection),
            name=first.name,
            on=on,
        )
    else:
        text = tr("rejected.dup.colleague", what=what, on=on)
    if len(matches) > 1:
        text += " " + tr("dup.more", n=len(matches) - 1)
    return text


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


def actions_for(
    code: str, text: str, collection: str = "", matches: tuple[DuplicateMatch, ...] = ()
) -> tuple[str, ...]:
    if code == DUPLICATE:
        mergeable = collection == "customers" and any(
            m.visible and m.collection == "customers" for m in matches
        )
        return (
            ("keep_anyway", "use_existing", "discard")
            if mergeable
            else (
                "keep_anyway",
                "discard",
            )
        )
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


def waiting_on(letters: Sequence[DeadLetterPort]) -> dict[str, DeadLetterPort]:
    """Refused writes that only wait for another: the members of a group one of whose
    writes was refused (``group_rejected``), and the writes that name a record the server
    did not create because it looked like a duplicate (a call logged on that customer,
    a change to it). Letter id → the refused write it waits for."""
    culprits: dict[str, DeadLetterPort] = {}
    new_records: dict[str, DeadLetterPort] = {}
    for d in letters:
        code = error_parts(d.error)[0]
        if d.group is not None and code != "group_rejected":
            culprits.setdefault(d.group, d)
        if code == DUPLICATE:
            new_records.setdefault(d.record_id, d)
    out: dict[str, DeadLetterPort] = {}
    for d in letters:
        by_group = culprits.get(d.group) if d.group is not None else None
        if by_group is not None and by_group.id != d.id:
            out[d.id] = by_group
            continue
        named = [d.record_id, *(v for v in d.fields.values() if isinstance(v, str))]
        for record_id in named:
            culprit = new_records.get(record_id)
            if culprit is not None and culprit.id != d.id and culprit.group != d.group:
                out[d.id] = culprit
                break
    return out


def _dependents(letters: Sequence[DeadLetterPort], culprit_id: str) -> list[DeadLetterPort]:
    waits = waiting_on(letters)
    return [d for d in letters if d.id in waits and waits[d.id].id == culprit_id]


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
        letters = list(self.session.store.dead_letters())
        groups: dict[str, int] = {}
        for d in letters:
            if d.group is not None:
                groups[d.group] = groups.get(d.group, 0) + 1
        waits = waiting_on(letters)
        names: dict[str, str] = self.session.extras.setdefault("names", {})
        for d in letters:  # a refused new record still names the writes that mention it
            name = d.fields.get("name") or d.fields.get("title")
            if isinstance(name, str) and name and d.op == "upsert":
                names.setdefault(d.record_id, name)
        for d in letters:
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
            matches = duplicate_matches(details) if code == DUPLICATE else ()
            actions = actions_for(code, text, d.collection, matches)
            field_codes = {
                str(e.get("code"))
                for e in details.get("fields", [])
                if isinstance(e, Mapping) and e.get("code")
            }
            if code == "validation_failed" and field_codes and field_codes <= UNFIXABLE_FIELDS:
                # no value typed here can cure it: say what happened, offer no "fix"
                if "already_converted" in field_codes:
                    reason = tr(
                        "rejected.code.already_converted", what=tr.entity_label(d.collection)
                    )
                actions = ("keep", "discard") if text else ("discard",)
            culprit = waits.get(d.id)
            if culprit is not None:
                # settled through the write that was refused: resending this alone fails
                reason = tr(
                    "rejected.code.group_waits",
                    what=tr.entity_label(d.collection),
                    other_what=tr.entity_label(culprit.collection),
                    other=names.get(culprit.record_id) or culprit.record_id[:8],
                )
                actions = ()
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
                    actions=actions,
                    kept=d.id in kept.ids,
                    text=text,
                    matches=matches,
                    group=d.group,
                    group_size=groups.get(d.group, 1) if d.group is not None else 1,
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

    def keep_anyway(self, dead_letter_id: str) -> bool:
        """A possible duplicate the rep says is a different record: send it again with
        the override (its group goes with it, all or nothing as before)."""
        row = self._row(dead_letter_id)
        if row is None or "keep_anyway" not in row.actions:
            return False
        store = self.session.store
        letters = list(store.dead_letters())
        later = [d for d in _dependents(letters, dead_letter_id) if d.group != row.group]
        store.retry_dead_letter(dead_letter_id, override=[DUPLICATE])  # with its group
        for d in later:  # then what was written on the record afterwards (a call, an edit)
            store.retry_dead_letter(d.id)
        self.message = self.session.tr("rejected.kept_anyway")
        self.refresh()
        return True

    def use_existing(self, dead_letter_id: str, customer_id: str | None = None) -> bool:
        """The new customer *is* the existing one: drop it, and write every refused write
        that named it again naming ``customer_id`` (a match the server reported)."""
        row = self._row(dead_letter_id)
        if row is None or "use_existing" not in row.actions:
            return False
        targets = [m.record_id for m in row.matches if m.visible and m.collection == "customers"]
        target = customer_id or targets[0]
        if target not in targets:
            return False
        store = self.session.store
        duplicate_id = row.record_id
        moved = _dependents(list(store.dead_letters()), row.id)
        try:
            self._write_onto(target, duplicate_id, moved)
        except Exception as exc:  # nothing is discarded: the letters stay as they were
            self.message = self.session.tr("rejected.use_failed", reason=type(exc).__name__)
            self.notify()
            return False
        for letter_id in [row.id, *(d.id for d in moved)]:
            store.discard_dead_letter(letter_id)
            kept_notes(self.session).remove(letter_id)
        self.message = self.session.tr("rejected.used_existing", n=len(moved))
        self.refresh()
        return True

    def _write_onto(self, target: str, duplicate_id: str, moved: list[DeadLetterPort]) -> None:
        store = self.session.store
        with store.group():
            for d in moved:
                fields = {k: target if v == duplicate_id else v for k, v in d.fields.items()}
                if d.collection == "contacts" and d.fields.get("customer_id") == duplicate_id:
                    fields["is_primary"] = False  # the existing customer has its own
                record_id = target if d.record_id == duplicate_id else d.record_id
                collection = store.collection(d.collection)
                if d.op == "delete":
                    continue  # deleting a record that was never created: nothing to do
                if collection.get(record_id) is not None:
                    collection.update(record_id, fields)
                else:
                    collection.insert(fields, id=record_id)

    def discard_set(self, dead_letter_id: str) -> list[str]:
        """What discarding this refused write drops: the rest of its group (which cannot
        apply without it) and, for a record the server never created, later changes to
        that same record (they cannot apply either). Writes that merely name it — a call
        logged on the customer — stay, with the rep's text."""
        row = next((r for r in self.rows + self.kept if r.id == dead_letter_id), None)
        if row is None:
            return [dead_letter_id]
        never_created = row.code == DUPLICATE
        return [
            r.id
            for r in self.rows + self.kept
            if r.id == row.id
            or (row.group is not None and r.group == row.group)
            or (never_created and r.collection == row.collection and r.record_id == row.record_id)
        ]

    def discard(self, dead_letter_id: str) -> None:
        """Drop a refused write with :meth:`discard_set` (the screen asks first)."""
        for letter_id in self.discard_set(dead_letter_id):
            self.session.store.discard_dead_letter(letter_id)
            kept_notes(self.session).remove(letter_id)
            self.edits.pop(letter_id, None)
        self.message = self.session.tr("rejected.discarded")
        self.refresh()

    def _row(self, dead_letter_id: str) -> RejectedRow | None:
        return next((r for r in self.rows if r.id == dead_letter_id), None)
