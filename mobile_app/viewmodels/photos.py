"""Photos of a visit: attach from the camera or a file, and see each one's upload status.

A photo is stored through the SDK's attachment API, encrypted on the phone and bound
to its record (the visit, an ``activities`` record), with kind ``photo``, its capture
time and the visit's check-in location when one is known. The bytes upload on their own
thread (``sdk_uploads``) beside the record sync: the visit reaches the office at once,
its photos follow whenever the signal allows.

Status per photo comes from the SDK's ``AttachmentChanged`` events (published on the
store's event bus by whichever thread moved the photo): queued → uploading n % →
uploaded, or failed with the server's reason and a retry. Oversized photos are refused
on the phone before anything is stored, with a message in the rep's language.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mobile_app.i18n import Translator

from .base import Observable, Session, local_datetime_text
from .ports import AttachmentInfoPort, AttachmentsPort

#: The photo formats the app attaches, by file extension.
PHOTO_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".webp": "image/webp",
}
#: Glob patterns for the file chooser (lower and upper case: Android cameras write .JPG).
PHOTO_PATTERNS = [f"*{ext}" for ext in PHOTO_TYPES] + [f"*{ext.upper()}" for ext in PHOTO_TYPES]


def attachments_of(session: Session) -> AttachmentsPort | None:
    """The session's attachment storage, opened on first use; ``None`` if the store has none."""
    if session.attachments is None:
        from .account import sdk_attachments

        try:
            session.attachments = sdk_attachments(session.store)
        except TypeError:
            return None
    return session.attachments


def human_size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def photo_location(check_in: Any) -> dict[str, float] | None:
    """The attachment location from a visit's ``check_in`` geo point (lat, lon, accuracy)."""
    if not isinstance(check_in, dict):
        return None
    try:
        location = {"lat": float(check_in["lat"]), "lon": float(check_in["lon"])}
    except (KeyError, TypeError, ValueError):
        return None
    accuracy = check_in.get("accuracy_m")
    if isinstance(accuracy, int | float):
        location["accuracy_m"] = float(accuracy)
    return location


def failure_reason(tr: Translator, error: dict[str, Any] | None) -> str:
    """Why the server refused a photo for good, in the rep's words."""
    error = error or {}
    code = str(error.get("code") or "")
    details = error.get("details") or {}
    if code == "payload_too_large":
        limit = details.get("max_bytes") if isinstance(details, dict) else None
        if isinstance(limit, int):
            return tr("photos.err.server_too_large", limit=human_size(limit))
    if code == "forbidden":
        return tr("photos.err.forbidden")
    return str(error.get("message") or code or "?")


@dataclass(frozen=True, slots=True)
class StagedPhoto:
    """A photo picked on the Log-a-visit form, stored when the visit is saved."""

    path: str
    name: str
    mime: str
    size: int
    captured_at: datetime
    #: Written by the camera for this visit only: deleted once stored encrypted (a
    #: plaintext copy must not outlive the capture).
    temporary: bool = False

    def forget(self) -> None:
        if self.temporary:
            with contextlib.suppress(OSError):
                Path(self.path).unlink()


@dataclass(frozen=True, slots=True)
class PhotoRow:
    id: str
    name: str
    #: ``queued`` / ``uploading`` / ``complete`` / ``failed`` / ``remote``.
    state: str
    status: str
    detail: str
    progress: float

    @property
    def can_retry(self) -> bool:
        return self.state == "failed"


def stage_photo(
    session: Session, attachments: AttachmentsPort | None, path: str, *, temporary: bool = False
) -> StagedPhoto | str:
    """Check a picked file (exists, is a photo, within the size limit): the photo, or
    the localized message saying why not. Nothing is stored yet."""
    tr = session.tr
    path = path.strip()
    file = Path(os.path.expanduser(path))
    if not path or not file.is_file():
        return tr("photos.err.missing", path=path or "—")
    mime = PHOTO_TYPES.get(file.suffix.lower()) or ""
    if not mime:
        guessed, _ = mimetypes.guess_type(file.name)
        mime = guessed if guessed and guessed.startswith("image/") else ""
    if not mime:
        return tr("photos.err.not_image", name=file.name)
    size = file.stat().st_size
    if attachments is not None and size > attachments.max_bytes:
        return too_large(tr, size, attachments.max_bytes)
    return StagedPhoto(str(file), file.name, mime, size, session.now(), temporary)


def too_large(tr: Translator, size: int, limit: int) -> str:
    return tr("photos.err.too_large", size=human_size(size), limit=human_size(limit))


def store_photo(
    session: Session,
    attachments: AttachmentsPort,
    record_id: str,
    photo: StagedPhoto,
    location: dict[str, float] | None,
    collection: str = "activities",
) -> AttachmentInfoPort | str:
    """Store a staged photo encrypted and queue it for upload: its info, or a message."""
    from client_sdk.attachments import AttachmentTooLarge

    try:
        info = attachments.add(
            collection,
            record_id,
            photo.path,
            kind="photo",
            mime=photo.mime,
            location=location,
            captured_at=photo.captured_at,
            name=photo.name,
        )
    except AttachmentTooLarge as exc:  # the file grew since it was picked
        return too_large(session.tr, exc.size, exc.limit)
    except OSError:
        return session.tr("photos.err.missing", path=photo.path)
    except Exception as exc:  # AttachmentError, a closed store: say so, keep the visit
        return session.tr("photos.err.other", reason=str(exc) or type(exc).__name__)
    photo.forget()
    return info


def status_text(tr: Translator, info: AttachmentInfoPort) -> str:
    state = str(info.state)
    if state == "uploading":
        pct = 100 if info.size == 0 else min(100, info.uploaded_bytes * 100 // info.size)
        return tr("photos.status.uploading", pct=pct)
    if state == "failed":
        return tr("photos.status.failed", reason=failure_reason(tr, info.error))
    if state in ("queued", "complete", "remote"):
        return tr(f"photos.status.{state}")
    return state


def photo_row(tr: Translator, info: AttachmentInfoPort) -> PhotoRow:
    size = info.size
    detail = " · ".join(x for x in (human_size(size), local_datetime_text(info.captured_at)) if x)
    return PhotoRow(
        id=info.id,
        name=info.name or info.id[:8],
        state=str(info.state),
        status=status_text(tr, info),
        detail=detail,
        progress=1.0 if size == 0 else min(1.0, info.uploaded_bytes / size),
    )


class PhotosViewModel(Observable):
    """The photos of one record (a visit): attach more, see each upload's status, retry.

    Listens to the store's events and refreshes when an ``AttachmentChanged`` for this
    record arrives; the listeners then run on the thread that moved the photo (the
    screen marshals its redraw onto the UI thread).
    """

    def __init__(self, session: Session, record_id: str, collection: str = "activities") -> None:
        super().__init__()
        self.session = session
        self.record_id = record_id
        self.collection = collection
        self.attachments = attachments_of(session)
        self.rows: list[PhotoRow] = []
        self.message = ""
        self.error = ""
        self._unsubscribe = session.store.subscribe(self._on_event)
        self.refresh()

    @property
    def available(self) -> bool:
        return self.attachments is not None

    def _on_event(self, event: Any) -> None:
        if getattr(event, "record_id", None) == self.record_id and hasattr(event, "uploaded_bytes"):
            self.refresh()

    def close(self) -> None:
        self._unsubscribe()

    def refresh(self) -> None:
        if self.attachments is None:
            return
        try:
            infos = self.attachments.list(self.record_id, self.collection)
        except Exception:  # the store closed under a late event (log out)
            return
        tr = self.session.tr
        self.rows = [photo_row(tr, info) for info in infos if info.kind == "photo"]
        self.notify()

    def location(self) -> dict[str, float] | None:
        record = self.session.store.collection(self.collection).get(self.record_id)
        return photo_location(record.fields.get("check_in")) if record else None

    def attach(self, path: str, *, temporary: bool = False) -> bool:
        """Store the photo at ``path`` for this record (offline) and queue its upload.

        ``temporary``: the camera wrote the file for us; it is deleted once stored."""
        self.message = ""
        staged = stage_photo(self.session, self.attachments, path, temporary=temporary)
        if isinstance(staged, str):
            return self._refuse(staged)
        if self.attachments is None:
            return self._refuse(self.session.tr("photos.err.other", reason="no storage"))
        stored = store_photo(
            self.session,
            self.attachments,
            self.record_id,
            staged,
            self.location(),
            self.collection,
        )
        if isinstance(stored, str):
            return self._refuse(stored)
        self.error = ""
        self.refresh()
        return True

    def retry(self, attachment_id: str) -> None:
        if self.attachments is None:
            return
        self.attachments.retry(attachment_id)
        self.message = self.session.tr("photos.retried")
        self.refresh()

    def _refuse(self, message: str) -> bool:
        self.error = message
        self.notify()
        return False
