"""How a record row is held in memory during a push, and its JSON encodings.

``data`` is the canonical JSON of the fields — sorted keys, compact separators, UTF-8
(``ensure_ascii=False``) — so the same fields always give the same bytes, and a pull
can copy it into a page without parsing. ``clocks`` maps each field to
``[hlc, version]``; the key ``_deleted`` holds the deletion clock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from json.encoder import encode_basestring_ascii as _quote
from typing import Any

from pydantic_core import to_json

from sync_protocol import DELETED_FIELD, FieldClock, StoredRecord

CONFLICTS = "_conflicts"


def canonical_json(value: Any) -> str:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``.

    An object of plain values (:func:`plain_sorted`: a record's fields, as phones send
    them) is written by pydantic-core's encoder from a key-sorted copy — the same text,
    ~4x cheaper; ``tests/server/test_push_encoding.py`` holds the two equal."""
    if value.__class__ is dict:
        ordered = plain_sorted(value)
        if ordered is not None:
            try:
                return to_json(ordered).decode()
            except Exception:  # a lone surrogate: json.dumps writes it, pydantic-core refuses
                pass
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def plain_sorted(value: dict[Any, Any]) -> dict[str, Any] | None:
    """``value`` with its keys in sorted order when every key is text and every value is
    plain — text, an integer, a boolean, null or a list of text: what pydantic-core's
    JSON encoder writes exactly as ``json.dumps`` does (floats differ: ``1e-7`` /
    ``1e-07``; no nested object) — else ``None``."""
    for k, v in value.items():  # called for every field of every record
        t = v.__class__
        if k.__class__ is not str:
            return None
        if t is str or t is int or t is bool or v is None:
            continue
        if t is not list or not all(x.__class__ is str for x in v):
            return None
    return {k: value[k] for k in sorted(value)}


def encode_clocks(record: StoredRecord) -> str:
    """``{field: [hlc, version]}`` with sorted keys, compact, ASCII — for every record.

    A record created by one write has one clock object for every field (the push shares
    it): its encoding is put together from the field names and that one clock instead of
    a list per field (``tests/server/test_push_work.py`` holds the two equal)."""
    clocks_in = record.clocks
    if record.deleted_clock is None and clocks_in:
        first = next(iter(clocks_in.values()))
        if all(c is first for c in clocks_in.values()):
            tail = f":[{_quote(first.hlc)},{int(first.version)}]"
            return "{" + (tail + ",").join(_quoted_names(tuple(clocks_in))) + tail + "}"
    clocks: dict[str, list[Any]] = {n: [c.hlc, c.version] for n, c in clocks_in.items()}
    if record.deleted_clock is not None:
        clocks[DELETED_FIELD] = [record.deleted_clock.hlc, record.deleted_clock.version]
    return json.dumps(clocks, sort_keys=True, separators=(",", ":"))


@lru_cache(maxsize=1024)
def _quoted_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` sorted and JSON-quoted: the field names of one kind of record arrive
    in the same order push after push (worked out once per order)."""
    return tuple(_quote(n) for n in sorted(names))


def decode_record(data: str, clocks: str, deleted: bool) -> StoredRecord:
    raw = json.loads(clocks) if clocks else {}
    deleted_raw = raw.pop(DELETED_FIELD, None)
    return StoredRecord(
        fields=json.loads(data) if data else {},
        clocks={n: FieldClock(c[0], int(c[1])) for n, c in raw.items()},
        deleted=bool(deleted),
        deleted_clock=FieldClock(deleted_raw[0], int(deleted_raw[1])) if deleted_raw else None,
    )


@dataclass(slots=True)
class RowState:
    """One record as a push sees it: the stored row plus what the batch changed."""

    pk: int | None
    collection: str
    record_id: str
    owner_id: str | None
    customer_id: str | None
    version: int
    record: StoredRecord
    created_at_ms: int
    #: The row must be written back (inserted when ``pk`` is None, else updated).
    dirty: bool = False
    #: ``version`` as read from the database: the update applies only if the row is
    #: still at it (a concurrent push on PostgreSQL changed it otherwise).
    stored_version: int = 0
    #: The record as read from the database (``None``: new to the server) — never
    #: changed in place (a write replaces ``record``): what the derived tables hold for
    #: it, so they can be updated by difference (:func:`server.crm.indexing.index_keys`).
    stored: StoredRecord | None = None

    @property
    def exists(self) -> bool:
        """Known to the server and not deleted."""
        return not self.record.deleted

    def encoded(self) -> tuple[str, str]:
        """(data, clocks) as stored."""
        return canonical_json(self.record.fields), encode_clocks(self.record)

    def values(self, now_ms: int, user_id: str | None) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "record_id": self.record_id,
            "owner_id": self.owner_id,
            "customer_id": self.customer_id,
            "version": self.version,
            "deleted": self.record.deleted,
            "data": canonical_json(self.record.fields),
            "clocks": encode_clocks(self.record),
            "created_at_ms": self.created_at_ms,
            "updated_at_ms": now_ms,
            "updated_by": user_id,
        }
