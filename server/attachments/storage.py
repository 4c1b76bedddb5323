"""Where attachment bytes live: a small content-addressed blob store with chunk staging.

A *blob* is a whole file named by the SHA-256 of its bytes (lower-case hex). Naming by
content is what deduplicates: the same photo uploaded by two devices is one blob, and a
registration whose digest is already stored completes without re-sending a byte.

An upload arrives in numbered *chunks* that are **staged** under the upload's id until
all are present; :meth:`BlobStorage.commit_staged` then streams them in order through
SHA-256 and publishes the blob only when the digest matches. Staged chunks survive
server restarts (on the local backend), so an upload resumes wherever it stopped.

The interface is shaped for object stores too: ``put``/``get``/``exists``/``delete``
map to PUT/GET/HEAD/DELETE of ``blobs/<digest>``; staging maps to a multipart upload
(``stage_chunk`` = upload part, ``staged_chunks`` = list parts, ``commit_staged`` =
complete + verify). Backends: :class:`~server.attachments.local.LocalBlobStorage`
(default) and :class:`MemoryBlobStorage` (tests); both pass
``tests/attachments/storage_conformance.py``.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Protocol

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9_\-.]{1,64}$")

#: Bytes per piece when a blob is streamed out.
STREAM_PIECE = 256 * 1024


class StorageError(Exception):
    """The storage backend cannot do what was asked."""


class DigestMismatch(StorageError):
    """The staged chunks do not hash to the digest the upload announced."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"content hashes to {actual}, expected {expected}")
        self.expected = expected
        self.actual = actual


class MissingChunks(StorageError):
    """``commit_staged`` was called before every chunk arrived."""

    def __init__(self, missing: list[int]) -> None:
        super().__init__(f"{len(missing)} chunk(s) missing")
        self.missing = missing


class BlobNotFound(StorageError, KeyError):
    """No blob with that digest."""


def check_digest(digest: str) -> str:
    if not _DIGEST.match(digest):
        raise ValueError("a digest is 64 lower-case hex characters (SHA-256)")
    return digest


def check_upload_id(upload_id: str) -> str:
    if not _UPLOAD_ID.match(upload_id):
        raise ValueError("an upload id is 1-64 characters of [A-Za-z0-9_-.]")
    return upload_id


def sha256_hex(pieces: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for piece in pieces:
        h.update(piece)
    return h.hexdigest()


class BlobStorage(Protocol):
    """Content-addressed blobs plus per-upload chunk staging. Thread-safe."""

    def exists(self, digest: str) -> bool: ...

    def size(self, digest: str) -> int | None:
        """The blob's size in bytes, ``None`` when it is not stored."""
        ...

    def put(self, digest: str, data: bytes) -> bool:
        """Store ``data`` under ``digest`` (verified); ``False`` if it was already there."""
        ...

    def get(self, digest: str) -> bytes:
        """The whole blob (raises :class:`BlobNotFound`)."""
        ...

    def stream(self, digest: str) -> Iterator[bytes]:
        """The blob in pieces, for responses that should not hold it in memory."""
        ...

    def delete(self, digest: str) -> bool:
        """Remove the blob; ``False`` if it was not there."""
        ...

    def digests(self) -> Iterator[str]:
        """Every stored blob's digest (maintenance and tests)."""
        ...

    def stage_chunk(self, upload_id: str, index: int, data: bytes) -> None:
        """Keep chunk ``index`` of ``upload_id`` (a re-sent chunk replaces the old one)."""
        ...

    def staged_chunks(self, upload_id: str) -> dict[int, int]:
        """``{index: size}`` of the chunks staged for ``upload_id``."""
        ...

    def commit_staged(self, upload_id: str, chunk_count: int, digest: str) -> bool:
        """Join chunks ``0..chunk_count-1``, verify ``digest``, publish the blob and drop
        the staging. Returns ``False`` when the blob already existed (deduplicated).
        Raises :class:`MissingChunks` or :class:`DigestMismatch` (staging is then
        discarded: the chunks cannot be trusted)."""
        ...

    def discard_staged(self, upload_id: str) -> None: ...


class MemoryBlobStorage:
    """Everything in dictionaries: for tests and throwaway servers."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._staged: dict[str, dict[int, bytes]] = {}
        self._lock = threading.Lock()

    def exists(self, digest: str) -> bool:
        with self._lock:
            return check_digest(digest) in self._blobs

    def size(self, digest: str) -> int | None:
        with self._lock:
            blob = self._blobs.get(check_digest(digest))
            return None if blob is None else len(blob)

    def put(self, digest: str, data: bytes) -> bool:
        check_digest(digest)
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise DigestMismatch(digest, actual)
        with self._lock:
            if digest in self._blobs:
                return False
            self._blobs[digest] = bytes(data)
            return True

    def get(self, digest: str) -> bytes:
        with self._lock:
            try:
                return self._blobs[check_digest(digest)]
            except KeyError:
                raise BlobNotFound(digest) from None

    def stream(self, digest: str) -> Iterator[bytes]:
        data = self.get(digest)
        for start in range(0, len(data), STREAM_PIECE):
            yield data[start : start + STREAM_PIECE]

    def delete(self, digest: str) -> bool:
        with self._lock:
            return self._blobs.pop(check_digest(digest), None) is not None

    def digests(self) -> Iterator[str]:
        with self._lock:
            return iter(sorted(self._blobs))

    def stage_chunk(self, upload_id: str, index: int, data: bytes) -> None:
        if index < 0:
            raise ValueError("chunk index must be >= 0")
        with self._lock:
            self._staged.setdefault(check_upload_id(upload_id), {})[index] = bytes(data)

    def staged_chunks(self, upload_id: str) -> dict[int, int]:
        with self._lock:
            chunks = self._staged.get(check_upload_id(upload_id), {})
            return {i: len(c) for i, c in chunks.items()}

    def commit_staged(self, upload_id: str, chunk_count: int, digest: str) -> bool:
        check_digest(digest)
        with self._lock:
            chunks = self._staged.get(check_upload_id(upload_id), {})
            missing = [i for i in range(chunk_count) if i not in chunks]
            if missing:
                raise MissingChunks(missing)
            data = b"".join(chunks[i] for i in range(chunk_count))
            self._staged.pop(upload_id, None)
            actual = hashlib.sha256(data).hexdigest()
            if actual != digest:
                raise DigestMismatch(digest, actual)
            if digest in self._blobs:
                return False
            self._blobs[digest] = data
            return True

    def discard_staged(self, upload_id: str) -> None:
        with self._lock:
            self._staged.pop(check_upload_id(upload_id), None)
