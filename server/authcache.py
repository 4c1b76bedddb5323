"""Verified callers, remembered while nothing a token is checked against has changed.

Verifying a caller means reading its device and user rows (and, for a manager, the team)
and holding the token against them (:func:`server.deps.check_token`). On the pull path —
every poll of every online device — that was most of the work. This cache keeps the
outcome of a successful check, keyed by the token's device, user and generations, and
tagged with the database's *auth generation* (``auth_state.generation``, migration
``0012_auth_state``) read before the rows were.

The generation is raised, by database triggers, by everything that could change the
outcome: a device revoked, wiped, signed out or moved; a user deactivated, signed out,
given another role or team, created or deleted; a team's manager changed. The pull reads
it in the same statement as the sync counter, so a cached entry is used only while the
generation (and the epoch: a restore rewinds rows) is exactly the one it was verified
under. A revocation committed by any instance, tool or raw SQL therefore takes effect on
the very next request everywhere, and a steady poll needs no read of the account rows.

Order matters: the generation is read *before* the rows it vouches for. A revocation
that commits in between leaves a newer generation behind it, so the entry is never used.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from .accounts import Principal
from .auth import AccessClaims

#: Entries kept at most (one per signed-in device); beyond, the cache starts over.
MAX_ENTRIES = 50_000


@dataclass(slots=True)
class Verified:
    """A caller whose token was checked against the rows under ``generation``."""

    principal: Principal
    epoch: str
    generation: int
    #: The device's ``last_seen`` as this process last read or wrote it.
    last_seen: datetime | None


Key = tuple[str, str, int, int]


def key_of(claims: AccessClaims) -> Key:
    return (claims.device_id, claims.user_id, claims.user_generation, claims.device_generation)


class AuthCache:
    """Thread-safe map of verified tokens (see the module docstring)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: dict[Key, Verified] = {}
        self._lock = threading.Lock()
        self.max_entries = max_entries
        #: Counters for tests and diagnostics.
        self.hits = 0
        self.misses = 0

    def get(self, claims: AccessClaims, *, epoch: str, generation: int) -> Verified | None:
        """The entry for this token if it was verified under exactly this generation."""
        entry = self._entries.get(key_of(claims))
        if entry is None or entry.generation != generation or entry.epoch != epoch:
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def put(self, claims: AccessClaims, entry: Verified) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key_of(claims)] = entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
