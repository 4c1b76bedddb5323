"""Table ``search_index``: the sealed segments of each collection's search index.

A segment is a JSON map ``{record id: search text or null}`` sealed with the store's
cipher, bound to its (collection, segment number); only the entry count is clear.
See :mod:`client_sdk._local.search` for what goes in and how it is kept up to date.
"""

from __future__ import annotations

from .connection import Database
from .sealing import Sealer, search_aad


class SqliteSearch:
    def __init__(self, db: Database, sealer: Sealer) -> None:
        self._db = db
        self._sealer = sealer

    def headers(self, collection: str) -> list[tuple[int, int]]:
        rows = self._db.query(
            "SELECT seg, entries FROM search_index WHERE collection = ? ORDER BY seg",
            (collection,),
        )
        return [(int(seg), int(n)) for seg, n in rows]

    def get(self, collection: str, seg: int) -> dict[str, str | None]:
        rows = self._db.query(
            "SELECT payload FROM search_index WHERE collection = ? AND seg = ?", (collection, seg)
        )
        if not rows:
            return {}
        found = self._sealer.open(rows[0][0], search_aad(collection, seg))
        return found if isinstance(found, dict) else {}

    def put(self, collection: str, seg: int, entries: dict[str, str | None]) -> None:
        payload = self._sealer.seal(entries, search_aad(collection, seg))
        self._db.write(
            "INSERT INTO search_index (collection, seg, entries, payload) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (collection, seg) DO UPDATE SET entries = excluded.entries, "
            "payload = excluded.payload",
            (collection, seg, len(entries), payload),
        )

    def clear(self, collection: str | None = None) -> None:
        if collection is None:
            self._db.write("DELETE FROM search_index")
        else:
            self._db.write("DELETE FROM search_index WHERE collection = ?", (collection,))
