"""The durable outbox: one mutation per local write, acknowledged only once on disk.

A write is a single SQLite transaction that appends the mutation (sealed patch, ``base``
values, ``base_version``, HLC) and persists the HLC; ``commit`` returns after the WAL is
fsynced, and only then does the caller get its :class:`Record` back.

Mutation ids are generated once (UUIDv7) and never change, so a push retried after a
lost answer is recognised by the server (``duplicate``) and never applied twice. For
that reason an entry is marked ``sent`` before its first push and is never rewritten
afterwards; only consecutive edits of one record that have not been sent yet are
coalesced into one mutation (typing into a form makes one write per field, not one per
keystroke).

Results: applied/merged/conflict/duplicate remove the entry and fold the write into the
server copy; rejected moves it to the dead-letter table with the server's error, and the
record's view falls back to what the server has.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sync_protocol import Mutation, MutationResult, MutationStatus

from ._ids import uuid7
from ._models import Record
from ._rows import (
    CONFLICTS,
    Pending,
    ServerCopy,
    dead_aad,
    outbox_aad,
    record_aad,
)
from ._store import Store


def enqueue(
    store: Store,
    collection: str,
    record_id: str,
    op: str,
    patch: Mapping[str, Any],
    *,
    resolves: list[str] | None = None,
    force: bool = False,
) -> Record | None:
    """Append one mutation durably and update the record's view; returns the new view."""
    with store.locked():
        storage = store.storage
        before = store.view(collection, record_id)
        server = store.server_copy(collection, record_id)
        base_version = server.version if server else None
        base = (
            {k: server.fields.get(k) for k in patch}
            if server is not None and op == "upsert"
            else None
        )
        hlc = store.hlc.now().encode()
        now = store.clock.time()
        with storage.transaction() as conn:
            last = conn.execute(
                "SELECT seq, id, collection, record_id, op, sent, resolves FROM outbox "
                "ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            if (
                not force
                and op == "upsert"
                and resolves is None
                and last is not None
                and last[2] == collection
                and last[3] == record_id
                and last[4] == "upsert"
                and not last[5]
                and last[6] is None
            ):
                prev = store.pending_for(collection, record_id)[-1]
                fields = {**prev.fields, **patch}
                merged_base = (
                    None
                    if prev.base is None and base is None
                    else {**(base or {}), **(prev.base or {})}
                )
                conn.execute(
                    "UPDATE outbox SET hlc = ?, payload = ? WHERE seq = ?",
                    (
                        hlc,
                        store.seal(
                            {"fields": fields, "base": merged_base},
                            outbox_aad(prev.id, collection, record_id),
                        ),
                        prev.seq,
                    ),
                )
            else:
                mid = uuid7(int(now * 1000))
                conn.execute(
                    "INSERT INTO outbox(id, collection, record_id, op, base_version, hlc, "
                    "created_at, sent, resolves, payload) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                    (
                        mid,
                        collection,
                        record_id,
                        op,
                        base_version,
                        hlc,
                        now,
                        json.dumps(resolves) if resolves else None,
                        store.seal(
                            {"fields": dict(patch), "base": base},
                            outbox_aad(mid, collection, record_id),
                        ),
                    ),
                )
            conn.execute(
                "INSERT INTO meta(key, value) VALUES ('hlc', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (hlc.encode(),),
            )
        if op == "delete":
            after: Record | None = None
        else:
            fields_now = {**(before.fields if before else {}), **patch}
            after = Record(record_id, collection, fields_now, base_version, True)
        store.set_view(collection, record_id, after)
    store.emit_changed(collection, [record_id], "local")
    return after


def drop_unsent(store: Store, collection: str, record_id: str) -> bool:
    """Forget a record that never reached the server (all its writes unsent): True if done."""
    with store.locked():
        if store.server_copy(collection, record_id) is not None:
            return False
        pending = store.pending_for(collection, record_id)
        if not pending or any(p.sent for p in pending):
            return False
        with store.storage.transaction() as conn:
            conn.execute(
                "DELETE FROM outbox WHERE collection = ? AND record_id = ?", (collection, record_id)
            )
        store.set_view(collection, record_id, None)
    store.emit_changed(collection, [record_id], "local")
    return True


def take_batch(store: Store, limit: int) -> list[Pending]:
    """The oldest ``limit`` outbox entries, marked sent (durably) before they leave."""
    with store.locked():
        rows = store.storage.execute(
            "SELECT seq, id, collection, record_id, op, base_version, hlc, sent, resolves, "
            "created_at, payload FROM outbox ORDER BY seq LIMIT ?",
            (limit,),
        )
        batch = [store.decode_pending(r) for r in rows]
        unsent = [p.seq for p in batch if not p.sent]
        if unsent:
            with store.storage.transaction() as conn:
                conn.executemany("UPDATE outbox SET sent = 1 WHERE seq = ?", [(s,) for s in unsent])
        return batch


def to_mutation(p: Pending) -> Mutation:
    return Mutation(
        id=p.id,
        collection=p.collection,
        record_id=p.record_id,
        op="delete" if p.op == "delete" else "upsert",
        base_version=p.base_version,
        fields=p.fields if p.op != "delete" else {},
        base=p.base,
        hlc=p.hlc,
        resolves=p.resolves,
    )


def current_gen(store: Store) -> int:
    raw = store.meta_get("gen")
    return int(raw) if raw else 0


def put_server_copy(
    store: Store, conn: Any, collection: str, record_id: str, copy: ServerCopy, gen: int
) -> None:
    conn.execute(
        "INSERT INTO records(collection, id, version, deleted, gen, payload) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(collection, id) DO UPDATE SET "
        "version = excluded.version, deleted = excluded.deleted, gen = excluded.gen, "
        "payload = excluded.payload",
        (
            collection,
            record_id,
            copy.version,
            int(copy.deleted),
            gen,
            store.seal(copy.fields, record_aad(collection, record_id)),
        ),
    )


def dead_letter(store: Store, conn: Any, p: Pending, error: Mapping[str, Any]) -> None:
    """Move one outbox entry to the dead-letter table (inside ``conn``'s transaction)."""
    conn.execute(
        "INSERT OR REPLACE INTO dead_letters(id, collection, record_id, op, created_at, payload) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            p.id,
            p.collection,
            p.record_id,
            p.op,
            store.clock.time(),
            store.seal(
                {
                    "fields": p.fields,
                    "base": p.base,
                    "base_version": p.base_version,
                    "error": dict(error),
                    "resolves": p.resolves,
                },
                dead_aad(p.id, p.collection, p.record_id),
            ),
        ),
    )
    conn.execute("DELETE FROM outbox WHERE seq = ?", (p.seq,))


def apply_results(
    store: Store, batch: list[Pending], results: list[MutationResult]
) -> dict[str, int]:
    """Fold a push answer into the store in one transaction; returns counts per status."""
    by_id = {p.id: p for p in batch}
    counts: dict[str, int] = {}
    touched: dict[str, set[str]] = {}
    with store.locked():
        gen = current_gen(store)
        with store.storage.transaction() as conn:
            for result in results:
                p = by_id.get(result.mutation_id)
                if p is None:
                    continue
                status = result.status
                rejected = status is MutationStatus.REJECTED or (
                    status is MutationStatus.DUPLICATE and result.error is not None
                )
                key = "rejected" if rejected else status.value
                counts[key] = counts.get(key, 0) + 1
                touched.setdefault(p.collection, set()).add(p.record_id)
                if rejected:
                    error = result.error.model_dump(mode="json") if result.error else {}
                    dead_letter(store, conn, p, error)
                    continue
                _fold_ack(store, conn, p, result, gen)
                for cid in p.resolves or ():
                    _mark_resolved(store, conn, cid, gen)
                    touched.setdefault(CONFLICTS, set()).add(cid)
                conn.execute("DELETE FROM outbox WHERE seq = ?", (p.seq,))
        for collection, ids in touched.items():
            store.refresh_views(collection, ids)
    for collection, ids in touched.items():
        store.emit_changed(collection, ids, "remote")
    return counts


def _fold_ack(store: Store, conn: Any, p: Pending, result: MutationResult, gen: int) -> None:
    server = store.server_copy(p.collection, p.record_id)
    version = result.version if result.version is not None else (server.version if server else None)
    status = result.status
    plain_ack = status in (MutationStatus.APPLIED, MutationStatus.DUPLICATE)
    if p.op == "delete":
        if result.record is not None:
            put_server_copy(
                store,
                conn,
                p.collection,
                p.record_id,
                ServerCopy(dict(result.record), version, False),
                gen,
            )
        elif plain_ack:
            conn.execute(
                "DELETE FROM records WHERE collection = ? AND id = ?", (p.collection, p.record_id)
            )
        return
    base_fields = dict(server.fields) if server is not None and not server.deleted else {}
    if result.record is not None:
        fields: dict[str, Any] | None = {**base_fields, **result.record}
    elif plain_ack:
        fields = {**base_fields, **p.fields}
    else:
        fields = None  # merged/conflict without the record: the next pull brings it
    if fields is not None:
        put_server_copy(
            store, conn, p.collection, p.record_id, ServerCopy(fields, version, False), gen
        )


def _mark_resolved(store: Store, conn: Any, conflict_id: str, gen: int) -> None:
    copy = store.server_copy(CONFLICTS, conflict_id)
    if copy is None:
        return
    copy.fields["status"] = "resolved"
    put_server_copy(store, conn, CONFLICTS, conflict_id, copy, gen)
