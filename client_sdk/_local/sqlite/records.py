"""Table ``records``: the server's copy of each record, sealed, with its generation.

The generation (``gen``) is the resync counter at the time the copy was stored: after a
full re-pull, copies of older generations the server did not deliver again are dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..._rows import Key, ServerCopy
from ..base import CopyRow
from .connection import Database
from .sealing import ENCODER, Sealer, record_aad

_UPSERT = (
    "INSERT INTO records (collection, id, version, deleted, gen, payload) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (collection, id) DO UPDATE SET "
    "version = excluded.version, deleted = excluded.deleted, gen = excluded.gen, "
    "payload = excluded.payload"
)

_SCAN_BATCH = 512
_IN_BATCH = 500


class SqliteRecords:
    def __init__(self, db: Database, sealer: Sealer) -> None:
        self._db = db
        self._sealer = sealer

    def get(self, collection: str, record_id: str) -> ServerCopy | None:
        rows = self._db.query(
            "SELECT version, deleted, payload FROM records WHERE collection = ? AND id = ?",
            (collection, record_id),
        )
        if not rows:
            return None
        version, deleted, payload = rows[0]
        fields = self._sealer.open(payload, record_aad(collection, record_id))
        return ServerCopy(fields, version, bool(deleted))

    def get_many(self, collection: str, record_ids: Iterable[str]) -> dict[str, ServerCopy]:
        ids = list(record_ids)
        out: dict[str, ServerCopy] = {}
        open_ = self._sealer.open
        for start in range(0, len(ids), _IN_BATCH):
            chunk = ids[start : start + _IN_BATCH]
            rows = self._db.query(
                "SELECT id, version, deleted, payload FROM records WHERE collection = ? "
                f"AND id IN ({','.join('?' * len(chunk))})",
                (collection, *chunk),
            )
            for rid, version, deleted, payload in rows:
                fields = open_(payload, record_aad(collection, rid))
                out[rid] = ServerCopy(fields, version, bool(deleted))
        return out

    def scan(self, collection: str) -> Iterator[tuple[str, ServerCopy]]:
        """Keyset pages of :data:`_SCAN_BATCH` rows in id order: at most one page of
        ciphertexts is in memory at a time."""
        after = ""
        open_ = self._sealer.open
        while True:
            rows = self._db.query(
                "SELECT id, version, deleted, payload FROM records "
                "WHERE collection = ? AND id > ? ORDER BY id LIMIT ?",
                (collection, after, _SCAN_BATCH),
            )
            for rid, version, deleted, payload in rows:
                fields = open_(payload, record_aad(collection, rid))
                yield rid, ServerCopy(fields, version, bool(deleted))
            if len(rows) < _SCAN_BATCH:
                return
            after = rows[-1][0]

    def count(self, collection: str) -> int:
        """All copies (from the primary key alone) minus the tombstones (a partial index)."""
        rows = self._db.query(
            "SELECT (SELECT count(*) FROM records WHERE collection = ?) - "
            "(SELECT count(*) FROM records WHERE collection = ? AND deleted = 1)",
            (collection, collection),
        )
        return int(rows[0][0])

    def put(self, collection: str, record_id: str, copy: ServerCopy, gen: int) -> None:
        payload = self._sealer.seal(copy.fields, record_aad(collection, record_id))
        self._db.write(
            _UPSERT, (collection, record_id, copy.version, int(copy.deleted), gen, payload)
        )

    def put_many(self, rows: Iterable[CopyRow], gen: int) -> None:
        """Store many live copies at once: the hot loop of an initial sync (no helper
        calls per record; the AAD is :func:`record_aad` written out). A row's ``raw``
        JSON text, when given, is sealed as it is (it decodes to the row's fields, which
        is all a payload is read as), saving the encoding of ``fields``."""
        cipher = self._sealer.cipher
        if cipher is None:
            self._sealer.seal(None, b"")  # raises: the store is locked
            return
        seal, encode = cipher.seal, ENCODER.encode
        params = [
            (
                c,
                rid,
                v,
                0,
                gen,
                seal(encode(f or {}).encode() if raw is None else raw, f"r\0{c}\0{rid}".encode()),
            )
            for c, rid, v, f, raw in rows
        ]
        self._db.write_many(_UPSERT, params)

    def mark_deleted(self, collection: str, record_id: str, version: int, gen: int) -> None:
        self._db.write(
            "UPDATE records SET deleted = 1, version = ?, gen = ? WHERE collection = ? AND id = ?",
            (version, gen, collection, record_id),
        )

    def remove(self, collection: str, record_id: str) -> None:
        self._db.write(
            "DELETE FROM records WHERE collection = ? AND id = ?", (collection, record_id)
        )

    def drop_older(self, gen: int, keep: set[Key]) -> int:
        stale = [
            (c, rid)
            for c, rid in self._db.query("SELECT collection, id FROM records WHERE gen < ?", (gen,))
            if (c, rid) not in keep
        ]
        self._db.write_many("DELETE FROM records WHERE collection = ? AND id = ?", stale)
        return len(stale)

    def clear(self) -> None:
        self._db.write("DELETE FROM records")
