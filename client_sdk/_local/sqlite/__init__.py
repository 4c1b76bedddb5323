"""The SQLite local store: one file, one connection, a module per table.

The only code in the SDK that writes SQL (with :mod:`..memory` as its in-memory twin).
Every payload is sealed (:mod:`.sealing`) before it reaches a table; ids, collection
names, versions and HLCs are the only clear text.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from ..crypto import Cipher
from .attachments import SqliteAttachments
from .connection import Database
from .dead_letters import SqliteDeadLetters
from .meta import SqliteMeta
from .migrations import TABLES, check, create, upgrade
from .outbox import SqliteOutbox
from .records import SqliteRecords
from .sealing import Sealer
from .search import SqliteSearch

__all__ = ["SqliteLocalStore"]


class SqliteLocalStore:
    """A store file at ``path`` (``None``: an SQLite database in memory)."""

    def __init__(
        self, path: str | os.PathLike[str] | None, *, check_integrity: bool = True
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.db = Database(self.path, check_integrity=check_integrity)
        self.lock = self.db.lock
        try:
            self._new = check(self.db)
            if not self._new:
                upgrade(self.db)
        except BaseException:
            self.db.close()
            raise
        self._sealer = Sealer()
        self.meta = SqliteMeta(self.db, self._sealer)
        self.records = SqliteRecords(self.db, self._sealer)
        self.outbox = SqliteOutbox(self.db, self._sealer)
        self.dead_letters = SqliteDeadLetters(self.db, self._sealer)
        self.attachments = SqliteAttachments(self.db, self._sealer)
        self.search = SqliteSearch(self.db, self._sealer)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self.db.transaction():
            yield

    def write_count(self) -> int | None:
        """Rows changed through this store's connection (every write goes through it;
        a rolled-back change still counts)."""
        return self.db.conn.total_changes

    def is_new(self) -> bool:
        return self._new

    def create(self) -> None:
        create(self.db)

    def use_cipher(self, cipher: Cipher) -> None:
        self._sealer.cipher = cipher

    @property
    def closed(self) -> bool:
        return self.db.closed

    def close(self) -> None:
        self.db.close()

    def destroy(self) -> None:
        self._sealer.cipher = None
        self.db.destroy(TABLES)
