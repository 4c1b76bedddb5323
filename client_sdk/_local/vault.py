"""Encrypted chunk files: the attachment bytes on the device, outside the SQLite file.

Photos are large and the SQLite store is for records: keeping bytes beside it (under
``<store path>.attachments/<attachment id>/<index>.chunk``) keeps the database small and
its pages free of image data. Every chunk is sealed with AES-256-GCM under a key derived
with HKDF-SHA256 from a 256-bit *attachment root secret*; the associated data binds the
chunk to its attachment id and position, so chunks cannot be swapped or reordered
without failing authentication.

Where the root secret lives: sealed inside the store (``meta.set_secret``) under the
store's data key. The local store keeps its data key private, so the root is one
wrapping step below it rather than an HKDF of it; the effect is the same — without the
passphrase (or after :meth:`Store.wipe`, which destroys the key material) the chunk
files are unreadable noise — and a passphrase change re-encrypts nothing.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .._errors import TamperedData
from .base import LocalStore

NONCE_BYTES = 12
ROOT_SECRET_KEY = "attachments_root_v1"
_HKDF_INFO = b"fieldsync/attachments/chunk-key/v1"
_HKDF_SALT = b"fieldsync-attachments"


def chunk_aad(attachment_id: str, index: int) -> bytes:
    return f"fieldsync/attachment-chunk/v1\0{attachment_id}\0{index}".encode()


def derive_chunk_key(root: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO).derive(root)


def _root_secret(local: LocalStore) -> bytes:
    """The store's attachment root secret, created on first use."""
    with local.lock:
        encoded = local.meta.get_secret(ROOT_SECRET_KEY)
        if encoded is None:
            encoded = base64.b64encode(os.urandom(32)).decode()
            local.meta.set_secret(ROOT_SECRET_KEY, encoded)
        return base64.b64decode(encoded)


class ChunkVault:
    """Sealed chunk files of every attachment of one store."""

    def __init__(self, local: LocalStore, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(self.directory, 0o700)
        self._aead = AESGCM(derive_chunk_key(_root_secret(local)))

    def _folder(self, attachment_id: str) -> Path:
        if not attachment_id or "/" in attachment_id or attachment_id.startswith("."):
            raise ValueError("bad attachment id")
        return self.directory / attachment_id

    def write(self, attachment_id: str, index: int, plaintext: bytes, *, tag: str = "") -> None:
        """Seal and write one chunk (atomically: a crash leaves the old file or none)."""
        folder = self._folder(attachment_id)
        folder.mkdir(exist_ok=True)
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, plaintext, chunk_aad(attachment_id + tag, index))
        target = folder / f"{tag}{index:06d}.chunk"
        tmp = folder / f".{tag}{index:06d}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(sealed)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)

    def read(self, attachment_id: str, index: int, *, tag: str = "") -> bytes:
        path = self._folder(attachment_id) / f"{tag}{index:06d}.chunk"
        sealed = path.read_bytes()
        try:
            return self._aead.decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], chunk_aad(attachment_id + tag, index)
            )
        except (InvalidTag, ValueError):
            raise TamperedData("an attachment chunk failed authentication") from None

    def has(self, attachment_id: str, index: int, *, tag: str = "") -> bool:
        return (self._folder(attachment_id) / f"{tag}{index:06d}.chunk").is_file()

    def read_all(self, attachment_id: str, chunk_count: int) -> Iterator[bytes]:
        for index in range(chunk_count):
            yield self.read(attachment_id, index)

    def remove(self, attachment_id: str, *, tag: str | None = None) -> None:
        """Delete the attachment's chunks (only those with ``tag`` when given)."""
        folder = self._folder(attachment_id)
        if tag is None:
            shutil.rmtree(folder, ignore_errors=True)
            return
        for path in folder.glob(f"{tag}*.chunk"):
            path.unlink(missing_ok=True)

    def ids(self) -> set[str]:
        return {p.name for p in self.directory.iterdir() if p.is_dir()}

    def wipe(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
