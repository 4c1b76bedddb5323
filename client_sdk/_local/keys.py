"""Opening a local store: the data key, wrapped under a key from the passphrase.

A new store gets a random data key, wrapped (AES-GCM) under a key-encryption key the
:class:`~.crypto.KeyProvider` derives (Argon2id of the passphrase by default), plus a
device id — written together with the tables in one transaction, so a process killed
during the first open leaves an empty file rather than a half-made store. Opening an
existing store unwraps the data key (:class:`~client_sdk.WrongPassphrase` when it does
not unwrap). Changing the passphrase re-wraps the data key; nothing else is rewritten.
"""

from __future__ import annotations

import json
import os

from .._errors import StoreCorrupted
from .._ids import new_device_id
from .base import LocalStore
from .crypto import (
    AesGcmCipher,
    Cipher,
    KdfParams,
    KeyProvider,
    PlaintextCipher,
    new_data_key,
    new_salt,
    unwrap_key,
    wrap_key,
)
from .memory import MemoryLocalStore
from .sqlite import SqliteLocalStore

_KEY_MATERIAL = ("kdf", "salt", "wrapped_key")


def open_local(
    path: str | os.PathLike[str] | None,
    provider: KeyProvider,
    *,
    kdf: KdfParams,
    encrypted: bool = True,
    check_integrity: bool = True,
    memory: bool = False,
) -> tuple[LocalStore, str]:
    """Open (or create) the store at ``path`` and unlock it; returns it and the device id.

    ``memory=True`` (or ``path=None``) keeps everything in :class:`MemoryLocalStore`.
    """
    local: LocalStore = (
        MemoryLocalStore()
        if memory or path is None
        else SqliteLocalStore(path, check_integrity=check_integrity)
    )
    try:
        if local.is_new():
            cipher, device_id = _initialise(local, provider, kdf, encrypted)
        else:
            cipher, device_id = _unlock(local, provider)
    except BaseException:
        local.close()
        raise
    local.use_cipher(cipher)
    return local, device_id


def _initialise(
    local: LocalStore, provider: KeyProvider, params: KdfParams, encrypted: bool
) -> tuple[Cipher, str]:
    device_id = new_device_id()
    data_key = new_data_key()
    salt = new_salt()
    wrapped = wrap_key(data_key, provider.wrapping_key(salt, params))
    with local.transaction():
        local.create()
        local.meta.set("encrypted", b"1" if encrypted else b"0")
        local.meta.set("kdf", json.dumps(params.to_json()).encode())
        local.meta.set("salt", salt)
        local.meta.set("wrapped_key", wrapped)
        local.meta.set("device_id", device_id.encode())
    cipher: Cipher = AesGcmCipher(data_key) if encrypted else PlaintextCipher()
    return cipher, device_id


def _params(local: LocalStore) -> tuple[KdfParams, bytes, bytes]:
    kdf, salt, wrapped = (local.meta.get(k) for k in _KEY_MATERIAL)
    if kdf is None or salt is None or wrapped is None:
        raise StoreCorrupted("the store's key material is missing")
    try:
        params = KdfParams.from_json(json.loads(kdf))
    except (ValueError, KeyError, TypeError):
        raise StoreCorrupted("the store's key parameters are unreadable") from None
    return params, salt, wrapped


def _unlock(local: LocalStore, provider: KeyProvider) -> tuple[Cipher, str]:
    device = local.meta.get("device_id")
    if device is None:
        raise StoreCorrupted("the store's key material is missing")
    params, salt, wrapped = _params(local)
    data_key = unwrap_key(wrapped, provider.wrapping_key(salt, params))
    if local.meta.get("encrypted") == b"0":
        return PlaintextCipher(), device.decode()
    return AesGcmCipher(data_key), device.decode()


def change_passphrase(local: LocalStore, old: KeyProvider, new: KeyProvider) -> None:
    """Re-wrap the data key under ``new`` (raises ``WrongPassphrase`` for a wrong ``old``)."""
    params, salt, wrapped = _params(local)
    data_key = unwrap_key(wrapped, old.wrapping_key(salt, params))
    fresh_salt = new_salt()
    rewrapped = wrap_key(data_key, new.wrapping_key(fresh_salt, params))
    with local.transaction():
        local.meta.set("salt", fresh_salt)
        local.meta.set("wrapped_key", rewrapped)
