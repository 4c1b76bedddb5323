"""The encrypted local store: opening, keys, record views, conflicts, dead letters, status.

What is on disk (see :mod:`._storage` for the tables): the server's copy of every
record (``records``), the local writes not yet acknowledged (``outbox``), the writes the
server refused (``dead_letters``) and a few settings (``meta``). Every payload is sealed
with AES-256-GCM bound to its row (:mod:`._crypto`); ids, collection names, versions
and HLCs are the only clear text.

What the app sees is a *view*: the server copy with the pending outbox writes replayed on
top, so a write shows up in queries the moment it is acknowledged. Views are kept in a
decrypted in-memory cache per collection, built on first use and updated by every write
and every pull, so queries and text search never touch the disk or the cipher.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sync_protocol import (
    ConflictChoice,
    FieldError,
    HybridLogicalClock,
    SchemaRegistry,
    ValidationFailed,
)

from ._clock import Clock, SystemClock
from ._crypto import (
    AesGcmCipher,
    Cipher,
    KdfParams,
    KeyProvider,
    PlaintextCipher,
    as_key_provider,
    new_data_key,
    new_salt,
    unwrap_key,
    wrap_key,
)
from ._errors import RecordNotFound, StoreClosed, StoreCorrupted
from ._events import ConflictsChanged, EventBus, Listener, RecordsChanged
from ._ids import new_device_id
from ._models import Conflict, DeadLetter, Record
from ._status import SyncStatus
from ._storage import FORMAT_VERSION, SqliteStorage, Storage

log = logging.getLogger("client_sdk")

#: The system collection the server uses for conflicts awaiting a person.
CONFLICTS = "_conflicts"

SearchKeys = Callable[[str, Mapping[str, Any]], Iterable[str]]


#: One encoder reused for every payload (``json.dumps`` with options builds a new one
#: per call, which costs more than the encoding of a small record).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(value: Any) -> bytes:
    return _ENCODER.encode(value).encode("utf-8")


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


class CollectionCache:
    """Decrypted views of one collection plus lazily built search text."""

    __slots__ = ("haystack", "records")

    def __init__(self) -> None:
        self.records: dict[str, Record] = {}
        self.haystack: dict[str, str] | None = None


class Store:
    """An encrypted, offline-first replica of the user's data.

    Open one with :meth:`Store.open`; it is safe to share between the UI thread and a
    :class:`BackgroundSync` thread (every operation takes the store's lock).
    """

    def __init__(
        self,
        storage: Storage,
        cipher: Cipher,
        schema: SchemaRegistry,
        *,
        device_id: str,
        clock: Clock,
        search_keys: SearchKeys | None,
    ) -> None:
        self._storage = storage
        self._cipher = cipher
        self.schema = schema
        self.device_id = device_id
        self.clock = clock
        self.search_keys = search_keys
        self._bus = EventBus()
        self._caches: dict[str, CollectionCache] = {}
        self._collections: dict[str, Any] = {}
        self._closed = False
        self.online = False
        last = storage.get_meta("hlc")
        self.hlc = HybridLogicalClock(
            device_id,
            wall=lambda: int(self.clock.time() * 1000),
            last=last.decode() if last else None,
        )

    # -- opening ------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None,
        passphrase: str | KeyProvider,
        *,
        schema: SchemaRegistry,
        search_keys: SearchKeys | None = None,
        kdf: KdfParams | None = None,
        clock: Clock | None = None,
        encrypted: bool = True,
    ) -> Store:
        """Open the store at ``path``, creating it if missing (``path=None``: in memory).

        ``passphrase`` is a string (Argon2id-derived key) or any :class:`KeyProvider`.
        ``kdf`` sets the Argon2id cost for a *new* store (an existing one keeps its own).
        ``encrypted=False`` creates a plaintext store — only for measuring overhead.
        Raises :class:`WrongPassphrase` or :class:`StoreCorrupted`.
        """
        provider = as_key_provider(passphrase)
        storage = SqliteStorage(path)
        try:
            if storage.is_new():
                cipher, device_id = cls._initialise(
                    storage, provider, kdf or KdfParams(), encrypted
                )
            else:
                cipher, device_id = cls._unlock(storage, provider)
        except BaseException:
            storage.close()
            raise
        return cls(
            storage,
            cipher,
            schema,
            device_id=device_id,
            clock=clock or SystemClock(),
            search_keys=search_keys,
        )

    @staticmethod
    def _initialise(
        storage: Storage, provider: KeyProvider, params: KdfParams, encrypted: bool
    ) -> tuple[Cipher, str]:
        device_id = new_device_id()
        data_key = new_data_key()
        salt = new_salt()
        wrapped = wrap_key(data_key, provider.wrapping_key(salt, params))
        with storage.transaction():
            storage.set_meta("format", str(FORMAT_VERSION).encode())
            storage.set_meta("encrypted", b"1" if encrypted else b"0")
            storage.set_meta("kdf", dumps(params.to_json()))
            storage.set_meta("salt", salt)
            storage.set_meta("wrapped_key", wrapped)
            storage.set_meta("device_id", device_id.encode())
        cipher: Cipher = AesGcmCipher(data_key) if encrypted else PlaintextCipher()
        return cipher, device_id

    @staticmethod
    def _unlock(storage: Storage, provider: KeyProvider) -> tuple[Cipher, str]:
        meta = {k: storage.get_meta(k) for k in ("format", "kdf", "salt", "wrapped_key")}
        device = storage.get_meta("device_id")
        if any(v is None for v in meta.values()) or device is None:
            raise StoreCorrupted("the store's key material is missing")
        if int(meta["format"] or b"0") > FORMAT_VERSION:
            raise StoreCorrupted("the store was written by a newer SDK")
        try:
            params = KdfParams.from_json(json.loads(meta["kdf"] or b"{}"))
        except (ValueError, KeyError):
            raise StoreCorrupted("the store's key parameters are unreadable") from None
        data_key = unwrap_key(
            meta["wrapped_key"] or b"", provider.wrapping_key(meta["salt"] or b"", params)
        )
        cipher: Cipher = (
            PlaintextCipher() if storage.get_meta("encrypted") == b"0" else AesGcmCipher(data_key)
        )
        return cipher, device.decode()

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        with self._storage.lock:
            if not self._closed:
                self._closed = True
                self._caches.clear()
                self._storage.close()

    def wipe(self) -> None:
        """Destroy every record, pending write and the wrapped key; delete the files."""
        with self._storage.lock:
            self._closed = True
            self._caches.clear()
            self._storage.destroy()
        log.warning("local store wiped")

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def change_passphrase(self, old: str | KeyProvider, new: str | KeyProvider) -> None:
        """Re-wrap the data key under ``new``; records are not re-encrypted."""
        with self._storage.lock:
            self._check_open()
            kdf_raw = self._storage.get_meta("kdf")
            salt = self._storage.get_meta("salt")
            wrapped = self._storage.get_meta("wrapped_key")
            if kdf_raw is None or salt is None or wrapped is None:
                raise StoreCorrupted("the store's key material is missing")
            params = KdfParams.from_json(json.loads(kdf_raw))
            data_key = unwrap_key(wrapped, as_key_provider(old).wrapping_key(salt, params))
            new_salt_ = new_salt()
            rewrapped = wrap_key(data_key, as_key_provider(new).wrapping_key(new_salt_, params))
            with self._storage.transaction():
                self._storage.set_meta("salt", new_salt_)
                self._storage.set_meta("wrapped_key", rewrapped)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the store is closed")

    # -- sealing --------------------------------------------------------------------------
    def seal(self, value: Any, aad: bytes) -> bytes:
        return self._cipher.seal(dumps(value), aad)

    def unseal(self, blob: bytes, aad: bytes) -> Any:
        return json.loads(self._cipher.open(blob, aad))

    def secret_get(self, key: str) -> Any:
        raw = self._storage.get_meta("s:" + key)
        return None if raw is None else self.unseal(raw, meta_aad(key))

    def secret_set(self, key: str, value: Any) -> None:
        self._storage.set_meta(
            "s:" + key, None if value is None else self.seal(value, meta_aad(key))
        )

    def meta_get(self, key: str) -> str | None:
        raw = self._storage.get_meta(key)
        return raw.decode() if raw is not None else None

    def meta_set(self, key: str, value: str | None) -> None:
        self._storage.set_meta(key, value.encode() if value is not None else None)

    @property
    def storage(self) -> Storage:
        self._check_open()
        return self._storage

    # -- collections ----------------------------------------------------------------------
    def collection(self, name: str) -> Any:
        """The :class:`Collection` named ``name`` (must be in the schema)."""
        from ._collection import Collection

        self._check_open()
        if name not in self.schema:
            raise RecordNotFound(f"the schema has no collection {name!r}")
        col = self._collections.get(name)
        if col is None:
            col = self._collections[name] = Collection(self, self.schema[name])
        return col

    # -- views ------------------------------------------------------------------------------
    def server_copy(self, collection: str, record_id: str) -> ServerCopy | None:
        rows = self._storage.execute(
            "SELECT version, deleted, payload FROM records WHERE collection = ? AND id = ?",
            (collection, record_id),
        )
        if not rows:
            return None
        version, deleted, payload = rows[0]
        fields = self.unseal(payload, record_aad(collection, record_id))
        return ServerCopy(fields, version, bool(deleted))

    def pending_for(self, collection: str, record_id: str | None = None) -> list[Pending]:
        sql = (
            "SELECT seq, id, collection, record_id, op, base_version, hlc, sent, resolves, "
            "created_at, payload FROM outbox WHERE collection = ?"
        )
        params: tuple[Any, ...] = (collection,)
        if record_id is not None:
            sql += " AND record_id = ?"
            params += (record_id,)
        return [
            self.decode_pending(r) for r in self._storage.execute(sql + " ORDER BY seq", params)
        ]

    def decode_pending(self, row: tuple[Any, ...]) -> Pending:
        seq, mid, coll, rid, op, base_version, hlc, sent, resolves, created_at, payload = row
        body = self.unseal(payload, outbox_aad(mid, coll, rid))
        return Pending(
            seq=seq,
            id=mid,
            collection=coll,
            record_id=rid,
            op=op,
            fields=body.get("fields") or {},
            base=body.get("base"),
            base_version=base_version,
            hlc=hlc,
            sent=bool(sent),
            resolves=json.loads(resolves) if resolves else None,
            created_at=created_at or 0.0,
        )

    def cache(self, collection: str) -> CollectionCache:
        """The decrypted views of ``collection``, built on first use."""
        with self._storage.lock:
            self._check_open()
            cache = self._caches.get(collection)
            if cache is not None:
                return cache
            cache = CollectionCache()
            rows = self._storage.execute(
                "SELECT id, version, deleted, payload FROM records WHERE collection = ?",
                (collection,),
            )
            pending: dict[str, list[Pending]] = {}
            for p in self.pending_for(collection):
                pending.setdefault(p.record_id, []).append(p)
            for rid, version, deleted, payload in rows:
                fields = self.unseal(payload, record_aad(collection, rid))
                waiting = pending.pop(rid, None)
                if waiting:
                    view = replay(ServerCopy(fields, version, bool(deleted)), waiting)
                    if view is not None:
                        cache.records[rid] = Record(rid, collection, view, version, True)
                elif not deleted:
                    cache.records[rid] = Record(rid, collection, fields, version, False)
            for rid, waiting in pending.items():
                view = replay(None, waiting)
                if view is not None:
                    cache.records[rid] = Record(rid, collection, view, None, True)
            self._caches[collection] = cache
            return cache

    def view(self, collection: str, record_id: str) -> Record | None:
        """One record's view (from the cache when built, else from disk)."""
        with self._storage.lock:
            cache = self._caches.get(collection)
            if cache is not None:
                return cache.records.get(record_id)
            return self.load_view(collection, record_id)

    def load_view(self, collection: str, record_id: str) -> Record | None:
        server = self.server_copy(collection, record_id)
        pending = self.pending_for(collection, record_id)
        fields = replay(server, pending)
        if fields is None:
            return None
        return Record(
            record_id, collection, fields, server.version if server else None, bool(pending)
        )

    def refresh_views(self, collection: str, ids: Iterable[str]) -> None:
        """Recompute cached views of ``ids`` from disk (after acks, rejects, pulls)."""
        cache = self._caches.get(collection)
        if cache is None:
            return
        for rid in ids:
            self.set_view(collection, rid, self.load_view(collection, rid))

    def set_view(self, collection: str, record_id: str, record: Record | None) -> None:
        cache = self._caches.get(collection)
        if cache is None:
            return
        if record is None:
            cache.records.pop(record_id, None)
            if cache.haystack is not None:
                cache.haystack.pop(record_id, None)
        else:
            cache.records[record_id] = record
            if cache.haystack is not None:
                cache.haystack[record_id] = self.search_text(collection, record.fields)

    def drop_caches(self) -> None:
        self._caches.clear()

    def cache_loaded(self, collection: str) -> bool:
        return collection in self._caches

    def search_text(self, collection: str, fields: Mapping[str, Any]) -> str:
        """Casefolded text search matches against: search fields, phone digits, hook keys."""
        entity = self.schema.get(collection)
        parts: list[str] = []
        if entity is not None:
            for name in entity.search_fields:
                value = fields.get(name)
                if value is None:
                    continue
                text = str(value)
                parts.append(text)
                spec = entity.fields.get(name)
                if spec is not None and spec.type.value == "phone":
                    parts.append("".join(ch for ch in text if ch.isdigit()))
        if self.search_keys is not None:
            try:
                parts.extend(self.search_keys(collection, fields))
            except Exception:
                log.exception("search_keys hook failed for %s", collection)
        return "\n".join(parts).casefold()

    # -- events ---------------------------------------------------------------------------
    def subscribe(self, callback: Listener) -> Callable[[], None]:
        """Call ``callback(event)`` on every change; returns a function that unsubscribes."""
        return self._bus.subscribe(callback)

    def emit(self, event: Any) -> None:
        self._bus.emit(event)

    def emit_changed(self, collection: str, ids: Iterable[str], origin: str) -> None:
        ids_t = tuple(ids)
        if ids_t:
            self._bus.emit(
                RecordsChanged(collection, ids_t, "local" if origin == "local" else "remote")
            )

    # -- conflicts ------------------------------------------------------------------------
    def conflicts(self) -> list[Conflict]:
        """Open conflicts not yet resolved on this device, oldest first."""
        with self._storage.lock:
            self._check_open()
            resolving: set[str] = set()
            for (resolves,) in self._storage.execute(
                "SELECT resolves FROM outbox WHERE resolves IS NOT NULL"
            ):
                resolving.update(json.loads(resolves))
            out = []
            for rec in self.cache(CONFLICTS).records.values():
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
        self, conflict_id: str, choice: str | ConflictChoice = "local", value: Any = None
    ) -> None:
        """Settle a conflict with the local value, the remote value or a new ``value``.

        Writes an ordinary upsert of the record carrying ``resolves=[conflict_id]``; it
        syncs like any write and the server marks the conflict resolved everywhere.
        """
        from ._outbox import enqueue

        choice = ConflictChoice(choice)
        with self._storage.lock:
            found = [c for c in self.conflicts() if c.id == conflict_id]
            if not found:
                raise RecordNotFound(f"no open conflict {conflict_id!r}")
            c = found[0]
            chosen = (
                c.local
                if choice is ConflictChoice.LOCAL
                else (c.remote if choice is ConflictChoice.REMOTE else value)
            )
            entity = self.schema.get(c.collection)
            if c.field == "_deleted":
                if chosen:
                    enqueue(self, c.collection, c.record_id, "delete", {}, resolves=[c.id])
                else:
                    current = self.view(c.collection, c.record_id)
                    fields = dict(current.fields) if current else {}
                    if entity is not None:
                        writable = set(entity.writable_fields())
                        fields = {k: v for k, v in fields.items() if k in writable}
                    enqueue(self, c.collection, c.record_id, "upsert", fields, resolves=[c.id])
            else:
                if entity is not None and c.field in entity.fields:
                    errors = entity.validate({c.field: chosen}, partial=True)
                    if errors:
                        raise ValidationFailed("the chosen value is not valid", errors=errors)
                enqueue(
                    self, c.collection, c.record_id, "upsert", {c.field: chosen}, resolves=[c.id]
                )
        self.emit(ConflictsChanged(len(self.conflicts())))

    # -- dead letters ---------------------------------------------------------------------
    def dead_letters(self) -> list[DeadLetter]:
        with self._storage.lock:
            self._check_open()
            rows = self._storage.execute(
                "SELECT id, collection, record_id, op, created_at, payload FROM dead_letters "
                "ORDER BY created_at, id"
            )
            out = []
            for mid, coll, rid, op, created_at, payload in rows:
                body = self.unseal(payload, dead_aad(mid, coll, rid))
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
        self, dead_letter_id: str, fields: Mapping[str, Any] | None = None
    ) -> None:
        """Queue a refused write again (as a new mutation), optionally with fixed ``fields``."""
        from ._outbox import enqueue

        with self._storage.lock:
            found = [d for d in self.dead_letters() if d.id == dead_letter_id]
            if not found:
                raise RecordNotFound(f"no dead letter {dead_letter_id!r}")
            d = found[0]
            new_fields = dict(fields) if fields is not None else dict(d.fields)
            entity = self.schema.get(d.collection)
            if entity is not None and d.op == "upsert":
                errors = entity.validate(new_fields, partial=True)
                if errors:
                    raise ValidationFailed("the write is still not valid", errors=errors)
            with self._storage.transaction() as conn:
                conn.execute("DELETE FROM dead_letters WHERE id = ?", (d.id,))
                enqueue(self, d.collection, d.record_id, d.op, new_fields, force=True)

    def discard_dead_letter(self, dead_letter_id: str) -> None:
        with self._storage.lock:
            self._check_open()
            with self._storage.transaction() as conn:
                cur = conn.execute("DELETE FROM dead_letters WHERE id = ?", (dead_letter_id,))
                if cur.rowcount == 0:
                    raise RecordNotFound(f"no dead letter {dead_letter_id!r}")

    # -- status ---------------------------------------------------------------------------
    def status(self) -> SyncStatus:
        with self._storage.lock:
            self._check_open()
            by_collection = {
                c: n
                for c, n in self._storage.execute(
                    "SELECT collection, COUNT(*) FROM outbox GROUP BY collection"
                )
            }
            oldest = self._storage.execute("SELECT MIN(created_at) FROM outbox")[0][0]
            dead = self._storage.execute("SELECT COUNT(*) FROM dead_letters")[0][0]
            last_sync = self.meta_get("last_sync_at")
            return SyncStatus(
                online=self.online,
                pending_total=sum(by_collection.values()),
                pending_by_collection=by_collection,
                oldest_pending_age_s=(
                    max(0.0, self.clock.time() - oldest) if oldest is not None else None
                ),
                last_sync_at=float(last_sync) if last_sync else None,
                last_error=self.secret_get("last_error"),
                clock_warning=self.secret_get("clock_warning"),
                open_conflicts=len(self.conflicts()),
                dead_letters=int(dead),
            )

    def validation_error(self, message: str, field: str, code: str) -> ValidationFailed:
        return ValidationFailed(
            message, errors=[FieldError(field=field, code=code, message=message)]
        )

    @contextlib.contextmanager
    def locked(self) -> Any:
        with self._storage.lock:
            self._check_open()
            yield
