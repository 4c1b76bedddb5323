"""The default blob backend: files in a directory (``FIELDSYNC_ATTACHMENTS_DIR``).

Layout::

    <root>/blobs/ab/abcdef…(64 hex)      one file per distinct content
    <root>/staging/<upload id>/000012     chunk 12 of an upload still in progress
    <root>/tmp/                           files being written (renamed into place)

Every file is written to ``tmp/``, fsynced and then renamed, so a crash never leaves a
half-written blob or chunk under its final name; a rename onto an existing blob is
harmless because the name *is* the content. Assembling an upload streams the chunks
through SHA-256 into a temporary file and publishes it only when the digest matches.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .storage import (
    STREAM_PIECE,
    BlobNotFound,
    DigestMismatch,
    MissingChunks,
    check_digest,
    check_upload_id,
)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class LocalBlobStorage:
    """Blobs and staged chunks as plain files under ``root``."""

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self._blobs = self.root / "blobs"
        self._staging = self.root / "staging"
        self._tmp = self.root / "tmp"
        # Folders are made on first write: building an app must not litter the disk.
        self._lock = threading.Lock()

    # -- paths -------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        check_digest(digest)
        return self._blobs / digest[:2] / digest

    def _chunk_dir(self, upload_id: str) -> Path:
        return self._staging / check_upload_id(upload_id)

    def _write_atomic(self, target: Path, pieces: Iterator[bytes] | list[bytes]) -> str:
        """Write ``pieces`` to ``target`` via a temporary file; returns their SHA-256."""
        target.parent.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp)
        try:
            with os.fdopen(fd, "wb") as fh:
                for piece in pieces:
                    digest.update(piece)
                    fh.write(piece)
                fh.flush()
                if self.fsync:
                    os.fsync(fh.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        if self.fsync:
            _fsync_dir(target.parent)
        return digest.hexdigest()

    # -- blobs -------------------------------------------------------------------------
    def exists(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def size(self, digest: str) -> int | None:
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def put(self, digest: str, data: bytes) -> bool:
        target = self.blob_path(digest)
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise DigestMismatch(digest, actual)
        if target.is_file():
            return False
        self._write_atomic(target, [data])
        return True

    def get(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def stream(self, digest: str) -> Iterator[bytes]:
        path = self.blob_path(digest)
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed when the generator ends
        except FileNotFoundError:
            raise BlobNotFound(digest) from None
        return self._pieces(fh)

    @staticmethod
    def _pieces(fh: BinaryIO) -> Iterator[bytes]:
        with fh:
            while piece := fh.read(STREAM_PIECE):
                yield piece

    def delete(self, digest: str) -> bool:
        try:
            self.blob_path(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    def digests(self) -> Iterator[str]:
        for path in sorted(self._blobs.glob("??/*")):
            if path.is_file():
                yield path.name

    # -- staging -------------------------------------------------------------------------
    def stage_chunk(self, upload_id: str, index: int, data: bytes) -> None:
        if index < 0:
            raise ValueError("chunk index must be >= 0")
        self._write_atomic(self._chunk_dir(upload_id) / f"{index:06d}", [data])

    def staged_chunks(self, upload_id: str) -> dict[int, int]:
        folder = self._chunk_dir(upload_id)
        out: dict[int, int] = {}
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(folder):
                if entry.name.isdigit():
                    with contextlib.suppress(FileNotFoundError):
                        out[int(entry.name)] = entry.stat().st_size
        return out

    def commit_staged(self, upload_id: str, chunk_count: int, digest: str) -> bool:
        target = self.blob_path(digest)
        folder = self._chunk_dir(upload_id)
        with self._lock:
            staged = self.staged_chunks(upload_id)
            missing = [i for i in range(chunk_count) if i not in staged]
            if missing:
                raise MissingChunks(missing)
            # Verify first, publish second: a wrong upload never appears under a digest.
            actual = _hash_files(folder, chunk_count)
            if actual != digest:
                self.discard_staged(upload_id)
                raise DigestMismatch(digest, actual)
            created = not target.is_file()
            if created:
                # Atomic rename of identical content: safe even if another process
                # publishes the same blob at the same moment.
                self._write_atomic(target, _read_chunks(folder, chunk_count))
            self.discard_staged(upload_id)
            return created

    def discard_staged(self, upload_id: str) -> None:
        shutil.rmtree(self._chunk_dir(upload_id), ignore_errors=True)


def _read_chunks(folder: Path, chunk_count: int) -> Iterator[bytes]:
    for index in range(chunk_count):
        with open(folder / f"{index:06d}", "rb") as fh:
            while piece := fh.read(STREAM_PIECE):
                yield piece


def _hash_files(folder: Path, chunk_count: int) -> str:
    digest = hashlib.sha256()
    for piece in _read_chunks(folder, chunk_count):
        digest.update(piece)
    return digest.hexdigest()
