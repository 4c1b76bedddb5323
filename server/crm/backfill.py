"""Rebuilding the CRM's derived tables from ``records`` (the migration's backfill)."""

from __future__ import annotations

import json
from typing import cast

from sqlalchemy import Connection, Table, delete, inspect, select, update

from sync_protocol.reminders import SOURCES

from ..models import Record
from ..repository.state import read_counter
from .indexing import SEARCHED, IndexedRow, index_records, keys_t, search_t, state_t
from .keys import KEYED
from .reminders import index_reminders, reminders_t

records_t = cast(Table, Record.__table__)


def reindex_all(conn: Connection) -> int:
    """Rebuild the derived tables — duplicate keys, search text, reminders — from
    ``records`` (the migration's backfill). Each search entry carries its record's
    version, so the search catch-up (:func:`.indexing.catch_up_search`) leaves them be."""
    # Every version up to the horizon is visible to the reads below: the rebuilt search
    # table is true up to there (its cursor moves there at the end). Not at migration
    # 0006, before the cursor (0015) and the PostgreSQL horizon (0014) exist.
    cursor = inspect(conn).has_table("search_state")
    horizon = read_counter(conn).counter if cursor else 0
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
    if cursor:
        conn.execute(update(state_t).where(state_t.c.id == 1).values(cursor=horizon))
    return count + len(batch)
