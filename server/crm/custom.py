"""Typed custom fields on the server: the same checks a device runs
(:mod:`sync_protocol.custom_fields`), against the declarations as this push sees them."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, cast

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


_DEFINITION_IDS = "custom_def_ids"


def _definition_ids(batch: Batch) -> set[str]:
    """The record ids of every declaration this batch knows: all stored ones (loaded on
    first use) plus those the batch writes (:meth:`CustomFieldsRule.check_unit` adds
    them) — so a lookup costs the declarations, not every row the batch holds."""
    ids = cast(set[str] | None, batch.scratch.get(_DEFINITION_IDS))
    if ids is None:
        stmt = select(records_t.c.record_id).where(records_t.c.collection == DEFINITIONS_COLLECTION)
        ids = set(batch.conn.execute(stmt).scalars())
        batch.load(DEFINITIONS_COLLECTION, sorted(ids))
        batch.scratch[_DEFINITION_IDS] = ids
    return ids


_DEFINITIONS = "custom_defs"


def _definitions(batch: Batch, entity: str) -> dict[str, CustomFieldDef]:
    """The declarations of ``entity`` as the batch sees them now.

    Parsed once per batch and entity, not once per record: the result is a function of
    the live declarations' fields, so it is reused while those are equal — by value, to
    a deep copy taken when parsed (a declaration the batch rewrote, deleted, added, or
    restored when a unit was refused, differs; equality does not trust identity, so a
    dict changed in place is seen too)."""
    live = []
    for rid in sorted(_definition_ids(batch)):
        state = batch.rows.get((DEFINITIONS_COLLECTION, rid))
        if state is not None and not state.record.deleted:
            live.append(state.record.fields)
    cache = cast(
        dict[str, tuple[list[dict[str, Any]], dict[str, CustomFieldDef]]],
        batch.scratch.setdefault(_DEFINITIONS, {}),
    )
    hit = cache.get(entity)
    if hit is not None and hit[0] == live:
        return hit[1]
    definitions = definitions_for(entity, live)
    cache[entity] = (copy.deepcopy(live), definitions)
    return definitions


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
                _definition_ids(batch).add(m.record_id)
                errors = definition_errors(fields)
                if not errors:
                    errors = self._clash(batch, w)
                if errors:
                    raise _reject(m.id, m.collection, errors)
            elif m.collection in CUSTOM_ENTITIES:
                creating = w.before is None or w.before.record.deleted
                if not creating and "custom" not in m.fields:
                    continue
                if not _definition_ids(batch):
                    continue  # nothing declared: no declaration to check against
                errors = custom_errors(
                    _definitions(batch, m.collection), fields.get("custom"), creating=creating
                )
                if errors:
                    raise _reject(m.id, m.collection, errors)

    @staticmethod
    def _clash(batch: Batch, w: UnitWrite) -> list[FieldError]:
        """A second live declaration of one entity's key."""
        entity, key = w.row.record.fields.get("entity"), w.row.record.fields.get("key")
        for rid in sorted(_definition_ids(batch)):
            state = batch.rows.get((DEFINITIONS_COLLECTION, rid))
            if (
                rid != w.row.record_id
                and state is not None
                and not state.record.deleted
                and state.record.fields.get("entity") == entity
                and state.record.fields.get("key") == key
            ):
                return [FieldError(field="key", code="duplicate", message=f"{key} is declared")]
        return []
