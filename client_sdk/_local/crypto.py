"""Envelope encryption of the local store.

* A random 256-bit **data key** encrypts every payload with AES-256-GCM. Each ciphertext
  is ``nonce (12 bytes) || ciphertext+tag``; its associated data (AAD) is the identity of
  the row it lives in (table, collection, record or mutation id), so a ciphertext copied
  into another row fails authentication instead of silently showing the wrong customer.
* The data key is stored only **wrapped** (AES-GCM) under a key-encryption key that a
  :class:`KeyProvider` supplies — by default derived from the user's passphrase with
  Argon2id (parameters and salt stored beside the wrapped key). Changing the passphrase
  re-wraps the data key; nothing else is re-encrypted.
* A wrong passphrase shows up as a failed unwrap (:class:`WrongPassphrase`); a failed
  payload decryption as :class:`TamperedData`.

The key provider is the seam for platform keystores (Android Keystore, iOS Keychain):
anything that turns ``(salt, params)`` into 32 stable bytes.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .._errors import TamperedData, WrongPassphrase

KEY_BYTES = 32
NONCE_BYTES = 12
_WRAP_AAD = b"fieldsync/data-key/v1"


@dataclass(frozen=True, slots=True)
class KdfParams:
    """Argon2id cost parameters (stored with the store so later opens derive the same key).

    The defaults follow RFC 9106's second recommended option scaled for phones
    (64 MiB, 3 passes). Tests pass cheap parameters to keep the suite fast.
    """

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 2

    def to_json(self) -> dict[str, Any]:
        return {"alg": "argon2id", **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KdfParams:
        return cls(
            time_cost=int(data["time_cost"]),
            memory_kib=int(data["memory_kib"]),
            parallelism=int(data["parallelism"]),
        )


#: Cheap parameters for tests and demos — never for real data.
FAST_KDF = KdfParams(time_cost=1, memory_kib=1024, parallelism=1)


class KeyProvider(Protocol):
    """Supplies the key-encryption key that wraps a store's data key."""

    def wrapping_key(self, salt: bytes, params: KdfParams) -> bytes:
        """32 bytes, the same for the same ``salt`` and ``params``."""
        ...


class PassphraseKeyProvider:
    """Derives the key-encryption key from a passphrase with Argon2id."""

    __slots__ = ("_secret",)

    def __init__(self, passphrase: str) -> None:
        if not passphrase:
            raise ValueError("a passphrase is required")
        self._secret = passphrase.encode("utf-8")

    def wrapping_key(self, salt: bytes, params: KdfParams) -> bytes:
        return hash_secret_raw(
            self._secret,
            salt,
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
            hash_len=KEY_BYTES,
            type=Type.ID,
        )

    def __repr__(self) -> str:  # never show the secret
        return "PassphraseKeyProvider(***)"


def as_key_provider(passphrase: str | KeyProvider) -> KeyProvider:
    return PassphraseKeyProvider(passphrase) if isinstance(passphrase, str) else passphrase


def new_salt() -> bytes:
    return os.urandom(16)


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def wrap_key(data_key: bytes, kek: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(kek).encrypt(nonce, data_key, _WRAP_AAD)


def unwrap_key(wrapped: bytes, kek: bytes) -> bytes:
    try:
        return AESGCM(kek).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _WRAP_AAD)
    except (InvalidTag, ValueError):
        raise WrongPassphrase("the passphrase does not open this store") from None


class Cipher(Protocol):
    """Seals payloads bound to their row identity (``aad``)."""

    encrypted: bool

    def seal(self, plaintext: bytes, aad: bytes) -> bytes: ...

    def open(self, blob: bytes, aad: bytes) -> bytes: ...


class AesGcmCipher:
    """AES-256-GCM with a random 96-bit nonce per ciphertext."""

    encrypted = True
    __slots__ = ("_aead",)

    def __init__(self, data_key: bytes) -> None:
        if len(data_key) != KEY_BYTES:
            raise ValueError("the data key must be 32 bytes")
        self._aead = AESGCM(data_key)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except (InvalidTag, ValueError):
            raise TamperedData("a stored record failed authentication") from None

    def __repr__(self) -> str:
        return "AesGcmCipher(***)"


class PlaintextCipher:
    """No encryption: only for measuring encryption overhead and for throwaway tests."""

    encrypted = False

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        return plaintext

    def open(self, blob: bytes, aad: bytes) -> bytes:
        return bytes(blob)
