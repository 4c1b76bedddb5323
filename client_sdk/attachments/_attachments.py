"""The device side of attachments: capture, encrypted storage, per-attachment state.

``Attachments(store)`` keeps one row per attachment in the store's local store (table
``attachments``: ids and state in clear, everything else — kind, MIME type, name, size,
SHA-256, capture time, location, errors — sealed like a record) and the bytes as sealed
chunk files beside it (:mod:`client_sdk._local.vault`). Adding a photo works offline and
never touches the record it belongs to: the record syncs through :class:`SyncClient`,
the bytes through :class:`AttachmentUploader`, each at its own pace.
"""

from __future__ import annotations

import builtins
import hashlib
import math
import os
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from sync_protocol.attachments import AttachmentOut

from .._core import StoreCore
from .._errors import TamperedData
from .._local.vault import ChunkVault
from .._rows import AttachmentRow
from .._store import Store
from ._errors import AttachmentError, AttachmentNotFound, AttachmentNotLocal, AttachmentTooLarge
from ._models import KINDS, AttachmentChanged, AttachmentInfo, AttachmentState

KIB = 1024
MIB = 1024 * KIB
DEFAULT_MAX_BYTES = 50 * MIB
DEFAULT_CHUNK_BYTES = 256 * KIB

_OWNER_KEY = "attachments_user"

Source = bytes | bytearray | memoryview | str | os.PathLike[str]


def chunk_count(size: int, chunk_size: int) -> int:
    return max(1, math.ceil(size / chunk_size))


class Attachments:
    """Photos, files and signatures attached to records, kept encrypted on the device.

    ``max_bytes`` is enforced before anything is stored (:class:`AttachmentTooLarge`);
    ``chunk_size`` is the unit of encryption and of upload (256 KiB: small enough to
    resend cheaply after a dropped connection, large enough to keep requests few).
    """

    def __init__(
        self,
        store: Store,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        chunk_size: int = DEFAULT_CHUNK_BYTES,
        directory: str | os.PathLike[str] | None = None,
    ) -> None:
        if chunk_size < 1 or max_bytes < 0:
            raise ValueError("chunk_size must be positive and max_bytes non-negative")
        self.store = store
        self._core: StoreCore = store._core
        self._table = self._core.local.attachments
        self.max_bytes = max_bytes
        self.chunk_size = chunk_size
        folder = Path(directory) if directory is not None else self._core.default_vault_dir()
        if folder is None:
            folder = Path(tempfile.mkdtemp(prefix="fieldsync-attachments-"))
        with self._core.lock:
            self._core.check_open()
            self._core.vault_dirs.add(folder)
            self.vault = ChunkVault(self._core.local, folder)
        self._sweep_orphans()
        self._check_user()

    # -- capture ---------------------------------------------------------------------------
    def add(
        self,
        collection: str,
        record_id: str,
        source: Source,
        kind: str = "photo",
        mime: str = "image/jpeg",
        *,
        location: dict[str, float] | None = None,
        captured_at: datetime | str | None = None,
        name: str | None = None,
    ) -> AttachmentInfo:
        """Store ``source`` (bytes or a file path) encrypted and queue it for upload.

        Raises :class:`AttachmentTooLarge` (nothing stored) or :class:`AttachmentError`.
        A path is streamed chunk by chunk: a 50 MB video never sits in memory.
        """
        self._check_user()
        if kind not in KINDS:
            raise AttachmentError(f"kind must be one of {', '.join(KINDS)}")
        if collection not in self._core.schema or collection.startswith("_"):
            raise AttachmentError(f"the schema has no collection {collection!r}")
        if location is not None and not {"lat", "lon"} <= set(location):
            raise AttachmentError("location needs lat and lon")
        handle: BinaryIO | None = None
        if isinstance(source, bytes | bytearray | memoryview):
            size = len(source)
            pieces: Iterator[bytes] = _slices(bytes(source), self.chunk_size)
        else:
            path = Path(source)
            size = path.stat().st_size
            name = name or path.name
        if size > self.max_bytes:
            raise AttachmentTooLarge(size, self.max_bytes)
        if not isinstance(source, bytes | bytearray | memoryview):
            handle = open(path, "rb")  # noqa: SIM115 - closed below
            pieces = _read_pieces(handle, self.chunk_size)
        attachment_id = str(uuid.uuid4())
        try:
            total, digest = self._store_chunks(attachment_id, pieces)
        finally:
            if handle is not None:
                handle.close()
        if isinstance(captured_at, datetime):
            captured = captured_at.astimezone(UTC).isoformat()
        else:
            captured = captured_at or datetime.now(UTC).isoformat()
        body: dict[str, Any] = {
            "kind": kind,
            "mime": mime,
            "name": name,
            "size": total,
            "sha256": digest,
            "captured_at": captured,
            "location": dict(location) if location else None,
            "server_status": None,
            "error": None,
        }
        row = AttachmentRow(
            id=attachment_id,
            collection=collection,
            record_id=record_id,
            state=AttachmentState.QUEUED.value,
            chunk_size=self.chunk_size,
            created_at=self._core.clock.time(),
            body=body,
        )
        with self._core.lock:
            self._core.check_open()
            self._table.insert(row)
        info = _info(row)
        self._emit(info)
        return info

    def _store_chunks(self, attachment_id: str, pieces: Iterator[bytes]) -> tuple[int, str]:
        digest = hashlib.sha256()
        total = index = 0
        try:
            for piece in pieces:
                total += len(piece)
                if total > self.max_bytes:  # the file grew while we read it
                    raise AttachmentTooLarge(total, self.max_bytes)
                digest.update(piece)
                self.vault.write(attachment_id, index, piece)
                index += 1
            if index == 0:
                self.vault.write(attachment_id, 0, b"")
        except BaseException:
            self.vault.remove(attachment_id)
            raise
        return total, digest.hexdigest()

    # -- reading ---------------------------------------------------------------------------
    def status(self, attachment_id: str) -> AttachmentInfo:
        """The attachment's metadata and upload state (raises :class:`AttachmentNotFound`)."""
        return _info(self._row(attachment_id))

    get = status

    def _row(self, attachment_id: str) -> AttachmentRow:
        row = self._table.get(attachment_id)
        if row is None:
            raise AttachmentNotFound(f"no attachment {attachment_id!r} on this device")
        return row

    def list(self, record_id: str, collection: str | None = None) -> list[AttachmentInfo]:
        """The record's attachments, oldest first."""
        self._check_user()
        return [_info(r) for r in self._table.for_record(record_id, collection)]

    def pending(self) -> builtins.list[AttachmentInfo]:
        """Attachments still to upload (queued or uploading), oldest first."""
        self._check_user()
        states = (AttachmentState.QUEUED.value, AttachmentState.UPLOADING.value)
        return [_info(r) for r in self._table.in_states(states)]

    def counts(self) -> dict[str, int]:
        """``{state: n}`` over every attachment on the device (for a status badge)."""
        return self._table.counts()

    def open(self, attachment_id: str) -> bytes:
        """The plaintext bytes, verified against the SHA-256 (decrypted in memory only).

        Raises :class:`AttachmentNotLocal` when only the server has them, and
        :class:`client_sdk.TamperedData` when a chunk or the whole fails verification.
        """
        info = self.status(attachment_id)
        if not info.local:
            raise AttachmentNotLocal("the bytes are on the server: fetch them first")
        data = b"".join(self.chunks(info))
        if hashlib.sha256(data).hexdigest() != info.sha256:
            raise TamperedData("the attachment does not match its SHA-256")
        return data

    def chunks(self, info: AttachmentInfo) -> Iterator[bytes]:
        chunk_size = self.chunk_size_of(info.id)
        return self.vault.read_all(info.id, chunk_count(info.size, chunk_size))

    # -- lifecycle -------------------------------------------------------------------------
    def retry(self, attachment_id: str) -> AttachmentInfo:
        """Queue a ``failed`` attachment again (e.g. after the server's limit was raised)."""
        info = self.status(attachment_id)
        if info.state is AttachmentState.FAILED:
            self.update(attachment_id, state=AttachmentState.QUEUED, registered=False, error=None)
        return self.status(attachment_id)

    def discard(self, attachment_id: str) -> None:
        """Forget the attachment on this device (the server's copy, if any, stays)."""
        self.status(attachment_id)
        self._table.remove(attachment_id)
        self.vault.remove(attachment_id)

    def evict_local(self, attachment_id: str) -> None:
        """Free the space of an uploaded attachment; it can be fetched again on demand."""
        info = self.status(attachment_id)
        if info.state is not AttachmentState.COMPLETE:
            raise AttachmentError("only uploaded attachments can be evicted")
        self.update(attachment_id, local=False)
        self.vault.remove(attachment_id)

    def wipe(self) -> None:
        """Delete every chunk file (``Store.wipe`` does this too; the key dies with it)."""
        self.vault.wipe()

    # -- used by the uploader and downloader -----------------------------------------------
    def update(
        self,
        attachment_id: str,
        *,
        state: AttachmentState | None = None,
        uploaded_bytes: int | None = None,
        registered: bool | None = None,
        local: bool | None = None,
        **body_changes: Any,
    ) -> AttachmentInfo:
        with self._core.lock:
            self._core.check_open()
            row = self._table.update(
                attachment_id,
                state=state.value if state is not None else None,
                uploaded_bytes=uploaded_bytes,
                registered=registered,
                local=local,
                body=body_changes or None,
            )
        if row is None:
            raise AttachmentNotFound(f"no attachment {attachment_id!r} on this device")
        info = _info(row)
        self._emit(info)
        return info

    def is_registered(self, attachment_id: str) -> bool:
        row = self._table.get(attachment_id)
        return row is not None and row.registered

    def chunk_size_of(self, attachment_id: str) -> int:
        return self._row(attachment_id).chunk_size

    def remember_remote(self, server: AttachmentOut) -> AttachmentInfo:
        """Record an attachment heard of from the server (another device's photo)."""
        aid = server.id
        if self._table.get(aid) is not None:
            info = self.status(aid)
            if info.server_status != server.status:
                state = info.state
                if info.local and server.status == "complete":
                    state = AttachmentState.COMPLETE
                return self.update(
                    aid,
                    state=state,
                    uploaded_bytes=server.received_bytes,
                    server_status=server.status,
                )
            return info
        row = AttachmentRow(
            id=aid,
            collection=server.collection,
            record_id=server.record_id,
            state=AttachmentState.REMOTE.value,
            chunk_size=server.chunk_size,
            uploaded_bytes=server.received_bytes,
            registered=True,
            local=False,
            created_at=self._core.clock.time(),
            body={
                "kind": server.kind,
                "mime": server.mime,
                "name": server.name,
                "size": server.size,
                "sha256": server.sha256,
                "captured_at": server.captured_at,
                "location": server.location.model_dump(exclude_none=True)
                if server.location
                else None,
                "server_status": server.status,
                "error": None,
            },
        )
        with self._core.lock:
            self._table.insert(row)
        return _info(row)

    # -- internals ---------------------------------------------------------------------------
    def _emit(self, info: AttachmentInfo) -> None:
        self._core.emit(
            AttachmentChanged(info.id, info.record_id, info.state, info.uploaded_bytes, info.size)
        )

    def _check_user(self) -> None:
        """Attachments belong to the user signed in on the store. When another user signs
        in (``SyncClient.login`` then drops the previous user's records), their photos
        go too: rows and chunk files. Attachments captured before any sign-in are
        adopted by the first user."""
        meta = self._core.local.meta
        with self._core.lock:
            self._core.check_open()
            tokens = meta.get_secret("tokens")
            user = (tokens or {}).get("user", {}).get("id") if isinstance(tokens, dict) else None
            if user is None:
                return
            owner = meta.get_secret(_OWNER_KEY)
            if owner == user:
                return
            if owner is not None:
                self._table.clear()
                for folder in self.vault.ids():
                    self.vault.remove(folder)
            meta.set_secret(_OWNER_KEY, user)

    def _sweep_orphans(self) -> None:
        """Chunk folders without a row are leftovers of an ``add`` cut short: delete them."""
        for orphan in self.vault.ids() - self._table.ids():
            self.vault.remove(orphan)


def _info(row: AttachmentRow) -> AttachmentInfo:
    body = row.body
    return AttachmentInfo(
        id=row.id,
        collection=row.collection,
        record_id=row.record_id,
        kind=body["kind"],
        mime=body["mime"],
        size=int(body["size"]),
        sha256=body["sha256"],
        state=AttachmentState(row.state),
        uploaded_bytes=row.uploaded_bytes,
        local=row.local,
        name=body.get("name"),
        captured_at=body.get("captured_at"),
        location=body.get("location"),
        server_status=body.get("server_status"),
        error=body.get("error"),
        created_at=row.created_at,
    )


def _slices(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _read_pieces(handle: BinaryIO, size: int) -> Iterator[bytes]:
    while piece := handle.read(size):
        yield piece
