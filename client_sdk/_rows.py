"""Row formats of the store: what a sealed payload holds and how it is bound to its row.

Every payload is JSON sealed with AES-GCM whose associated data names the row (table
letter, ids), so a ciphertext is only ever readable in the row it was written for. A
record's *view* is its server copy with its pending outbox entries replayed on top.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sync_protocol import SchemaRegistry

from ._models import Record

#: The system collection the server uses for conflicts awaiting a person.
CONFLICTS = "_conflicts"

SearchKeys = Callable[[str, Mapping[str, Any]], Iterable[str]]


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


@dataclass(slots=True)
class Pending:
    """One outbox entry, decrypted."""

    seq: int
    id: str
    collection: str
    record_id: str
    op: str
    fields: dict[str, Any]
    base: dict[str, Any] | None
    base_version: int | None
    hlc: str
    sent: bool
    resolves: list[str] | None
    created_at: float


@dataclass(slots=True)
class ServerCopy:
    fields: dict[str, Any]
    version: int | None
    deleted: bool


def replay(server: ServerCopy | None, pending: Iterable[Pending]) -> dict[str, Any] | None:
    """The view of one record: the server copy with pending writes applied in order."""
    if server is not None and (server.deleted and not server.fields):
        view: dict[str, Any] | None = None
    else:
        view = dict(server.fields) if server is not None else None
    for p in pending:
        view = None if p.op == "delete" else {**(view or {}), **p.fields}
    return view


NON_DIGITS = re.compile(r"\D+")


def search_plan(schema: SchemaRegistry, collection: str) -> list[tuple[str, bool]]:
    """(field, is_phone) for each searched field of ``collection``."""
    entity = schema.get(collection)
    if entity is None:
        return []
    return [
        (name, name in entity.fields and entity.fields[name].type.value == "phone")
        for name in entity.search_fields
    ]


class CollectionCache:
    """Decrypted views of one collection plus lazily built search text."""

    __slots__ = ("haystack", "records")

    def __init__(self) -> None:
        self.records: dict[str, Record] = {}
        self.haystack: dict[str, str] | None = None
