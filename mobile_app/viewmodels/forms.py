"""One form view-model for every record a rep creates or edits.

A form holds what was typed (text per field), converts it with the field's schema type
(:mod:`.fields`), validates it with the same ``EntitySchema.validate`` the store and the
server run, and writes an insert (new) or a patch of the changed fields (edit). Messages
appear under each field in the UI's language. Subclasses name the collection and the
fields, and may add computed fields (``extra``), extra checks (``check``) or write
differently (``write``: a lead conversion writes a group).

Creating a customer or lead first looks for duplicates on the phone (:mod:`.duplicates`):
a match is a warning; a second tap on Save saves anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from sync_protocol import CRM_SCHEMA, FieldError, ValidationFailed

from .base import Observable, Session
from .duplicates import DuplicateHit, describe, find_duplicates
from .fields import choice_group, convert_form, messages_by_field, spec_for, to_text
from .ports import RecordPort


class RecordForm(Observable):
    collection: ClassVar[str] = ""
    FIELDS: ClassVar[tuple[str, ...]] = ()
    CHOICE_FIELDS: ClassVar[tuple[str, ...]] = ()
    MULTILINE: ClassVar[tuple[str, ...]] = ("notes", "description")
    #: Check customers/leads/contacts on the phone for the same person before creating.
    CHECK_DUPLICATES: ClassVar[bool] = False
    NEW_TITLE: ClassVar[str] = "form.new"
    EDIT_TITLE: ClassVar[str] = "form.edit"

    def __init__(self, session: Session, record_id: str | None = None, **defaults: str) -> None:
        super().__init__()
        self.session = session
        self.record_id = record_id
        self.values: dict[str, str] = {name: "" for name in self.FIELDS}
        self.errors: dict[str, str] = {}
        self.message = ""
        self.saved_id: str | None = None
        self.duplicates: list[DuplicateHit] = []
        self._duplicates_seen = False
        self._original: dict[str, Any] = {}
        record = self.current()
        if record is not None:
            self._original = dict(record.fields)
            for name in self.FIELDS:
                self.values[name] = to_text(
                    spec_for(self.collection, name), record.fields.get(name)
                )
        else:
            self.record_id = None
            for name, text in defaults.items():
                if name in self.values:
                    self.values[name] = text

    def current(self) -> RecordPort | None:
        if not self.record_id:
            return None
        return self.session.store.collection(self.collection).get(self.record_id)

    @property
    def is_new(self) -> bool:
        return self.record_id is None

    @property
    def title(self) -> str:
        tr = self.session.tr
        what = tr.entity_label(self.collection)
        return tr(self.NEW_TITLE if self.is_new else self.EDIT_TITLE, what=what)

    def label(self, name: str) -> str:
        spec = spec_for(self.collection, name)
        label = self.session.tr.field_label(self.collection, name)
        return f"{label} *" if spec and spec.required else label

    def kind(self, name: str) -> str:
        """How the screen edits a field: text, multiline, choice, date, datetime, number, ref."""
        if name in self.CHOICE_FIELDS:
            return "choice"
        if name in self.MULTILINE:
            return "multiline"
        spec = spec_for(self.collection, name)
        if spec is None:
            return "text"
        return {
            "date": "date",
            "datetime": "datetime",
            "number": "number",
            "integer": "number",
        }.get(spec.type.value, "ref" if spec.type.value == "ref" else "text")

    def choices(self, name: str) -> list[tuple[str, str]]:
        spec = spec_for(self.collection, name)
        options = spec.choices if spec else ()
        blank = [] if spec and spec.required else [("", "—")]
        group = choice_group(self.collection, name)
        return blank + [(c, self.session.tr.choice(group, c)) for c in options]

    def set(self, name: str, text: str) -> None:
        if name not in self.values:
            raise KeyError(name)
        self.values[name] = text
        self.errors.pop(name, None)

    # -- hooks -----------------------------------------------------------------------
    def extra(self) -> dict[str, Any]:
        """Fields the form sets itself (an assignee, a timestamp) on a new record."""
        return {}

    def check(self, patch: Mapping[str, Any]) -> list[FieldError]:
        """Checks beyond the schema (e.g. a lost deal needs a reason)."""
        return []

    def write(self, patch: dict[str, Any]) -> RecordPort:
        collection = self.session.store.collection(self.collection)
        if self.is_new:
            return collection.insert(patch)
        return collection.update(str(self.record_id), patch)

    # -- saving ----------------------------------------------------------------------
    def patch(self) -> tuple[dict[str, Any], list[FieldError]]:
        typed, errors = convert_form(self.collection, self.values)
        if self.is_new:
            patch = {k: v for k, v in typed.items() if v is not None}
            patch = {**patch, **{k: v for k, v in self.extra().items() if k not in patch}}
        else:
            patch = {k: v for k, v in typed.items() if v != self._original.get(k)}
        return patch, errors

    def problems(self, patch: Mapping[str, Any], errors: list[FieldError]) -> list[FieldError]:
        entity = CRM_SCHEMA[self.collection]
        bad = {e.field for e in errors}
        problems = errors + entity.validate(
            {k: v for k, v in patch.items() if k not in bad}, partial=not self.is_new
        )
        if not self.is_new:  # clearing a required field is an edit to None
            problems += [
                FieldError(field=k, code="required", message="required")
                for k, v in patch.items()
                if v is None and k in entity.fields and entity.fields[k].required
            ]
        return problems + self.check(patch)

    def find_duplicates(self) -> list[DuplicateHit]:
        v = self.values
        phones = tuple(v.get(n, "") for n in ("mobile", "phone") if v.get(n))
        exclude = (self.record_id,) if self.record_id else ()
        return find_duplicates(
            self.session,
            name=v.get("name", ""),
            phones=phones,
            email=v.get("email", ""),
            exclude=exclude,
        )

    def save(self) -> bool:
        """Write the record; ``True`` on success, else ``errors`` per field (or a warning)."""
        tr = self.session.tr
        patch, conversion_errors = self.patch()
        problems = self.problems(patch, conversion_errors)
        if problems:
            self.fail(problems)
            return False
        if self.CHECK_DUPLICATES and self.is_new and not self._duplicates_seen:
            self.duplicates = self.find_duplicates()
            if self.duplicates:
                self._duplicates_seen = True  # the next tap saves anyway
                self.message = describe(self.session, self.duplicates)
                self.notify()
                return False
        if not patch and not self.is_new:
            self.saved_id = self.record_id
            self.message = tr("customers.saved")
            self.notify()
            return True
        try:
            record = self.write(patch)
        except ValidationFailed as exc:
            self.fail(exc.errors)
            return False
        self.saved_id = self.record_id = record.id
        self._original = dict(record.fields)
        self.errors = {}
        self.duplicates = []
        self.message = tr("customers.saved")
        self.notify()
        return True

    def fail(self, problems: list[FieldError] | list[Mapping[str, Any]]) -> None:
        self.errors = messages_by_field(self.session.tr, self.collection, problems)
        self.message = self.session.tr("customers.fix")
        self.notify()
