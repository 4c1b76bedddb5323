"""Keeping ``record_grants`` true: a ticket reaches its assigned agent's phones.

The rule is :mod:`server.scope`'s (:data:`~server.scope.GRANTING_FIELDS`: a ticket's
``assignee_id``). On every flush (:class:`server.crm.CrmRules`) each written record of a
granting collection gets exactly the grant its field names; pull then delivers the
record — and every later version of it — to that user too.

When the field moves to someone else (or is cleared), the previous grantee loses the
grant and, unless they see the record's owner anyway, gets an eviction at a new version
of the batch, so their phones drop it like any record that left their scope. A deleted
record keeps its grant: the tombstone reaches the agent's phones as well.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import cast

from sqlalchemy import Connection, Table, delete, insert, select

from ..models import Eviction, Record, RecordGrant, User
from ..repository.admin import _viewers_of
from ..repository.rows import RowState
from ..repository.units import Batch
from ..scope import GRANTING_FIELDS, granted_to

grants_t = cast(Table, RecordGrant.__table__)
evictions_t = cast(Table, Eviction.__table__)
records_t = cast(Table, Record.__table__)
users_t = cast(Table, User.__table__)
_CHUNK = 500


def index_grants(batch: Batch, written: Sequence[RowState]) -> None:
    """Give each written record of a granting collection the grant its field names."""
    rows = [r for r in written if r.collection in GRANTING_FIELDS and not r.record.deleted]
    if not rows:
        return
    conn = batch.conn
    held = _held(conn, rows)
    for r in rows:
        key = (r.collection, r.record_id)
        want = granted_to(r.collection, r.record.fields)
        have = held.get(key, set())
        for user_id in sorted(have - {want} if want else have):
            conn.execute(
                delete(grants_t).where(
                    grants_t.c.user_id == user_id,
                    grants_t.c.collection == r.collection,
                    grants_t.c.record_id == r.record_id,
                )
            )
            if not _sees(conn, user_id, r.owner_id):
                conn.execute(
                    insert(evictions_t).values(
                        user_id=user_id,
                        collection=r.collection,
                        record_id=r.record_id,
                        version=batch.next_version(),
                        created_at_ms=batch.now_ms,
                    )
                )
        if want and want not in have:
            conn.execute(
                insert(grants_t).values(
                    user_id=want, collection=r.collection, record_id=r.record_id
                )
            )


def _held(conn: Connection, rows: Sequence[RowState]) -> dict[tuple[str, str], set[str]]:
    """The stored grants of ``rows`` (per collection, by key)."""
    by_collection: dict[str, list[str]] = {}
    for r in rows:
        if r.pk is not None:  # a record the batch inserted has none yet
            by_collection.setdefault(r.collection, []).append(r.record_id)
    held: dict[tuple[str, str], set[str]] = {}
    for collection, ids in by_collection.items():
        for start in range(0, len(ids), _CHUNK):
            for g in conn.execute(
                select(grants_t.c.record_id, grants_t.c.user_id).where(
                    grants_t.c.collection == collection,
                    grants_t.c.record_id.in_(ids[start : start + _CHUNK]),
                )
            ):
                held.setdefault((collection, g.record_id), set()).add(g.user_id)
    return held


def _sees(conn: Connection, user_id: str, owner_id: str | None) -> bool:
    """Whether ``user_id`` sees records of ``owner_id`` by the owner rule."""
    if owner_id is None:
        return True
    role = conn.execute(select(users_t.c.role).where(users_t.c.id == user_id)).scalar()
    if role == "admin":
        return True
    return any(v.user_id == user_id and v.sees(owner_id) for v in _viewers_of(conn, owner_id))


def rebuild_grants(conn: Connection) -> int:
    """Every grant from the stored records (the migration's backfill)."""
    conn.execute(delete(grants_t))
    out = []
    for collection in sorted(GRANTING_FIELDS):
        for row in conn.execute(
            select(records_t.c.record_id, records_t.c.data).where(
                records_t.c.collection == collection, records_t.c.deleted.is_(False)
            )
        ):
            user_id = granted_to(collection, json.loads(row.data or "{}"))
            if user_id is not None:
                out.append(
                    {"user_id": user_id, "collection": collection, "record_id": row.record_id}
                )
    for start in range(0, len(out), 1000):
        conn.execute(insert(grants_t), out[start : start + 1000])
    return len(out)


__all__ = ["index_grants", "rebuild_grants"]
