"""All sync SQL: push (:mod:`.push`), pull (:mod:`.pull`), reassignment and purge
(:mod:`.admin`), around the locked version counter (:mod:`.state`).

Functions take a SQLAlchemy ``Connection`` inside the caller's transaction; the caller
commits. Nothing here knows about HTTP.
"""

from .admin import (
    PurgeResult,
    ReassignResult,
    purge_tombstones,
    reassign_customers,
    reassign_owned,
    reassign_records,
)
from .pull import PullPage, format_checkpoint, parse_checkpoint, pull_page
from .push import PushOutcome, apply_push, conflict_id, mutation_digest
from .rows import CONFLICTS, canonical_json
from .state import SyncCounter, lock_counter, new_epoch, read_counter

__all__ = [
    "CONFLICTS",
    "PullPage",
    "PurgeResult",
    "PushOutcome",
    "ReassignResult",
    "SyncCounter",
    "apply_push",
    "canonical_json",
    "conflict_id",
    "format_checkpoint",
    "lock_counter",
    "mutation_digest",
    "new_epoch",
    "parse_checkpoint",
    "pull_page",
    "purge_tombstones",
    "read_counter",
    "reassign_customers",
    "reassign_owned",
    "reassign_records",
]
