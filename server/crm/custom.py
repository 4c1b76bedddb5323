"""Typed custom fields on the server: the same checks a device runs
(:mod:`sync_protocol.custom_fields`), against the declarations as this push sees them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, select

from sync_protocol import ErrorCode
from sync_protocol.custom_fields import (
    CUSTOM_ENTITIES,
    DEFINITIONS_COLLECTION,
    CustomFieldDef,
    custom_errors,
    definition_errors,
    definitions_for,
)
from sync_protocol.errors import FieldError

from ..models import Record
from ..repository.units import Batch, Rejected, UnitWrite

records_t = cast(Table, Record.__table__)


def _definitions(batch: Batch, entity: str) -> dict[str, CustomFieldDef]:
    if not batch.scratch.get("custom_defs_loaded"):
        stmt = select(records_t.c.record_id).where(records_t.c.collection == DEFINITIONS_COLLECTION)
        batch.load(DEFINITIONS_COLLECTION, list(batch.conn.execute(stmt).scalars()))
        batch.scratch["custom_defs_loaded"] = True
    live = [
        state.record.fields
        for (collection, _rid), state in batch.rows.items()
        if collection == DEFINITIONS_COLLECTION and state is not None and not state.record.deleted
    ]
    return definitions_for(entity, live)


def _reject(mutation_id: str, collection: str, errors: list[FieldError]) -> Rejected:
    return Rejected(
        ErrorCode.VALIDATION_FAILED,
        f"{collection}: {errors[0].message}",
        {"fields": [e.model_dump() for e in errors]},
        mutation_id=mutation_id,
    )


class CustomFieldsRule:
    def check_unit(self, batch: Batch, unit: Sequence[UnitWrite]) -> None:
        for w in unit:
            m = w.mutation
            if m.op != "upsert" or w.row.record.deleted:
                continue
            fields = w.row.record.fields
            if m.collection == DEFINITIONS_COLLECTION:
                errors = definition_errors(fields)
                if not errors:
                    errors = self._clash(batch, w)
                if errors:
                    raise _reject(m.id, m.collection, errors)
            elif m.collection in CUSTOM_ENTITIES:
                creating = w.before is None or w.before.record.deleted
                if not creating and "custom" not in m.fields:
                    continue
                errors = custom_errors(
                    _definitions(batch, m.collection), fields.get("custom"), creating=creating
                )
                if errors:
                    raise _reject(m.id, m.collection, errors)

    @staticmethod
    def _clash(batch: Batch, w: UnitWrite) -> list[FieldError]:
        """A second live declaration of one entity's key."""
        _definitions(batch, "")  # loads every declaration into the batch
        entity, key = w.row.record.fields.get("entity"), w.row.record.fields.get("key")
        for (collection, rid), state in batch.rows.items():
            if (
                collection == DEFINITIONS_COLLECTION
                and rid != w.row.record_id
                and state is not None
                and not state.record.deleted
                and state.record.fields.get("entity") == entity
                and state.record.fields.get("key") == key
            ):
                return [FieldError(field="key", code="duplicate", message=f"{key} is declared")]
        return []
