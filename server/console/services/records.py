"""Reading records for console pages: scope-checked lists, one record, its children.

Lists and single records go through the manager API's readers
(:func:`~server.manager.records.load_rows` / :func:`~server.manager.records.visible_row`),
so a page shows exactly what ``/v1/manager/records`` would. Children of a customer are
read by the indexed ``customer_id`` column and then held to the same visibility rule.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, select

from ...accounts import Principal
from ...manager.records import StoredRow
from ...models import Record

records_t = cast(Table, Record.__table__)
PAGE_SIZE = 50


@dataclass(slots=True)
class PageSlice:
    items: list[StoredRow]
    total: int
    page: int
    pages: int
    start: int
    end: int


def paginate(rows: Sequence[StoredRow], page: int, size: int = PAGE_SIZE) -> PageSlice:
    pages = max(1, math.ceil(len(rows) / size))
    page = min(max(page, 1), pages)
    first = (page - 1) * size
    items = list(rows[first : first + size])
    return PageSlice(items, len(rows), page, pages, first + 1 if items else 0, first + len(items))


ROW_COLUMNS = (
    records_t.c.record_id,
    records_t.c.collection,
    records_t.c.owner_id,
    records_t.c.customer_id,
    records_t.c.version,
    records_t.c.data,
    records_t.c.updated_at_ms,
    records_t.c.updated_by,
    records_t.c.created_at_ms,
)


def decode(row: Any) -> StoredRow:
    """A live record row (``ROW_COLUMNS``) as the manager API's :class:`StoredRow`."""
    return StoredRow(
        id=row.record_id,
        collection=row.collection,
        owner_id=row.owner_id,
        customer_id=row.customer_id,
        version=int(row.version),
        deleted=False,
        fields=json.loads(row.data) if row.data else {},
        updated_at_ms=row.updated_at_ms,
        updated_by=row.updated_by,
        created_at_ms=row.created_at_ms,
    )


def children(
    conn: Connection, principal: Principal, customer_id: str, collections: Sequence[str]
) -> dict[str, list[StoredRow]]:
    """The live records of ``collections`` hanging off one customer, by collection."""
    stmt = select(*ROW_COLUMNS).where(
        records_t.c.customer_id == customer_id,
        records_t.c.collection.in_(list(collections)),
        records_t.c.deleted.is_(False),
    )
    out: dict[str, list[StoredRow]] = {c: [] for c in collections}
    for row in conn.execute(stmt):
        if not principal.sees_owner(row.owner_id):
            continue
        out[row.collection].append(decode(row))
    return out


def sort_by(rows: list[StoredRow], name: str, *, reverse: bool = False) -> list[StoredRow]:
    def key(row: StoredRow) -> tuple[int, str]:
        value: Any = row.fields.get(name)
        return (0 if value is None else 1, str(value or ""))

    return sorted(rows, key=key, reverse=reverse)


def names_of(conn: Connection, collection: str, ids: Sequence[str]) -> dict[str, str]:
    """``{id: name}`` of the given records (labels for rows already scope-checked)."""
    names: dict[str, str] = {}
    for first in range(0, len(ids), 500):
        chunk = list(ids[first : first + 500])
        rows = conn.execute(
            select(records_t.c.record_id, records_t.c.data).where(
                records_t.c.collection == collection, records_t.c.record_id.in_(chunk)
            )
        )
        for row in rows:
            names[row.record_id] = str(json.loads(row.data).get("name") or row.record_id)
    return names


def rows_by_id(conn: Connection, collection: str, ids: Sequence[str]) -> list[StoredRow]:
    """The live records of ``collection`` with these ids (already scope-checked)."""
    found: list[StoredRow] = []
    for first in range(0, len(ids), 500):
        chunk = list(ids[first : first + 500])
        found.extend(
            decode(r)
            for r in conn.execute(
                select(*ROW_COLUMNS).where(
                    records_t.c.collection == collection,
                    records_t.c.record_id.in_(chunk),
                    records_t.c.deleted.is_(False),
                )
            )
        )
    return found
