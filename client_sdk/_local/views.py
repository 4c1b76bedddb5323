"""What the app reads: each record's *view*, read from the local store when asked.

A view is the server copy with the pending outbox writes replayed on top, so a write
shows up in queries the moment it is acknowledged. Nothing is cached: a view is
decrypted when it is read (one record for ``get``, the matches of a search, the
collection in id order — fetched in keyset pages — for a scan), so an open store's
memory does not grow with the number of records it holds. Text search goes through the
sealed search index (:mod:`.search`), which every change of a view updates in the same
transaction as the change.

Callers hold the store's lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from sync_protocol import SchemaRegistry

from .._engine.pull import PUT, PagePlan
from .._models import Record
from .._rows import Pending, ServerCopy
from . import search
from .base import LocalStore
from .search import Entries, SearchKeys, SearchTexts

__all__ = ["SearchKeys", "Views", "replay"]

_FINGERPRINT = "search_fingerprint"
#: how often :meth:`Views.build_indexes` makes the texts without the lock before it
#: makes them under it (a write from another thread in between means reading again)
PRELOAD_TRIES = 3


def replay(server: ServerCopy | None, pending: Iterable[Pending]) -> dict[str, object] | None:
    """The view of one record: the server copy with pending writes applied in order."""
    if server is not None and (server.deleted and not server.fields):
        view: dict[str, object] | None = None
    else:
        view = dict(server.fields) if server is not None else None
    for p in pending:
        view = None if p.op == "delete" else {**(view or {}), **p.fields}
    return view


@dataclass(slots=True)
class Snapshot:
    """Every view of one collection, read now (for tests and diagnostics: it is not kept)."""

    records: dict[str, Record] = field(default_factory=dict)


class Views:
    """Reads views from the local store and keeps the search index in step with them."""

    def __init__(
        self, local: LocalStore, schema: SchemaRegistry, search_keys: SearchKeys | None
    ) -> None:
        self._local = local
        self.texts = SearchTexts(schema, search_keys)
        self._fingerprint = search.fingerprint(schema, search_keys)

    def check_index(self) -> None:
        """Forget indexes made with other search fields or another ``search_keys`` hook
        (they are rebuilt on the next search)."""
        local = self._local
        if local.meta.get(_FINGERPRINT) != self._fingerprint.encode():
            with local.transaction():
                local.search.clear()
                local.meta.set(_FINGERPRINT, self._fingerprint.encode())

    # -- reading --------------------------------------------------------------------------
    def _pending(self, collection: str, record_id: str | None = None) -> dict[str, list[Pending]]:
        out: dict[str, list[Pending]] = {}
        for p in self._local.outbox.entries(collection, record_id):
            out.setdefault(p.record_id, []).append(p)
        return out

    @staticmethod
    def _make(
        collection: str, rid: str, server: ServerCopy | None, waiting: list[Pending] | None
    ) -> Record | None:
        if waiting:
            fields = replay(server, waiting)
            if fields is None:
                return None
            return Record(rid, collection, fields, server.version if server else None, True)
        if server is None or server.deleted:
            return None
        return Record(rid, collection, server.fields, server.version, False)

    def view(self, collection: str, record_id: str) -> Record | None:
        """One record's view (one decryption, plus its pending writes)."""
        server = self._local.records.get(collection, record_id)
        waiting = self._pending(collection, record_id).get(record_id)
        return self._make(collection, record_id, server, waiting)

    load = view

    def many(self, collection: str, record_ids: Iterable[str]) -> list[Record]:
        """The views of ``record_ids`` that exist, in id order."""
        ids = sorted(set(record_ids))
        servers = self._local.records.get_many(collection, ids)
        pending = self._pending(collection) if ids else {}
        out = []
        for rid in ids:
            rec = self._make(collection, rid, servers.get(rid), pending.get(rid))
            if rec is not None:
                out.append(rec)
        return out

    def scan(self, collection: str) -> Iterator[Record]:
        """Every view of ``collection`` in id order, decrypted as the caller consumes it."""
        pending = self._pending(collection)
        waiting_ids = sorted(pending)
        i, make = 0, self._make
        for rid, server in self._local.records.scan(collection):
            while i < len(waiting_ids) and waiting_ids[i] < rid:
                rec = make(collection, waiting_ids[i], None, pending[waiting_ids[i]])
                i += 1
                if rec is not None:
                    yield rec
            waiting = None
            if i < len(waiting_ids) and waiting_ids[i] == rid:
                waiting = pending[rid]
                i += 1
            rec = make(collection, rid, server, waiting)
            if rec is not None:
                yield rec
        for rid in waiting_ids[i:]:
            rec = make(collection, rid, None, pending[rid])
            if rec is not None:
                yield rec

    def count(self, collection: str) -> int:
        """How many records the app sees, from clear columns (pending ones decrypted)."""
        pending = self._pending(collection)
        n = self._local.records.count(collection)
        if pending:
            servers = self._local.records.get_many(collection, pending)
            for rid, waiting in pending.items():
                server = servers.get(rid)
                if server is not None and not server.deleted:
                    n -= 1
                if replay(server, waiting) is not None:
                    n += 1
        return n

    def search(self, collection: str, needle: str) -> list[Record]:
        """Views whose search text matches ``needle``, in id order (only they are
        decrypted; the index is built first if the collection has none)."""
        self.ensure_index(collection)
        return self.many(collection, search.find(self._local, collection, needle))

    def cache(self, collection: str) -> Snapshot:
        return Snapshot({r.id: r for r in self.scan(collection)})

    # -- the search index -----------------------------------------------------------------
    def ensure_index(self, collection: str) -> None:
        if not search.built(self._local, collection):
            texts = self.texts
            search.build(
                self._local,
                collection,
                ((r.id, texts(collection, r.fields)) for r in self.scan(collection)),
            )

    def build_indexes(
        self, collections: list[str], check: Callable[[], None], tries: int = PRELOAD_TRIES
    ) -> None:
        """Build the missing indexes of ``collections`` *without* holding the store's
        lock while their texts are made (each read takes it briefly); the texts are
        stored in one transaction only if the store's write count did not move since
        they were read — else read again, the last try under the lock throughout.
        ``check`` runs under the lock before each step (store open and usable)."""
        local = self._local
        for attempt in range(tries):
            with local.lock:
                check()
                missing = [c for c in collections if not self.indexed(c)]
                mark = local.write_count()
            if not missing:
                return
            if mark is None or attempt == tries - 1:
                break
            made = {c: [(r.id, self.texts(c, r.fields)) for r in self.scan(c)] for c in missing}
            with local.lock, local.transaction():
                check()
                if local.write_count() == mark:
                    for c, texts in made.items():
                        if not self.indexed(c):
                            search.build(local, c, texts)
                    return
        with local.lock, local.transaction():  # one commit for all of them
            check()
            for c in collections:
                self.ensure_index(c)

    def indexed(self, collection: str) -> bool:
        return search.built(self._local, collection)

    def set(self, collection: str, record_id: str, record: Record | None) -> None:
        """``record`` is the new view of ``record_id`` (``None``: gone); call it inside
        the transaction that made the change."""
        text = None if record is None else self.texts(collection, record.fields)
        search.update(self._local, collection, {record_id: text})

    def refresh(self, collection: str, ids: Iterable[str]) -> None:
        """Re-read the views of ``ids`` into the index (after acks and rejects)."""
        ids = set(ids)
        if not ids or not self.indexed(collection):
            return
        entries: Entries = dict.fromkeys(ids)
        for rec in self.many(collection, ids):
            entries[rec.id] = self.texts(collection, rec.fields)
        search.update(self._local, collection, entries)

    def after_page(self, plan: PagePlan) -> None:
        """Bring the indexes up to date with an applied pull page (same transaction)."""
        indexed = {c: self.indexed(c) for c in plan.collections}
        if not any(indexed.values()):
            return  # no index to keep (an initial sync): nothing to do per change
        by: dict[str, Entries] = {}
        waiting: dict[str, set[str]] = {}
        for kind, ch in plan.steps():
            c = ch.collection
            if not indexed[c]:
                continue
            if (c, ch.record_id) in plan.waiting:
                waiting.setdefault(c, set()).add(ch.record_id)
                continue
            entries = by.setdefault(c, {})
            entries[ch.record_id] = self.texts(c, ch.decoded()) if kind == PUT else None
        for c, ids in waiting.items():
            entries = by.setdefault(c, {})
            entries.update(dict.fromkeys(ids))
            for rec in self.many(c, ids):
                entries[rec.id] = self.texts(c, rec.fields)
        for c, entries in by.items():
            search.update(self._local, c, entries)

    def drop(self, collections: Iterable[str] | None = None) -> None:
        """Forget the indexes of ``collections`` (all by default): after a resync or a
        change of user they are rebuilt on the next search."""
        with self._local.transaction():
            if collections is None:
                self._local.search.clear()
            else:
                for name in collections:
                    self._local.search.clear(name)
