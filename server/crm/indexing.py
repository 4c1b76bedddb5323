"""Keeping ``record_keys`` (duplicates) and ``record_search`` (search, pinyin sort) true.

Every write path ends in a push flush, which calls :func:`index_records` with the rows
it wrote; the migration that created the tables backfills them with
:func:`server.crm.backfill.reindex_all`.

``record_search.owner_id`` copies the record's owner so a scoped search never joins
``records`` (:mod:`server.manager.search`). The owner changes in two places only: a
push (a flush re-indexes the row with its owner, as above) and a reassignment, which
moves records without a push (:func:`server.repository.admin.reassign_customers` and
its siblings call :func:`move_search_owner` in their transaction). A team move changes
who sees an owner, not the owner, so the copy stays true; a merge is a reassignment
followed by pushes; a deletion removes the entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, insert, tuple_, update

from sync_protocol import CRM_SCHEMA

from ..models import Record, RecordKey, RecordSearch
from .keys import KEYED, duplicate_keys, search_text, sort_key

keys_t = cast(Table, RecordKey.__table__)
search_t = cast(Table, RecordSearch.__table__)
records_t = cast(Table, Record.__table__)

#: Collections with search text: every CRM entity that declares search fields.
SEARCHED = tuple(e.name for e in CRM_SCHEMA.entities.values() if e.search_fields)
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class IndexedRow:
    collection: str
    record_id: str
    fields: dict[str, Any]
    deleted: bool
    #: The record's ``owner_id`` column (copied into ``record_search``).
    owner_id: str | None = None


def index_records(conn: Connection, rows: Sequence[IndexedRow], *, fresh: bool = False) -> None:
    """Replace the keys and search text of ``rows`` (deleted rows lose theirs);
    ``fresh``: the tables hold none of them yet (a backfill), nothing to delete."""
    keyed = [r for r in rows if r.collection in KEYED]
    searched = [r for r in rows if r.collection in SEARCHED]
    for chunk in _chunks([] if fresh else keyed):
        conn.execute(
            delete(keys_t).where(
                tuple_(keys_t.c.collection, keys_t.c.record_id).in_(
                    [(r.collection, r.record_id) for r in chunk]
                )
            )
        )
    key_rows = [
        {"collection": r.collection, "record_id": r.record_id, "key": k}
        for r in keyed
        if not r.deleted
        for k in sorted(duplicate_keys(r.fields))
    ]
    if key_rows:
        conn.execute(insert(keys_t), key_rows)
    for chunk in _chunks([] if fresh else searched):
        conn.execute(
            delete(search_t).where(
                tuple_(search_t.c.collection, search_t.c.record_id).in_(
                    [(r.collection, r.record_id) for r in chunk]
                )
            )
        )
    search_rows = [
        {
            "collection": r.collection,
            "record_id": r.record_id,
            "text": search_text(r.fields, CRM_SCHEMA[r.collection].search_fields),
            "sort_key": sort_key(r.fields),
            "owner_id": r.owner_id,
        }
        for r in searched
        if not r.deleted
    ]
    if search_rows:
        conn.execute(insert(search_t), search_rows)


def move_search_owner(conn: Connection, keys: Sequence[tuple[str, str]], owner_id: str) -> None:
    """The records ``keys`` (collection, record_id) now belong to ``owner_id``: their
    search entries follow (a reassignment; entries of collections not searched are
    simply not there)."""
    searched = sorted({k for k in keys if k[0] in SEARCHED})
    for start in range(0, len(searched), _CHUNK):
        chunk = searched[start : start + _CHUNK]
        conn.execute(
            update(search_t)
            .where(tuple_(search_t.c.collection, search_t.c.record_id).in_(chunk))
            .values(owner_id=owner_id)
        )


def _chunks(rows: Sequence[IndexedRow]) -> Iterable[Sequence[IndexedRow]]:
    for i in range(0, len(rows), _CHUNK):
        yield rows[i : i + _CHUNK]
