"""What the app reads: each record's *view*, kept decrypted in memory per collection.

A view is the server copy with the pending outbox writes replayed on top, so a write
shows up in queries the moment it is acknowledged. Views of a collection are built on
first use and then kept up to date by every write and every pull, so queries and text
search never touch the disk or the cipher.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sync_protocol import SchemaRegistry

from .._engine.pull import PUT, PagePlan
from .._models import Record
from .._rows import Pending, ServerCopy
from .base import LocalStore

log = logging.getLogger("client_sdk")

SearchKeys = Callable[[str, Mapping[str, Any]], Iterable[str]]
NON_DIGITS = re.compile(r"\D+")


def replay(server: ServerCopy | None, pending: Iterable[Pending]) -> dict[str, Any] | None:
    """The view of one record: the server copy with pending writes applied in order."""
    if server is not None and (server.deleted and not server.fields):
        view: dict[str, Any] | None = None
    else:
        view = dict(server.fields) if server is not None else None
    for p in pending:
        view = None if p.op == "delete" else {**(view or {}), **p.fields}
    return view


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


class ViewCache:
    """The views of every collection in use. Callers hold the store's lock."""

    def __init__(
        self, local: LocalStore, schema: SchemaRegistry, search_keys: SearchKeys | None
    ) -> None:
        self._local = local
        self._schema = schema
        self._search_keys = search_keys
        self._caches: dict[str, CollectionCache] = {}
        self._plans: dict[str, list[tuple[str, bool]]] = {}

    def cache(self, collection: str) -> CollectionCache:
        cache = self._caches.get(collection)
        if cache is not None:
            return cache
        cache = CollectionCache()
        pending: dict[str, list[Pending]] = {}
        for p in self._local.outbox.entries(collection):
            pending.setdefault(p.record_id, []).append(p)
        for rid, copy in self._local.records.scan(collection):
            waiting = pending.pop(rid, None)
            if waiting:
                view = replay(copy, waiting)
                if view is not None:
                    cache.records[rid] = Record(rid, collection, view, copy.version, True)
            elif not copy.deleted:
                cache.records[rid] = Record(rid, collection, copy.fields, copy.version, False)
        for rid, waiting in pending.items():
            view = replay(None, waiting)
            if view is not None:
                cache.records[rid] = Record(rid, collection, view, None, True)
        self._caches[collection] = cache
        return cache

    def loaded(self, collection: str) -> bool:
        return collection in self._caches

    def view(self, collection: str, record_id: str) -> Record | None:
        """One record's view (from the cache when built, else from the store)."""
        cache = self._caches.get(collection)
        if cache is not None:
            return cache.records.get(record_id)
        return self.load(collection, record_id)

    def load(self, collection: str, record_id: str) -> Record | None:
        server = self._local.records.get(collection, record_id)
        pending = self._local.outbox.entries(collection, record_id)
        fields = replay(server, pending)
        if fields is None:
            return None
        version = server.version if server else None
        return Record(record_id, collection, fields, version, bool(pending))

    def set(self, collection: str, record_id: str, record: Record | None) -> None:
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

    def refresh(self, collection: str, ids: Iterable[str]) -> None:
        """Recompute cached views of ``ids`` from the store (after acks and rejects)."""
        if collection in self._caches:
            for rid in ids:
                self.set(collection, rid, self.load(collection, rid))

    def after_page(self, plan: PagePlan) -> None:
        """Bring cached views up to date with an applied pull page."""
        for kind, ch in plan.ops:
            key = (ch.collection, ch.record_id)
            if ch.collection not in self._caches or key in plan.waiting:
                continue
            if kind == PUT:
                record = Record(ch.record_id, ch.collection, ch.fields or {}, ch.version, False)
                self.set(ch.collection, ch.record_id, record)
            else:
                self.set(ch.collection, ch.record_id, None)
        for collection, rid in plan.waiting:
            if collection in self._caches:
                self.set(collection, rid, self.load(collection, rid))

    def drop(self, collections: Iterable[str] | None = None) -> None:
        if collections is None:
            self._caches.clear()
        else:
            for name in collections:
                self._caches.pop(name, None)

    def haystack(self, collection: str) -> dict[str, str]:
        cache = self.cache(collection)
        if cache.haystack is None:
            cache.haystack = {
                rid: self.search_text(collection, rec.fields) for rid, rec in cache.records.items()
            }
        return cache.haystack

    def search_text(self, collection: str, fields: Mapping[str, Any]) -> str:
        """Casefolded text search matches against: search fields, phone digits, hook keys."""
        plan = self._plans.get(collection)
        if plan is None:
            plan = self._plans[collection] = search_plan(self._schema, collection)
        parts: list[str] = []
        for name, is_phone in plan:
            value = fields.get(name)
            if value is None:
                continue
            text = value if isinstance(value, str) else str(value)
            parts.append(text)
            if is_phone:
                parts.append(NON_DIGITS.sub("", text))
        if self._search_keys is not None:
            try:
                parts.extend(self._search_keys(collection, fields))
            except Exception:
                log.exception("search_keys hook failed for %s", collection)
        return "\n".join(parts).casefold()
