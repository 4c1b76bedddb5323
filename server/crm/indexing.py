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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, update

from sync_protocol import CRM_SCHEMA

from ..models import Record, RecordKey, RecordSearch
from ..repository.writing import delete_by_key
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
    if not fresh:
        _delete(conn, "record_keys", keyed)
    key_rows = [
        {"collection": r.collection, "record_id": r.record_id, "key": k}
        for r in keyed
        if not r.deleted
        for k in sorted(duplicate_keys(r.fields))
    ]
    if key_rows:
        conn.execute(insert(keys_t), key_rows)
    if not fresh:
        _delete(conn, "record_search", searched)
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
    simply not there). Per collection, by key (an index search on both databases)."""
    by_collection: dict[str, list[str]] = {}
    for collection, record_id in keys:
        if collection in SEARCHED:
            by_collection.setdefault(collection, []).append(record_id)
    for collection, unsorted in sorted(by_collection.items()):
        ids = sorted(set(unsorted))
        for start in range(0, len(ids), _CHUNK):
            conn.execute(
                update(search_t)
                .where(
                    search_t.c.collection == collection,
                    search_t.c.record_id.in_(ids[start : start + _CHUNK]),
                )
                .values(owner_id=owner_id)
            )


def _delete(conn: Connection, table: str, rows: Sequence[IndexedRow]) -> None:
    """Delete ``table``'s rows of ``rows``: per collection, by key (an index search on
    both databases, :func:`server.repository.writing.delete_by_key`)."""
    by_collection: dict[str, list[str]] = {}
    for r in rows:
        by_collection.setdefault(r.collection, []).append(r.record_id)
    for collection, ids in sorted(by_collection.items()):
        for start in range(0, len(ids), _CHUNK):
            delete_by_key(conn, table, collection, sorted(ids[start : start + _CHUNK]))
