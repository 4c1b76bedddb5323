"""Table ``attachments``: ids and upload state in clear, everything else sealed (kind,
MIME type, name, size, SHA-256, capture time, location, errors)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..._rows import AttachmentRow
from .connection import Database, Row
from .sealing import Sealer, attachment_aad

_COLUMNS = (
    "id, collection, record_id, state, chunk_size, uploaded_bytes, registered, local, "
    "created_at, payload"
)


class SqliteAttachments:
    def __init__(self, db: Database, sealer: Sealer) -> None:
        self._db = db
        self._sealer = sealer

    def _decode(self, row: Row) -> AttachmentRow:
        aid, collection, record_id, state, chunk, uploaded, reg, local, created, payload = row
        body = self._sealer.open(payload, attachment_aad(aid, collection, record_id))
        return AttachmentRow(
            id=aid,
            collection=collection,
            record_id=record_id,
            state=state,
            chunk_size=int(chunk),
            uploaded_bytes=int(uploaded),
            registered=bool(reg),
            local=bool(local),
            created_at=float(created),
            body=body,
        )

    def _select(self, where: str, params: tuple[Any, ...] = ()) -> list[AttachmentRow]:
        rows = self._db.query(f"SELECT {_COLUMNS} FROM attachments {where}", params)
        return [self._decode(r) for r in rows]

    def insert(self, row: AttachmentRow) -> None:
        payload = self._sealer.seal(row.body, attachment_aad(row.id, row.collection, row.record_id))
        self._db.write(
            f"INSERT INTO attachments ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.id,
                row.collection,
                row.record_id,
                row.state,
                row.chunk_size,
                row.uploaded_bytes,
                int(row.registered),
                int(row.local),
                row.created_at,
                payload,
            ),
        )

    def get(self, attachment_id: str) -> AttachmentRow | None:
        rows = self._select("WHERE id = ?", (attachment_id,))
        return rows[0] if rows else None

    def for_record(self, record_id: str, collection: str | None = None) -> list[AttachmentRow]:
        if collection is None:
            return self._select("WHERE record_id = ? ORDER BY created_at", (record_id,))
        return self._select(
            "WHERE record_id = ? AND collection = ? ORDER BY created_at", (record_id, collection)
        )

    def in_states(self, states: Sequence[str]) -> list[AttachmentRow]:
        marks = ", ".join("?" * len(states))
        return self._select(f"WHERE state IN ({marks}) ORDER BY created_at", tuple(states))

    def counts(self) -> dict[str, int]:
        rows = self._db.query("SELECT state, COUNT(*) FROM attachments GROUP BY state")
        return {str(s): int(n) for s, n in rows}

    def update(
        self,
        attachment_id: str,
        *,
        state: str | None = None,
        uploaded_bytes: int | None = None,
        registered: bool | None = None,
        local: bool | None = None,
        body: dict[str, Any] | None = None,
    ) -> AttachmentRow | None:
        with self._db.transaction():
            row = self.get(attachment_id)
            if row is None:
                return None
            if state is not None:
                row.state = state
            if uploaded_bytes is not None:
                row.uploaded_bytes = uploaded_bytes
            if registered is not None:
                row.registered = registered
            if local is not None:
                row.local = local
            if body:
                row.body = {**row.body, **body}
            payload = self._sealer.seal(
                row.body, attachment_aad(row.id, row.collection, row.record_id)
            )
            self._db.write(
                "UPDATE attachments SET state = ?, uploaded_bytes = ?, registered = ?, "
                "local = ?, payload = ? WHERE id = ?",
                (
                    row.state,
                    row.uploaded_bytes,
                    int(row.registered),
                    int(row.local),
                    payload,
                    attachment_id,
                ),
            )
            return row

    def remove(self, attachment_id: str) -> bool:
        return self._db.write("DELETE FROM attachments WHERE id = ?", (attachment_id,)) > 0

    def ids(self) -> set[str]:
        return {str(r[0]) for r in self._db.query("SELECT id FROM attachments")}

    def clear(self) -> None:
        self._db.write("DELETE FROM attachments")
