"""Table ``meta``: small clear values (key material, counters) and sealed secrets."""

from __future__ import annotations

from typing import Any

from .connection import Database
from .sealing import Sealer, meta_aad

_SECRET = "s:"


class SqliteMeta:
    def __init__(self, db: Database, sealer: Sealer) -> None:
        self._db = db
        self._sealer = sealer

    def get(self, key: str) -> bytes | None:
        rows = self._db.query("SELECT value FROM meta WHERE key = ?", (key,))
        return bytes(rows[0][0]) if rows else None

    def set(self, key: str, value: bytes | None) -> None:
        if value is None:
            self._db.write("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self._db.write(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def get_secret(self, key: str) -> Any:
        raw = self.get(_SECRET + key)
        return None if raw is None else self._sealer.open(raw, meta_aad(key))

    def set_secret(self, key: str, value: Any) -> None:
        sealed = None if value is None else self._sealer.seal(value, meta_aad(key))
        self.set(_SECRET + key, sealed)
