"""The sync bar on every screen: is this phone online, what has not reached the office,
when did it last sync, and is there anything a person must look at.

The rep in a basement car park must always know what is not yet safe on the server:
``pending`` counts the store's outbox; ``photos`` the photos not yet uploaded (they
travel separately, see :mod:`.photos`); the badge counts open conflicts plus rejected
writes (both wait for a person).
"""

from __future__ import annotations

from typing import Any

from .base import Observable, Session, parse_when, time_ago
from .photos import attachments_of


class SyncBarViewModel(Observable):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.online = False
        self.pending = 0
        self.conflicts = 0
        self.rejected = 0
        self.last_sync: Any = None
        self.clock_warning = ""
        self.syncing = False
        self.photos = 0
        self._attachments = attachments_of(session)
        self._unsubscribe = session.store.subscribe(self._on_event)

    def _on_event(self, _event: Any) -> None:
        self.refresh()

    def close(self) -> None:
        self._unsubscribe()

    def refresh(self) -> None:
        try:
            status = self.session.store.status()
        except Exception:  # the store was closed (log out) under a late event
            return
        self.online = bool(status.online)
        self.pending = int(status.pending_total)
        self.conflicts = int(status.open_conflicts)
        kept = self.session.extras.get("kept_notes")
        kept_count = len(getattr(kept, "ids", ()))
        self.rejected = max(0, int(status.dead_letters) - kept_count)  # kept notes wait for nobody
        self.last_sync = status.last_sync_at
        self.clock_warning = str(status.clock_warning or "")
        if self._attachments is not None:
            try:
                counts = self._attachments.counts()
            except Exception:  # closed under a late event
                return
            self.photos = counts.get("queued", 0) + counts.get("uploading", 0)
        self.notify()

    @property
    def badge(self) -> int:
        return self.conflicts + self.rejected

    @property
    def online_text(self) -> str:
        return self.session.tr("sync.online" if self.online else "sync.offline")

    @property
    def pending_text(self) -> str:
        tr = self.session.tr
        if self.photos:
            if self.pending:
                return tr("sync.pending_photos", n=self.pending, p=self.photos)
            return tr("sync.photos", n=self.photos)
        return tr("sync.pending", n=self.pending) if self.pending else tr("sync.all_sent")

    @property
    def last_sync_text(self) -> str:
        tr = self.session.tr
        when = parse_when(self.last_sync)
        if when is None:
            return tr("sync.never")
        return tr("sync.last", when=time_ago(tr, when, self.session.now()))

    @property
    def badge_text(self) -> str:
        return self.session.tr("sync.badge", n=self.badge) if self.badge else ""

    @property
    def summary(self) -> str:
        parts = [self.online_text, self.pending_text, self.last_sync_text]
        if self.clock_warning:
            parts.append(self.session.tr("sync.clock"))
        return " · ".join(parts)
