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
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from sync_protocol import (
    ConflictChoice,
    HybridLogicalClock,
    SchemaRegistry,
)

from . import _attention
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
from ._events import EventBus, Listener, RecordsChanged
from ._ids import new_device_id
from ._models import Conflict, DeadLetter, Record
from ._rows import (
    NON_DIGITS,
    CollectionCache,
    Pending,
    SearchKeys,
    ServerCopy,
    dumps,
    meta_aad,
    outbox_aad,
    record_aad,
    replay,
    search_plan,
)
from ._status import SyncStatus
from ._storage import FORMAT_VERSION, SqliteStorage, Storage

if TYPE_CHECKING:
    from ._collection import Collection
    from ._recovery import RecoveryReport

log = logging.getLogger("client_sdk")


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
        self._collections: dict[str, Collection] = {}
        self._search_plans: dict[str, list[tuple[str, bool]]] = {}
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
        check_integrity: bool = True,
    ) -> Store:
        """Open the store at ``path``, creating it if missing (``path=None``: in memory).

        ``passphrase`` is a string (Argon2id-derived key) or any :class:`KeyProvider`.
        ``kdf`` sets the Argon2id cost for a *new* store (an existing one keeps its own).
        ``encrypted=False`` creates a plaintext store — only for measuring overhead.
        An existing file is checked page by page (``PRAGMA quick_check``) so damage is
        reported here as :class:`StoreCorrupted`; ``check_integrity=False`` skips that,
        for salvaging the readable pending writes of a damaged store (docs/testing.md).
        Raises :class:`WrongPassphrase` or :class:`StoreCorrupted`.
        """
        provider = as_key_provider(passphrase)
        storage = SqliteStorage(path, check_integrity=check_integrity)
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
            storage.create_tables()
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

    @classmethod
    def recover(
        cls,
        path: str | os.PathLike[str],
        passphrase: str | KeyProvider,
        *,
        schema: SchemaRegistry,
        **open_kwargs: Any,
    ) -> tuple[Store, RecoveryReport]:
        """Rebuild a damaged store (:class:`StoreCorrupted` at open): keep the device id,
        key, login and every readable pending write (same mutation ids), move the damaged
        file aside, and start the synced data over — the next ``sync()`` re-pulls it."""
        from ._recovery import recover

        return recover(cls, path, passphrase, schema=schema, **open_kwargs)

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
    def cipher(self) -> Cipher:
        return self._cipher

    @property
    def storage(self) -> Storage:
        self._check_open()
        return self._storage

    # -- collections ----------------------------------------------------------------------
    def collection(self, name: str) -> Collection:
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

    def preload(self, collections: Iterable[str] | None = None) -> None:
        """Decrypt collections into memory now (all of the schema's by default).

        Queries build this cache on first use; an app calls ``preload`` at start-up (on
        a background thread if it likes) so that the first search is as fast as the rest.
        """
        for name in collections if collections is not None else self.schema.entities:
            cache = self.cache(name)
            if cache.haystack is None:
                with self._storage.lock:
                    cache.haystack = {
                        rid: self.search_text(name, rec.fields)
                        for rid, rec in cache.records.items()
                    }

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
        plan = self._search_plans.get(collection)
        if plan is None:
            plan = self._search_plans[collection] = search_plan(self.schema, collection)
        parts: list[str] = []
        for name, is_phone in plan:
            value = fields.get(name)
            if value is None:
                continue
            text = value if isinstance(value, str) else str(value)
            parts.append(text)
            if is_phone:
                parts.append(NON_DIGITS.sub("", text))
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

    # -- attention (see ._attention) ------------------------------------------------------
    def conflicts(self) -> list[Conflict]:
        """Open conflicts not yet resolved on this device, oldest first."""
        return _attention.conflicts(self)

    def resolve_conflict(
        self, conflict_id: str, choice: str | ConflictChoice = "local", value: Any = None
    ) -> None:
        """Settle a conflict with the local value, the remote value or a new ``value``."""
        _attention.resolve_conflict(self, conflict_id, choice, value)

    def dead_letters(self) -> list[DeadLetter]:
        """Writes the server refused, oldest first, with its error."""
        return _attention.dead_letters(self)

    def retry_dead_letter(
        self, dead_letter_id: str, fields: Mapping[str, Any] | None = None
    ) -> None:
        """Queue a refused write again (as a new mutation), optionally with fixed ``fields``."""
        _attention.retry_dead_letter(self, dead_letter_id, fields)

    def discard_dead_letter(self, dead_letter_id: str) -> None:
        _attention.discard_dead_letter(self, dead_letter_id)

    def status(self) -> SyncStatus:
        return _attention.status(self)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's lock (and check it is open) for a multi-step operation."""
        with self._storage.lock:
            self._check_open()
            yield
