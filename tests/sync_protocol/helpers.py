"""Shared builders for the protocol tests: a test entity with one field per merge policy."""

from __future__ import annotations

from typing import Any

from sync_protocol import (
    DeletePolicy,
    EntitySchema,
    FieldSpec,
    FieldType,
    LocalEdit,
    MergePolicy,
    MergeResult,
    StoredRecord,
    merge_record,
)
from sync_protocol.hlc import Timestamp

T0 = 1_732_363_212_345  # a wall clock in ms (2024-11-23)


def hlc(wall_offset_ms: int, node: str, counter: int = 0) -> str:
    return Timestamp(T0 + wall_offset_ms, counter, node).encode()


def policy_entity(delete_policy: DeletePolicy = DeletePolicy.EDIT_WINS) -> EntitySchema:
    """One field per merge policy (``notes`` fields are named after their policy)."""
    return EntitySchema(
        name="things",
        delete_policy=delete_policy,
        fields={
            "title": FieldSpec(FieldType.STRING, merge=MergePolicy.LWW),
            "owner_note": FieldSpec(FieldType.STRING, merge=MergePolicy.SERVER_WINS),
            "score": FieldSpec(FieldType.INTEGER, merge=MergePolicy.MAX),
            "seen_at": FieldSpec(FieldType.DATETIME, merge=MergePolicy.MAX),
            "tags": FieldSpec(FieldType.TAGS, merge=MergePolicy.UNION),
            "notes": FieldSpec(FieldType.TEXT, merge=MergePolicy.APPEND),
            "amount": FieldSpec(FieldType.NUMBER, merge=MergePolicy.MANUAL),
        },
    )


def upsert(
    fields: dict[str, Any],
    at: str,
    *,
    base_version: int | None = 1,
    base: dict[str, Any] | None = None,
) -> LocalEdit:
    return LocalEdit(op="upsert", fields=fields, hlc=at, base_version=base_version, base=base)


def delete(at: str, *, base_version: int | None = 1) -> LocalEdit:
    return LocalEdit(op="delete", fields={}, hlc=at, base_version=base_version)


def stored_at_v1(fields: dict[str, Any], at: str | None = None) -> StoredRecord:
    """A record created at server version 1 by device ``origin``."""
    created = merge_record(
        policy_entity(), None, upsert(fields, at or hlc(0, "origin")), None, new_version=1
    )
    return created.record


def apply(
    schema: EntitySchema, record: StoredRecord | None, edit: LocalEdit, version: int
) -> MergeResult:
    return merge_record(schema, None, edit, record, new_version=version)
