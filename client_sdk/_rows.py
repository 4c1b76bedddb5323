"""Plain value types shared by the engine (deciding) and the local store (storing).

Nothing here does I/O or knows SQL: an outbox entry (:class:`Pending`), the server's
copy of a record (:class:`ServerCopy`), a dead letter and an attachment as the local
store hands them out, decrypted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The system collection the server syncs conflicts through.
CONFLICTS = "_conflicts"

Key = tuple[str, str]
"""(collection, record id)"""


@dataclass(slots=True)
class Pending:
    """One outbox entry (a local write not yet acknowledged), decrypted.

    ``seq`` orders the outbox (0 until the local store assigns it). ``group`` is the
    mutation group id shared by the writes of one ``Store.group()`` block.
    """

    seq: int
    id: str
    collection: str
    record_id: str
    op: str
    fields: dict[str, Any]
    base: dict[str, Any] | None
    base_version: int | None
    hlc: str
    sent: bool = False
    resolves: list[str] | None = None
    created_at: float = 0.0
    group: str | None = None
    #: soft server checks the user chose to override (``["possible_duplicate"]``)
    override: list[str] | None = None

    @property
    def key(self) -> Key:
        return (self.collection, self.record_id)


@dataclass(slots=True)
class ServerCopy:
    """The server's state of a record as last heard (``deleted``: a tombstone kept
    because local writes still wait on the record)."""

    fields: dict[str, Any]
    version: int | None
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    id: str
    collection: str
    record_id: str
    op: str
    fields: dict[str, Any]
    base: dict[str, Any] | None
    base_version: int | None
    error: dict[str, Any]
    resolves: list[str] | None
    created_at: float
    group: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxSummary:
    """Counts of the outbox for status screens (no payload is decrypted)."""

    by_collection: dict[str, int]
    oldest_created_at: float | None
    last_seq: int | None

    @property
    def total(self) -> int:
        return sum(self.by_collection.values())


@dataclass(frozen=True, slots=True)
class LocalCounts:
    """What the device reports about itself with each request (``device_status``),
    read off the local store: outbox size and age, refused writes, open conflicts, the
    run of failed sync attempts, the name given at sign-in."""

    pending_count: int = 0
    oldest_created_at: float | None = None
    dead_letters: int = 0
    open_conflicts: int = 0
    failed_attempts: int = 0
    last_error_code: str | None = None
    last_error_at_ms: int | None = None
    device_name: str | None = None


@dataclass(slots=True)
class AttachmentRow:
    """One attachment on the device: ids and state in clear, ``body`` sealed on disk."""

    id: str
    collection: str
    record_id: str
    state: str
    chunk_size: int
    uploaded_bytes: int = 0
    registered: bool = False
    local: bool = True
    created_at: float = 0.0
    body: dict[str, Any] = field(default_factory=dict)
