"""Applying pulled pages to the store: upserts, deletes, evictions and resyncs.

Each page is applied in one transaction together with its checkpoint, so a crash
between pages resumes exactly after the last page applied and never skips or half-applies
one. Memory stays bounded by the page size: records go straight from the page into
SQLite (sealed), and into the in-memory cache only if the app has already loaded that
collection.

* ``delete`` of a record with pending local writes keeps the server copy's fields
  (flagged deleted) so the view still shows the record; the push decides by the entity's
  delete policy.
* ``evict`` (the record left this user's scope) removes it. Pending writes to it move to
  the dead-letter list with code ``forbidden`` and ``details.evicted``: the server would
  refuse them anyway, and nothing typed is dropped silently.
* ``resync_required`` starts a new *generation*: the checkpoint is reset, pulled rows are
  stamped with the new generation, and rows the full re-pull did not deliver are dropped
  at the end — pending writes are kept throughout.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ._models import Record
from ._outbox import current_gen, dead_letter
from ._rows import CONFLICTS, ENCODER
from ._store import Store

_UPSERT = (
    "INSERT INTO records(collection, id, version, deleted, gen, payload) VALUES (?, ?, ?, 0, ?, ?) "
    "ON CONFLICT(collection, id) DO UPDATE SET version = excluded.version, deleted = 0, "
    "gen = excluded.gen, payload = excluded.payload"
)

EVICTED_ERROR = {
    "code": "forbidden",
    "message": "the record left your scope (it was reassigned or access was removed)",
    "details": {"evicted": True},
}


class ChangeLike(Protocol):
    """What :func:`apply_page` reads of a change (``sync_protocol.Change`` fits)."""

    @property
    def collection(self) -> str: ...
    @property
    def record_id(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def op(self) -> Literal["upsert", "delete", "evict"]: ...
    @property
    def fields(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class PulledChange:
    collection: str
    record_id: str
    version: int
    op: Literal["upsert", "delete", "evict"]
    fields: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class PulledPage:
    changes: list[PulledChange]
    checkpoint: str
    has_more: bool
    server_hlc: str | None
    remaining: int | None


_OPS = frozenset({"upsert", "delete", "evict"})


def parse_page(content: bytes) -> PulledPage:
    """Decode a ``PullResponse`` body, checking every field the SDK relies on.

    A hand-written check instead of pydantic: on an initial sync this runs for every
    record, and building a model per change costs more than decrypting it.
    """
    try:
        body = json.loads(content)
        changes = []
        for ch in body["changes"]:
            collection, record_id, version, op = (
                ch["collection"],
                ch["record_id"],
                ch["version"],
                ch["op"],
            )
            fields = ch.get("fields")
            if (
                type(collection) is not str
                or type(record_id) is not str
                or type(version) is not int
                or op not in _OPS
                or (fields is not None and type(fields) is not dict)
                or (op == "upsert" and fields is None)
            ):
                raise ValueError(f"malformed change {record_id!r}")
            changes.append(PulledChange(collection, record_id, version, op, fields))
        checkpoint, has_more = body["checkpoint"], body["has_more"]
        remaining, server_hlc = body.get("remaining"), body.get("server_hlc")
        if type(checkpoint) is not str or type(has_more) is not bool:
            raise ValueError("malformed checkpoint")
        if remaining is not None and type(remaining) is not int:
            raise ValueError("malformed remaining")
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a valid pull page: {exc}") from None
    return PulledPage(changes, checkpoint, has_more, server_hlc, remaining)


@dataclass(slots=True)
class PageOutcome:
    upserts: int = 0
    deletes: int = 0
    evictions: int = 0
    dead_lettered: int = 0
    conflicts_changed: bool = False
    collections: dict[str, set[str]] = field(default_factory=dict)


def apply_page(
    store: Store, changes: Sequence[ChangeLike], checkpoint: str, server_hlc: str | None
) -> PageOutcome:
    """Apply one pull page and store its checkpoint, atomically."""
    out = PageOutcome()
    with store.locked():
        storage = store.storage
        gen = current_gen(store)
        pending_keys = {
            (c, r) for c, r in storage.execute("SELECT DISTINCT collection, record_id FROM outbox")
        }
        # (collection, id) -> Record to cache or None (gone); ``reload``: replay from disk
        views: dict[tuple[str, str], Record | None] = {}
        reload: set[tuple[str, str]] = set()
        # the hot loop of an initial sync: locals, no helper calls per record
        encode = ENCODER.encode
        seal = store.cipher.seal
        loaded = {c for c in {ch.collection for ch in changes} if store.cache_loaded(c)}
        ids_by_collection = out.collections
        with storage.transaction() as conn:
            batch: list[tuple[object, ...]] = []
            for ch in changes:
                collection, rid = ch.collection, ch.record_id
                ids = ids_by_collection.get(collection)
                if ids is None:
                    ids = ids_by_collection[collection] = set()
                    if collection == CONFLICTS:
                        out.conflicts_changed = True
                ids.add(rid)
                key = (collection, rid)
                if ch.op == "upsert":
                    fields = ch.fields or {}
                    # AAD as in record_aad(): the ciphertext only opens in this row
                    aad = f"r\0{collection}\0{rid}".encode()
                    batch.append(
                        (collection, rid, ch.version, gen, seal(encode(fields).encode(), aad))
                    )
                    if pending_keys and key in pending_keys:
                        reload.add(key)
                    elif collection in loaded:  # no views built for collections not in use
                        views[key] = Record(rid, collection, fields, ch.version, False)
                    out.upserts += 1
                    continue
                if batch:
                    conn.executemany(_UPSERT, batch)
                    batch.clear()
                if ch.op == "delete":
                    out.deletes += 1
                    if key in pending_keys:
                        conn.execute(
                            "UPDATE records SET deleted = 1, version = ?, gen = ? "
                            "WHERE collection = ? AND id = ?",
                            (ch.version, gen, ch.collection, ch.record_id),
                        )
                        reload.add(key)
                    else:
                        conn.execute(
                            "DELETE FROM records WHERE collection = ? AND id = ?",
                            (ch.collection, ch.record_id),
                        )
                        views[key] = None
                else:  # evict
                    out.evictions += 1
                    conn.execute(
                        "DELETE FROM records WHERE collection = ? AND id = ?",
                        (ch.collection, ch.record_id),
                    )
                    if key in pending_keys:
                        for p in store.pending_for(ch.collection, ch.record_id):
                            dead_letter(store, conn, p, EVICTED_ERROR)
                            out.dead_lettered += 1
                        pending_keys.discard(key)
                    views[key] = None
                    reload.discard(key)
            if batch:
                conn.executemany(_UPSERT, batch)
            conn.execute(
                "INSERT INTO meta(key, value) VALUES ('checkpoint', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (checkpoint.encode(),),
            )
            if server_hlc:
                with contextlib.suppress(ValueError):
                    hlc = store.hlc.receive(server_hlc).encode()
                    conn.execute(
                        "INSERT INTO meta(key, value) VALUES ('hlc', ?) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        (hlc.encode(),),
                    )
        for (collection, rid), rec in views.items():
            if store.cache_loaded(collection) and (collection, rid) not in reload:
                store.set_view(collection, rid, rec)
        for collection, rid in reload:
            if store.cache_loaded(collection):
                store.set_view(collection, rid, store.load_view(collection, rid))
    for collection, ids in out.collections.items():
        store.emit_changed(collection, ids, "remote")
    return out


def begin_resync(store: Store) -> None:
    """Forget the checkpoint and start a new generation of server copies."""
    with store.locked(), store.storage.transaction():
        store.meta_set("gen", str(current_gen(store) + 1))
        store.meta_set("checkpoint", None)
        store.meta_set("resync", "1")


def finish_resync(store: Store) -> int:
    """After a full re-pull: drop server copies the server no longer sent us."""
    with store.locked():
        if store.meta_get("resync") != "1":
            return 0
        gen = current_gen(store)
        with store.storage.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM records WHERE gen < ? AND NOT EXISTS (SELECT 1 FROM outbox o "
                "WHERE o.collection = records.collection AND o.record_id = records.id)",
                (gen,),
            )
            dropped = cur.rowcount
            store.meta_set("resync", None)
        store.drop_caches()
    return dropped


def reset_replica(store: Store) -> None:
    """Forget everything synced and pending (a different user logged in on this store)."""
    with store.locked():
        with store.storage.transaction() as conn:
            for table in ("records", "outbox", "dead_letters"):
                conn.execute(f"DELETE FROM {table}")
            store.meta_set("checkpoint", None)
            store.meta_set("resync", None)
        store.drop_caches()
