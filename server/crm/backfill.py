"""Rebuilding the CRM's derived tables from ``records`` (the migration's backfill)."""

from __future__ import annotations

import json
from typing import cast

from sqlalchemy import Connection, Table, delete, select

from sync_protocol.reminders import SOURCES

from ..models import Record
from .indexing import SEARCHED, IndexedRow, index_records, keys_t, search_t
from .keys import KEYED
from .reminders import index_reminders, reminders_t

records_t = cast(Table, Record.__table__)


def reindex_all(conn: Connection) -> int:
    """Rebuild the derived tables — duplicate keys, search text, reminders — from
    ``records`` (the migration's backfill). Each search entry carries its record's
    version, so the search catch-up (:func:`.indexing.catch_up_search`) leaves them be."""
    conn.execute(delete(keys_t))
    conn.execute(delete(search_t))
    conn.execute(delete(reminders_t))
    wanted = sorted(set(KEYED) | set(SEARCHED) | set(SOURCES))
    stmt = select(
        records_t.c.collection,
        records_t.c.record_id,
        records_t.c.data,
        records_t.c.owner_id,
        records_t.c.version,
    ).where(records_t.c.collection.in_(wanted), records_t.c.deleted.is_(False))
    batch: list[IndexedRow] = []
    count = 0
    for row in conn.execute(stmt):
        fields = json.loads(row.data or "{}")
        batch.append(
            IndexedRow(row.collection, row.record_id, fields, False, row.owner_id, row.version)
        )
        if len(batch) >= 2000:
            index_records(conn, batch, fresh=True)
            index_reminders(conn, batch, fresh=True)
            count += len(batch)
            batch = []
    index_records(conn, batch, fresh=True)
    index_reminders(conn, batch, fresh=True)
    return count + len(batch)
