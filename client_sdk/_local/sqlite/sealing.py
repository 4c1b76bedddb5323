"""How payloads are sealed in the file: JSON under AES-256-GCM, bound to their row.

Every payload is JSON sealed with the store's cipher (:mod:`..crypto`) whose associated
data names the row it lives in (table letter, ids), so a ciphertext copied into another
row fails authentication (:class:`~client_sdk.TamperedData`) instead of silently showing
the wrong customer. Ids, collection names, versions and HLCs are the only clear text.
"""

from __future__ import annotations

import json
from typing import Any

from ..._errors import StoreClosed
from ..crypto import Cipher

#: One encoder reused for every payload (``json.dumps`` with options builds a new one
#: per call, which costs more than the encoding of a small record).
ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(value: Any) -> bytes:
    return ENCODER.encode(value).encode("utf-8")


def record_aad(collection: str, record_id: str) -> bytes:
    return f"r\0{collection}\0{record_id}".encode()


def outbox_aad(mutation_id: str, collection: str, record_id: str) -> bytes:
    return f"o\0{mutation_id}\0{collection}\0{record_id}".encode()


def dead_aad(mutation_id: str, collection: str, record_id: str) -> bytes:
    return f"d\0{mutation_id}\0{collection}\0{record_id}".encode()


def meta_aad(key: str) -> bytes:
    return f"m\0{key}".encode()


def search_aad(collection: str, seg: int) -> bytes:
    return f"i\0{collection}\0{seg}".encode()


def attachment_aad(attachment_id: str, collection: str, record_id: str) -> bytes:
    return f"a\0{attachment_id}\0{collection}\0{record_id}".encode()


class Sealer:
    """The store's cipher, set once the data key is unwrapped."""

    __slots__ = ("cipher",)

    def __init__(self) -> None:
        self.cipher: Cipher | None = None

    def _cipher(self) -> Cipher:
        if self.cipher is None:
            raise StoreClosed("the store is locked: its key is not loaded")
        return self.cipher

    def seal(self, value: Any, aad: bytes) -> bytes:
        return self._cipher().seal(dumps(value), aad)

    def open(self, blob: bytes, aad: bytes) -> Any:
        return json.loads(self._cipher().open(bytes(blob), aad))
