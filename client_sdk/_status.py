"""Sync status, progress and reports: what an app shows about "is my data safe yet"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """A snapshot of the store's sync state.

    ``online`` is the outcome of the last attempt to reach the server (``False`` before
    any). ``oldest_pending_age_s`` is how long the oldest unsynced write has waited.
    ``clock_warning`` is set when the server reported this device's clock as skewed.
    """

    online: bool
    pending_total: int
    pending_by_collection: dict[str, int]
    oldest_pending_age_s: float | None
    last_sync_at: float | None
    last_error: str | None
    clock_warning: str | None
    open_conflicts: int
    dead_letters: int
    #: offline past the server's lease: records are locked until a sync succeeds online
    locked: bool = False
    #: revoked by an administrator (without a wipe): syncing stopped, work kept
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class SyncProgress:
    """Progress of a sync phase. ``total`` is ``None`` while the server has not counted."""

    phase: Literal["push", "pull"]
    done: int
    total: int | None

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


@dataclass(slots=True)
class SyncReport:
    """What one :meth:`SyncClient.sync` did."""

    pushed: int = 0
    applied: int = 0
    merged: int = 0
    conflicts: int = 0
    rejected: int = 0
    duplicates: int = 0
    pulled: int = 0
    pages: int = 0
    evicted: int = 0
    resynced: bool = False
    token_refreshes: int = 0
    retries: int = 0
    warnings: list[str] = field(default_factory=list)
    checkpoint: str | None = None
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class UnsentWork:
    """What would be lost if the store were erased now (``Store.unsent_work()``).

    ``pending_writes``: writes not yet acknowledged by the server; ``rejected_writes``:
    writes the server refused (dead letters); ``open_conflicts``: conflicts not yet
    resolved; ``unsent_photos``: attachments whose bytes the server does not hold yet.
    """

    pending_writes: int = 0
    rejected_writes: int = 0
    open_conflicts: int = 0
    unsent_photos: int = 0

    @property
    def empty(self) -> bool:
        return not (
            self.pending_writes or self.rejected_writes or self.open_conflicts or self.unsent_photos
        )

    def __bool__(self) -> bool:
        return not self.empty
