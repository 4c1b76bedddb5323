"""Nothing typed is lost without the rep's explicit choice.

Signing out, switching user and a forced wipe would erase the phone's copy. Before any
of them the app shows **what would be lost** — writes not yet on the server (by kind),
writes the server refused, conflicts not yet decided, photos not yet uploaded, notes
kept from refused writes — and offers, in this order: *sync now* (the normal way out),
*export* (a file the rep keeps), and only then *discard and sign out*, a separate
button the rep has to press knowing the count. :meth:`SignOutViewModel.sign_out`
refuses while anything would be lost unless told ``discard=True``.

The counts come from the SDK's ``Store.unsent_work()`` (with the per-collection split
of ``status().pending_by_collection``), the export from ``Store.export_unsent(path)``
(a zip: ``unsent.json`` and the photos); a store without them (an older SDK) is read
from the documented surface instead (status counts, dead letters, conflicts).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .base import Observable, Session
from .photos import attachments_of


@dataclass(frozen=True, slots=True)
class LossSummary:
    """What signing out now would erase."""

    pending: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    conflicts: int = 0
    photos: int = 0

    @property
    def pending_total(self) -> int:
        return sum(self.pending.values())

    @property
    def empty(self) -> bool:
        return not (self.pending_total or self.rejected or self.conflicts or self.photos)

    def lines(self, session: Session) -> list[str]:
        tr = session.tr
        out = [
            tr("loss.pending", n=n, what=tr.entity_label(name))
            for name, n in sorted(self.pending.items(), key=lambda kv: -kv[1])
            if n
        ]
        if self.rejected:
            out.append(tr("loss.rejected", n=self.rejected))
        if self.conflicts:
            out.append(tr("loss.conflicts", n=self.conflicts))
        if self.photos:
            out.append(tr("loss.photos", n=self.photos))
        return out


def loss_summary(session: Session) -> LossSummary:
    """The SDK's ``unsent_work()`` split by collection, else counted from the status."""
    store: Any = session.store
    status: Any = store.status()
    pending = dict(getattr(status, "pending_by_collection", {}) or {})
    unsent_work = getattr(store, "unsent_work", None)
    if callable(unsent_work):
        work = unsent_work()
        if not pending and work.pending_writes:
            pending = {"records": int(work.pending_writes)}
        return LossSummary(
            pending=pending,
            rejected=int(work.rejected_writes),
            conflicts=int(work.open_conflicts),
            photos=int(work.unsent_photos),
        )
    photos = 0
    attachments = attachments_of(session)
    if attachments is not None:
        with contextlib.suppress(Exception):
            counts = attachments.counts()
            photos = sum(counts.get(k, 0) for k in ("queued", "uploading", "failed"))
    if not pending and status.pending_total:
        pending = {"records": int(status.pending_total)}
    return LossSummary(
        pending=pending,
        rejected=int(status.dead_letters),
        conflicts=int(status.open_conflicts),
        photos=photos,
    )


def export_unsent(session: Session, folder: Path) -> Path:
    """Write everything not yet on the server to a file in ``folder``; its path.

    The rep chose to take this data off the encrypted store (it is theirs to keep, e.g.
    before handing the phone back); the file says what each entry was.
    """
    store: Any = session.store
    folder.mkdir(parents=True, exist_ok=True)
    stamp = session.now().astimezone().strftime("%Y%m%d-%H%M%S")
    name = f"fieldsync-unsent-{session.user.username}-{stamp}"
    sdk_export = getattr(store, "export_unsent", None)
    if callable(sdk_export):  # a zip: unsent.json (writes, refusals, conflicts) + photos/
        return Path(sdk_export(folder / f"{name}.zip"))
    path = folder / f"{name}.json"
    pending = []
    for name in _collections():
        for record in store.collection(name).query(where=lambda r: bool(r.pending)):
            pending.append({"collection": name, "id": record.id, "fields": dict(record.fields)})
    body = {
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "user": session.user.username,
        "server": session.server_url,
        "pending": pending,
        "rejected": [
            {
                "collection": d.collection,
                "id": d.record_id,
                "op": d.op,
                "fields": dict(d.fields),
                "error": d.error if isinstance(d.error, dict) else str(d.error),
            }
            for d in store.dead_letters()
        ],
        "conflicts": [
            {
                "collection": c.collection,
                "id": c.record_id,
                "field": c.field,
                "mine": c.local,
                "theirs": c.remote,
            }
            for c in store.conflicts()
        ],
    }
    path.write_text(json.dumps(body, ensure_ascii=False, indent=2, default=str), "utf-8")
    return path


def _collections() -> list[str]:
    from sync_protocol import CRM_SCHEMA

    return sorted(CRM_SCHEMA.entities)


class SignOutViewModel(Observable):
    """The sign-out (or switch-user) sheet: what would be lost, and the three ways out."""

    def __init__(
        self,
        session: Session,
        *,
        wipe: Callable[[], None],
        export_folder: Path | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self._wipe = wipe
        self.export_folder = export_folder
        self.summary = LossSummary()
        self.message = ""
        self.error = ""
        self.exported: Path | None = None
        self.signed_out = False
        self.refresh()

    def refresh(self) -> None:
        self.summary = loss_summary(self.session)
        self.notify()

    @property
    def lines(self) -> list[str]:
        return self.summary.lines(self.session)

    @property
    def headline(self) -> str:
        tr = self.session.tr
        return tr("loss.nothing") if self.summary.empty else tr("loss.would_lose")

    def sync_first(self) -> bool:
        """Try to send everything now (blocks; the screen runs it off the UI thread)."""
        tr = self.session.tr
        client = self.session.client
        try:
            if client is None:
                raise RuntimeError("no server")
            client.sync()
        except Exception as exc:
            self.error = tr("settings.sync_failed", reason=str(exc) or type(exc).__name__)
        else:
            self.error = ""
        self.refresh()
        self.message = tr("loss.synced_all") if self.summary.empty else tr("loss.still_unsent")
        self.notify()
        return self.summary.empty

    def export(self) -> Path | None:
        if self.export_folder is None:
            return None
        self.exported = export_unsent(self.session, self.export_folder)
        self.message = self.session.tr("loss.exported", path=str(self.exported))
        self.notify()
        return self.exported

    def sign_out(self, *, discard: bool = False) -> bool:
        """Sign out and erase this phone's copy; refused while work would be lost,
        unless ``discard`` (the rep pressed "discard and sign out" seeing the count)."""
        self.refresh()
        if not self.summary.empty and not discard:
            self.error = self.session.tr("loss.refused")
            self.notify()
            return False
        self._wipe()
        self.signed_out = True
        self.notify()
        return True
