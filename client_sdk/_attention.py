"""What needs a person's attention: conflicts, refused writes (dead letters), status.

Functions behind :class:`~client_sdk.Store`'s methods of the same names; kept apart because it is the part of the store
an app's "sync problems" screen talks to.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sync_protocol import ConflictChoice, ValidationFailed

from ._errors import RecordNotFound
from ._events import ConflictsChanged
from ._models import Conflict, DeadLetter
from ._rows import CONFLICTS, dead_aad
from ._status import SyncStatus

if TYPE_CHECKING:
    from ._store import Store


# -- conflicts ------------------------------------------------------------------------
def conflicts(store: Store) -> list[Conflict]:
    """Open conflicts not yet resolved on this device, oldest first."""
    with store._storage.lock:
        store._check_open()
        resolving: set[str] = set()
        for (resolves,) in store._storage.execute(
            "SELECT resolves FROM outbox WHERE resolves IS NOT NULL"
        ):
            resolving.update(json.loads(resolves))
        out = []
        for rec in store.cache(CONFLICTS).records.values():
            f = rec.fields
            if f.get("status", "open") != "open" or rec.id in resolving:
                continue
            out.append(
                Conflict(
                    id=rec.id,
                    collection=str(f.get("collection", "")),
                    record_id=str(f.get("record_id", "")),
                    field=str(f.get("field", "")),
                    base=f.get("base"),
                    local=f.get("local"),
                    remote=f.get("remote"),
                    local_hlc=f.get("local_hlc"),
                    remote_hlc=f.get("remote_hlc"),
                    device_id=f.get("device_id"),
                    status=str(f.get("status", "open")),
                )
            )
        out.sort(key=lambda c: (c.local_hlc or "", c.id))
        return out


def resolve_conflict(
    store: Store, conflict_id: str, choice: str | ConflictChoice = "local", value: Any = None
) -> None:
    """Settle a conflict with the local value, the remote value or a new ``value``.

    Writes an ordinary upsert of the record carrying ``resolves=[conflict_id]``; it
    syncs like any write and the server marks the conflict resolved everywhere.
    """
    from ._outbox import enqueue

    choice = ConflictChoice(choice)
    with store._storage.lock:
        found = [c for c in store.conflicts() if c.id == conflict_id]
        if not found:
            raise RecordNotFound(f"no open conflict {conflict_id!r}")
        c = found[0]
        chosen = (
            c.local
            if choice is ConflictChoice.LOCAL
            else (c.remote if choice is ConflictChoice.REMOTE else value)
        )
        entity = store.schema.get(c.collection)
        if c.field == "_deleted":
            if chosen:
                enqueue(store, c.collection, c.record_id, "delete", {}, resolves=[c.id])
            else:
                current = store.view(c.collection, c.record_id)
                fields = dict(current.fields) if current else {}
                if entity is not None:
                    writable = set(entity.writable_fields())
                    fields = {k: v for k, v in fields.items() if k in writable}
                enqueue(store, c.collection, c.record_id, "upsert", fields, resolves=[c.id])
        else:
            if entity is not None and c.field in entity.fields:
                errors = entity.validate({c.field: chosen}, partial=True)
                if errors:
                    raise ValidationFailed("the chosen value is not valid", errors=errors)
            enqueue(store, c.collection, c.record_id, "upsert", {c.field: chosen}, resolves=[c.id])
    store.emit(ConflictsChanged(len(store.conflicts())))


# -- dead letters ---------------------------------------------------------------------
def dead_letters(store: Store) -> list[DeadLetter]:
    with store._storage.lock:
        store._check_open()
        rows = store._storage.execute(
            "SELECT id, collection, record_id, op, created_at, payload FROM dead_letters "
            "ORDER BY created_at, id"
        )
        out = []
        for mid, coll, rid, op, created_at, payload in rows:
            body = store.unseal(payload, dead_aad(mid, coll, rid))
            out.append(
                DeadLetter(
                    id=mid,
                    collection=coll,
                    record_id=rid,
                    op=op,
                    fields=body.get("fields") or {},
                    error=body.get("error") or {},
                    created_at=created_at or 0.0,
                )
            )
        return out


def retry_dead_letter(
    store: Store, dead_letter_id: str, fields: Mapping[str, Any] | None = None
) -> None:
    """Queue a refused write again (as a new mutation), optionally with fixed ``fields``."""
    from ._outbox import enqueue

    with store._storage.lock:
        found = [d for d in store.dead_letters() if d.id == dead_letter_id]
        if not found:
            raise RecordNotFound(f"no dead letter {dead_letter_id!r}")
        d = found[0]
        new_fields = dict(fields) if fields is not None else dict(d.fields)
        entity = store.schema.get(d.collection)
        if entity is not None and d.op == "upsert":
            errors = entity.validate(new_fields, partial=True)
            if errors:
                raise ValidationFailed("the write is still not valid", errors=errors)
        with store._storage.transaction() as conn:
            conn.execute("DELETE FROM dead_letters WHERE id = ?", (d.id,))
            enqueue(store, d.collection, d.record_id, d.op, new_fields, force=True)


def discard_dead_letter(store: Store, dead_letter_id: str) -> None:
    with store._storage.lock:
        store._check_open()
        with store._storage.transaction() as conn:
            cur = conn.execute("DELETE FROM dead_letters WHERE id = ?", (dead_letter_id,))
            if cur.rowcount == 0:
                raise RecordNotFound(f"no dead letter {dead_letter_id!r}")


# -- status ---------------------------------------------------------------------------
def status(store: Store) -> SyncStatus:
    with store._storage.lock:
        store._check_open()
        by_collection = {
            c: n
            for c, n in store._storage.execute(
                "SELECT collection, COUNT(*) FROM outbox GROUP BY collection"
            )
        }
        oldest = store._storage.execute("SELECT MIN(created_at) FROM outbox")[0][0]
        dead = store._storage.execute("SELECT COUNT(*) FROM dead_letters")[0][0]
        last_sync = store.meta_get("last_sync_at")
        return SyncStatus(
            online=store.online,
            pending_total=sum(by_collection.values()),
            pending_by_collection=by_collection,
            oldest_pending_age_s=(
                max(0.0, store.clock.time() - oldest) if oldest is not None else None
            ),
            last_sync_at=float(last_sync) if last_sync else None,
            last_error=store.secret_get("last_error"),
            clock_warning=store.secret_get("clock_warning"),
            open_conflicts=len(store.conflicts()),
            dead_letters=int(dead),
        )
