"""Table ``dead_letters``: writes the server refused, sealed with the server's error."""

from __future__ import annotations

from typing import Any

from ..._rows import DeadLetterRow, Pending
from .connection import Database
from .sealing import Sealer, dead_aad


class SqliteDeadLetters:
    def __init__(self, db: Database, sealer: Sealer) -> None:
        self._db = db
        self._sealer = sealer

    def add(self, entry: Pending, error: dict[str, Any], at: float) -> None:
        payload = self._sealer.seal(
            {
                "fields": entry.fields,
                "base": entry.base,
                "base_version": entry.base_version,
                "error": dict(error),
                "resolves": entry.resolves,
            },
            dead_aad(entry.id, entry.collection, entry.record_id),
        )
        self._db.write(
            "INSERT OR REPLACE INTO dead_letters "
            "(id, collection, record_id, op, created_at, payload, group_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (entry.id, entry.collection, entry.record_id, entry.op, at, payload, entry.group),
        )

    def all(self) -> list[DeadLetterRow]:
        rows = self._db.query(
            "SELECT id, collection, record_id, op, created_at, payload, group_id "
            "FROM dead_letters ORDER BY created_at, id"
        )
        out = []
        for mid, coll, rid, op, created_at, payload, group in rows:
            body = self._sealer.open(payload, dead_aad(mid, coll, rid))
            out.append(
                DeadLetterRow(
                    id=mid,
                    collection=coll,
                    record_id=rid,
                    op=op,
                    fields=body.get("fields") or {},
                    base=body.get("base"),
                    base_version=body.get("base_version"),
                    error=body.get("error") or {},
                    resolves=body.get("resolves"),
                    created_at=created_at or 0.0,
                    group=group,
                )
            )
        return out

    def remove(self, dead_letter_id: str) -> bool:
        return self._db.write("DELETE FROM dead_letters WHERE id = ?", (dead_letter_id,)) > 0

    def count(self) -> int:
        return int(self._db.query("SELECT COUNT(*) FROM dead_letters")[0][0])

    def clear(self) -> None:
        self._db.write("DELETE FROM dead_letters")
