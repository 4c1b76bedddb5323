"""The device side of attachments: capture, encrypted storage, per-attachment state.

``Attachments(store)`` keeps one row per attachment in the store's SQLite file (table
``attachments``: ids and state in clear, everything else — kind, MIME type, name, size,
SHA-256, capture time, location, errors — sealed like a record) and the bytes as sealed
chunk files beside it (:mod:`._vault`). Adding a photo works offline and never touches
the record it belongs to: the record syncs through :class:`SyncClient`, the bytes through
:class:`AttachmentUploader`, each at its own pace.
"""

from __future__ import annotations

import builtins
import hashlib
import math
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from .._store import Store
from ._errors import AttachmentError, AttachmentNotFound, AttachmentNotLocal, AttachmentTooLarge
from ._models import KINDS, AttachmentChanged, AttachmentInfo, AttachmentState
from ._vault import ChunkVault

KIB = 1024
MIB = 1024 * KIB
DEFAULT_MAX_BYTES = 50 * MIB
DEFAULT_CHUNK_BYTES = 256 * KIB

_OWNER_KEY = "attachments_user"

Source = bytes | bytearray | memoryview | str | os.PathLike[str]

_TABLE = """
CREATE TABLE IF NOT EXISTS attachments (
    id TEXT PRIMARY KEY,
    collection TEXT NOT NULL,
    record_id TEXT NOT NULL,
    state TEXT NOT NULL,
    chunk_size INTEGER NOT NULL,
    uploaded_bytes INTEGER NOT NULL DEFAULT 0,
    registered INTEGER NOT NULL DEFAULT 0,
    local INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL,
    payload BLOB NOT NULL
)
"""
_INDEX = "CREATE INDEX IF NOT EXISTS ix_attachments_record ON attachments(record_id)"
_COLUMNS = "id, collection, record_id, state, chunk_size, uploaded_bytes, registered, local, created_at, payload"


def attachment_aad(attachment_id: str, collection: str, record_id: str) -> bytes:
    return f"a\0{attachment_id}\0{collection}\0{record_id}".encode()


def chunk_count(size: int, chunk_size: int) -> int:
    return max(1, math.ceil(size / chunk_size))


def default_directory(store: Store) -> Path:
    path = getattr(store.storage, "path", None)
    if path is None:
        return Path(tempfile.mkdtemp(prefix="fieldsync-attachments-"))
    return Path(f"{path}.attachments")


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
        self.max_bytes = max_bytes
        self.chunk_size = chunk_size
        with store.locked():
            store.storage.execute(_TABLE)
            store.storage.execute(_INDEX)
        self.vault = ChunkVault(
            store, Path(directory) if directory is not None else default_directory(store)
        )
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
        if collection not in self.store.schema or collection.startswith("_"):
            raise AttachmentError(f"the schema has no collection {collection!r}")
        if location is not None and not {"lat", "lon"} <= set(location):
            raise AttachmentError("location needs lat and lon")
        if isinstance(source, bytes | bytearray | memoryview):
            size = len(source)
            if size > self.max_bytes:
                raise AttachmentTooLarge(size, self.max_bytes)
            pieces: Iterator[bytes] = _slices(bytes(source), self.chunk_size)
            handle: BinaryIO | None = None
        else:
            path = Path(source)
            size = path.stat().st_size
            if size > self.max_bytes:
                raise AttachmentTooLarge(size, self.max_bytes)
            handle = open(path, "rb")  # noqa: SIM115 - closed below
            pieces = _read_pieces(handle, self.chunk_size)
            name = name or path.name
        attachment_id = str(uuid.uuid4())
        digest = hashlib.sha256()
        total = 0
        try:
            index = 0
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
            "sha256": digest.hexdigest(),
            "captured_at": captured,
            "location": dict(location) if location else None,
            "server_status": None,
            "error": None,
        }
        now = self.store.clock.time()
        with self.store.locked(), self.store.storage.transaction() as conn:
            conn.execute(
                f"INSERT INTO attachments ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, 0, 0, 1, ?, ?)",
                (
                    attachment_id,
                    collection,
                    record_id,
                    AttachmentState.QUEUED.value,
                    self.chunk_size,
                    now,
                    self._seal(attachment_id, collection, record_id, body),
                ),
            )
        info = self.status(attachment_id)
        self._emit(info)
        return info

    # -- reading ---------------------------------------------------------------------------
    def status(self, attachment_id: str) -> AttachmentInfo:
        """The attachment's metadata and upload state (raises :class:`AttachmentNotFound`)."""
        rows = self.store.storage.execute(
            f"SELECT {_COLUMNS} FROM attachments WHERE id = ?", (attachment_id,)
        )
        if not rows:
            raise AttachmentNotFound(f"no attachment {attachment_id!r} on this device")
        return self._info(rows[0])

    get = status

    def list(self, record_id: str, collection: str | None = None) -> list[AttachmentInfo]:
        """The record's attachments, oldest first."""
        self._check_user()
        sql = f"SELECT {_COLUMNS} FROM attachments WHERE record_id = ?"
        params: tuple[Any, ...] = (record_id,)
        if collection is not None:
            sql += " AND collection = ?"
            params += (collection,)
        return [
            self._info(r) for r in self.store.storage.execute(sql + " ORDER BY created_at", params)
        ]

    def pending(self) -> builtins.list[AttachmentInfo]:
        """Attachments still to upload (queued or uploading), oldest first."""
        self._check_user()
        rows = self.store.storage.execute(
            f"SELECT {_COLUMNS} FROM attachments WHERE state IN (?, ?) ORDER BY created_at",
            (AttachmentState.QUEUED.value, AttachmentState.UPLOADING.value),
        )
        return [self._info(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """``{state: n}`` over every attachment on the device (for a status badge)."""
        return {
            str(s): int(n)
            for s, n in self.store.storage.execute(
                "SELECT state, COUNT(*) FROM attachments GROUP BY state"
            )
        }

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
            from .._errors import TamperedData

            raise TamperedData("the attachment does not match its SHA-256")
        return data

    def chunks(self, info: AttachmentInfo) -> Iterator[bytes]:
        chunk_size = self._chunk_size(info.id)
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
        with self.store.locked(), self.store.storage.transaction() as conn:
            conn.execute("DELETE FROM attachments WHERE id = ?", (attachment_id,))
        self.vault.remove(attachment_id)

    def evict_local(self, attachment_id: str) -> None:
        """Free the space of an uploaded attachment; it can be fetched again on demand."""
        info = self.status(attachment_id)
        if info.state is not AttachmentState.COMPLETE:
            raise AttachmentError("only uploaded attachments can be evicted")
        self.update(attachment_id, local=False)
        self.vault.remove(attachment_id)

    def wipe(self) -> None:
        """Delete every chunk file (call with :meth:`Store.wipe`; the key dies with it)."""
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
        with self.store.locked(), self.store.storage.transaction() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM attachments WHERE id = ?", (attachment_id,)
            ).fetchall()
            if not rows:
                raise AttachmentNotFound(f"no attachment {attachment_id!r} on this device")
            row = rows[0]
            _, collection, record_id, old_state, _, old_uploaded, old_reg, old_local, _, payload = (
                row
            )
            body = self.store.unseal(payload, attachment_aad(attachment_id, collection, record_id))
            if body_changes:
                body.update(body_changes)
                payload = self._seal(attachment_id, collection, record_id, body)
            conn.execute(
                "UPDATE attachments SET state = ?, uploaded_bytes = ?, registered = ?, "
                "local = ?, payload = ? WHERE id = ?",
                (
                    (state or AttachmentState(old_state)).value,
                    old_uploaded if uploaded_bytes is None else uploaded_bytes,
                    old_reg if registered is None else int(registered),
                    old_local if local is None else int(local),
                    payload,
                    attachment_id,
                ),
            )
        info = self.status(attachment_id)
        self._emit(info)
        return info

    def is_registered(self, attachment_id: str) -> bool:
        rows = self.store.storage.execute(
            "SELECT registered FROM attachments WHERE id = ?", (attachment_id,)
        )
        return bool(rows and rows[0][0])

    def _chunk_size(self, attachment_id: str) -> int:
        rows = self.store.storage.execute(
            "SELECT chunk_size FROM attachments WHERE id = ?", (attachment_id,)
        )
        if not rows:
            raise AttachmentNotFound(f"no attachment {attachment_id!r} on this device")
        return int(rows[0][0])

    def chunk_size_of(self, attachment_id: str) -> int:
        return self._chunk_size(attachment_id)

    def remember_remote(self, server: dict[str, Any]) -> AttachmentInfo:
        """Record an attachment heard of from the server (another device's photo)."""
        aid = str(server["id"])
        existing = self.store.storage.execute("SELECT id FROM attachments WHERE id = ?", (aid,))
        if existing:
            info = self.status(aid)
            if info.server_status != server["status"]:
                state = info.state
                if info.local and server["status"] == "complete":
                    state = AttachmentState.COMPLETE
                return self.update(
                    aid,
                    state=state,
                    uploaded_bytes=int(server["received_bytes"]),
                    server_status=server["status"],
                )
            return info
        body = {
            "kind": server["kind"],
            "mime": server["mime"],
            "name": server.get("name"),
            "size": int(server["size"]),
            "sha256": server["sha256"],
            "captured_at": server.get("captured_at"),
            "location": server.get("location"),
            "server_status": server["status"],
            "error": None,
        }
        with self.store.locked(), self.store.storage.transaction() as conn:
            conn.execute(
                f"INSERT INTO attachments ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 1, 0, ?, ?)",
                (
                    aid,
                    server["collection"],
                    server["record_id"],
                    AttachmentState.REMOTE.value,
                    int(server["chunk_size"]),
                    int(server["received_bytes"]),
                    self.store.clock.time(),
                    self._seal(aid, server["collection"], server["record_id"], body),
                ),
            )
        return self.status(aid)

    # -- internals ---------------------------------------------------------------------------
    def _seal(self, attachment_id: str, collection: str, record_id: str, body: Any) -> bytes:
        return self.store.seal(body, attachment_aad(attachment_id, collection, record_id))

    def _info(self, row: Iterable[Any]) -> AttachmentInfo:
        aid, collection, record_id, state, _chunk, uploaded, _reg, local, created, payload = row
        body = self.store.unseal(payload, attachment_aad(aid, collection, record_id))
        return AttachmentInfo(
            id=aid,
            collection=collection,
            record_id=record_id,
            kind=body["kind"],
            mime=body["mime"],
            size=int(body["size"]),
            sha256=body["sha256"],
            state=AttachmentState(state),
            uploaded_bytes=int(uploaded),
            local=bool(local),
            name=body.get("name"),
            captured_at=body.get("captured_at"),
            location=body.get("location"),
            server_status=body.get("server_status"),
            error=body.get("error"),
            created_at=float(created),
        )

    def _emit(self, info: AttachmentInfo) -> None:
        self.store.emit(
            AttachmentChanged(info.id, info.record_id, info.state, info.uploaded_bytes, info.size)
        )

    def _check_user(self) -> None:
        """Attachments belong to the user signed in on the store. When another user signs
        in (``SyncClient.login`` then drops the previous user's records), their photos
        go too: rows and chunk files. Attachments captured before any sign-in are
        adopted by the first user."""
        tokens = self.store.secret_get("tokens")
        user = (tokens or {}).get("user", {}).get("id") if isinstance(tokens, dict) else None
        if user is None:
            return
        owner = self.store.secret_get(_OWNER_KEY)
        if owner == user:
            return
        if owner is not None:
            with self.store.locked(), self.store.storage.transaction() as conn:
                conn.execute("DELETE FROM attachments")
            for folder in self.vault.ids():
                self.vault.remove(folder)
        self.store.secret_set(_OWNER_KEY, user)

    def _sweep_orphans(self) -> None:
        """Chunk folders without a row are leftovers of an ``add`` cut short: delete them."""
        known = {r[0] for r in self.store.storage.execute("SELECT id FROM attachments")}
        for orphan in self.vault.ids() - known:
            self.vault.remove(orphan)


def _slices(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _read_pieces(handle: BinaryIO, size: int) -> Iterator[bytes]:
    while piece := handle.read(size):
        yield piece
