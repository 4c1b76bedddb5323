"""Table ``outbox``: local writes waiting for the server (patch and base sealed).

``head`` never cuts a mutation group: when the ``limit``-th entry belongs to a group,
the rest of that group comes too (a group never spans two pushes). A group's entries
are contiguous, because a group is written in one transaction under the store's lock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..._rows import Key, OutboxSummary, Pending
from .connection import Database, Row
from .sealing import Sealer, outbox_aad

_COLUMNS = (
    "seq, id, collection, record_id, op, base_version, hlc, sent, resolves, created_at, "
    "payload, group_id"
)


class SqliteOutbox:
    def __init__(self, db: Database, sealer: Sealer) -> None:
        self._db = db
        self._sealer = sealer

    def _decode(self, row: Row) -> Pending:
        seq, mid, coll, rid, op, base_version, hlc, sent, resolves, created, payload, group = row
        body = self._sealer.open(payload, outbox_aad(mid, coll, rid))
        return Pending(
            seq=seq,
            id=mid,
            collection=coll,
            record_id=rid,
            op=op,
            fields=body.get("fields") or {},
            base=body.get("base"),
            base_version=base_version,
            hlc=hlc,
            sent=bool(sent),
            resolves=json.loads(resolves) if resolves else None,
            created_at=created or 0.0,
            group=group,
            override=body.get("override"),
        )

    def _select(self, where: str = "", params: tuple[Any, ...] = ()) -> list[Pending]:
        rows = self._db.query(f"SELECT {_COLUMNS} FROM outbox {where}", params)
        return [self._decode(r) for r in rows]

    def append(self, entry: Pending) -> int:
        payload = self._sealer.seal(
            {"fields": entry.fields, "base": entry.base, "override": entry.override},
            outbox_aad(entry.id, entry.collection, entry.record_id),
        )
        with self._db.transaction():
            cur = self._db.conn.execute(
                "INSERT INTO outbox (id, collection, record_id, op, base_version, hlc, "
                "created_at, sent, resolves, payload, group_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.id,
                    entry.collection,
                    entry.record_id,
                    entry.op,
                    entry.base_version,
                    entry.hlc,
                    entry.created_at,
                    int(entry.sent),
                    json.dumps(entry.resolves) if entry.resolves else None,
                    payload,
                    entry.group,
                ),
            )
            seq = int(cur.lastrowid or 0)
        entry.seq = seq
        return seq

    def rewrite(self, entry: Pending) -> None:
        """Store new fields, base and HLC for an unsent entry (coalesced edits)."""
        payload = self._sealer.seal(
            {"fields": entry.fields, "base": entry.base, "override": entry.override},
            outbox_aad(entry.id, entry.collection, entry.record_id),
        )
        self._db.write(
            "UPDATE outbox SET hlc = ?, payload = ? WHERE seq = ?", (entry.hlc, payload, entry.seq)
        )

    def last(self) -> Pending | None:
        rows = self._select("ORDER BY seq DESC LIMIT 1")
        return rows[0] if rows else None

    def entries(self, collection: str | None = None, record_id: str | None = None) -> list[Pending]:
        if collection is None:
            return self._select("ORDER BY seq")
        if record_id is None:
            return self._select("WHERE collection = ? ORDER BY seq", (collection,))
        return self._select(
            "WHERE collection = ? AND record_id = ? ORDER BY seq", (collection, record_id)
        )

    def head(self, limit: int) -> list[Pending]:
        batch = self._select("ORDER BY seq LIMIT ?", (max(1, limit),))
        if batch and batch[-1].group is not None:
            batch += self._select(
                "WHERE group_id = ? AND seq > ? ORDER BY seq", (batch[-1].group, batch[-1].seq)
            )
        return batch

    def mark_sent(self, seqs: Iterable[int]) -> None:
        self._db.write_many("UPDATE outbox SET sent = 1 WHERE seq = ?", [(s,) for s in seqs])

    def remove(self, seqs: Iterable[int]) -> None:
        self._db.write_many("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

    def keys(self) -> set[Key]:
        return {
            (c, r) for c, r in self._db.query("SELECT DISTINCT collection, record_id FROM outbox")
        }

    def resolving(self) -> set[str]:
        out: set[str] = set()
        for (resolves,) in self._db.query("SELECT resolves FROM outbox WHERE resolves IS NOT NULL"):
            out.update(json.loads(resolves))
        return out

    def summary(self) -> OutboxSummary:
        by_collection = {
            str(c): int(n)
            for c, n in self._db.query(
                "SELECT collection, COUNT(*) FROM outbox GROUP BY collection"
            )
        }
        oldest, last = self._db.query("SELECT MIN(created_at), MAX(seq) FROM outbox")[0]
        return OutboxSummary(by_collection, oldest, last)

    def clear(self) -> None:
        self._db.write("DELETE FROM outbox")
