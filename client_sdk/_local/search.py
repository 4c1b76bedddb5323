"""The search index: each record's search text, sealed in segments, never kept in memory.

Text search is a casefolded substring match (``docs/sdk.md``, "Queries"), which a
keyed-hash token index cannot answer without indexing every substring. So the index
holds the *search text* itself — search fields, phone digits, the ``search_keys`` hook's
strings (pinyin, initials), casefolded — as ``{record id: text}`` maps sealed with
AES-256-GCM in a few large segments (:class:`~.base.SearchTable`). A search opens the
segments (one AES-GCM call per few thousand records), matches in Python, and then
decrypts only the records that matched. Nothing is cached between searches, so an open
store's memory does not grow with its records, and the disk holds no clear term: the
segments are sealed like every other payload, and (unlike hashed tokens) do not even
show which records share a term.

Upkeep: every change to a record's *view* (a local write, an answered push, a pulled
page) updates its entry in the same transaction as the change itself. An index is built
on the first search of a collection (or by :meth:`Store.preload`), not during an initial
sync: a store that is never searched pays nothing, and the first sync stays a bulk
insert. Small updates are folded into the newest segment; when a collection has too
many segments they are merged (later entries win; ``None`` marks a record gone).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sync_protocol import SchemaRegistry

from .base import LocalStore

log = logging.getLogger("client_sdk")

SearchKeys = Callable[[str, Mapping[str, Any]], Iterable[str]]
#: {record id: search text, or None for a record no longer visible}
Entries = dict[str, str | None]

NON_DIGITS = re.compile(r"\D+")
#: entries per segment when an index is built or merged
SEGMENT_ENTRIES = 4096
#: a change of fewer records than this is folded into the newest segment …
SMALL_CHANGE = 256
#: … as long as that segment holds fewer entries than this
TAIL_ENTRIES = 2048
#: merge a collection's segments when it has more than this many
MAX_SEGMENTS = 24


def search_plan(schema: SchemaRegistry, collection: str) -> list[tuple[str, bool]]:
    """(field, is_phone) for each searched field of ``collection``."""
    entity = schema.get(collection)
    if entity is None:
        return []
    return [
        (name, name in entity.fields and entity.fields[name].type.value == "phone")
        for name in entity.search_fields
    ]


def fingerprint(schema: SchemaRegistry, search_keys: SearchKeys | None) -> str:
    """What the stored texts were made with; a store opened with another schema's search
    fields or another hook rebuilds its indexes (lazily)."""
    fields = ";".join(
        f"{name}:{','.join(entity.search_fields)}"
        for name, entity in sorted(schema.entities.items())
    )
    hook = "-"
    if search_keys is not None:
        hook = (
            getattr(search_keys, "__module__", "?")
            + "."
            + getattr(search_keys, "__qualname__", type(search_keys).__name__)
        )
        hook += "@" + str(getattr(search_keys, "version", ""))
    return f"v1|{schema.name}|{fields}|{hook}"


class SearchTexts:
    """Makes the search text of a record's fields (callers hold the store's lock)."""

    def __init__(self, schema: SchemaRegistry, search_keys: SearchKeys | None) -> None:
        self._schema = schema
        self._search_keys = search_keys
        self._plans: dict[str, list[tuple[str, bool]]] = {}

    def __call__(self, collection: str, fields: Mapping[str, Any]) -> str:
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


def matcher(search: str) -> Callable[[str], bool]:
    """The test a record's search text must pass: the whole (stripped, casefolded) needle
    is a substring, or — several words — each word is."""
    needle = search.strip().casefold()
    words = needle.split()
    if len(words) > 1:
        return lambda text: needle in text or all(w in text for w in words)
    return lambda text: needle in text


def built(local: LocalStore, collection: str) -> bool:
    return bool(local.search.headers(collection))


def build(local: LocalStore, collection: str, texts: Iterable[tuple[str, str]]) -> None:
    """Write the whole index of ``collection`` from (record id, text) pairs."""
    with local.transaction():
        local.search.clear(collection)
        _write_chunked(local, collection, texts)


def _write_chunked(local: LocalStore, collection: str, texts: Iterable[tuple[str, str]]) -> None:
    chunk: Entries = {}
    seg = 0
    for rid, text in texts:
        chunk[rid] = text
        if len(chunk) >= SEGMENT_ENTRIES:
            local.search.put(collection, seg, chunk)
            seg, chunk = seg + 1, {}
    if chunk or seg == 0:  # an empty collection still has its (empty) index
        local.search.put(collection, seg, chunk)


def update(local: LocalStore, collection: str, entries: Entries) -> None:
    """Record changed search texts (``None``: the record is gone) of a built index; a
    collection without an index is left alone (it is built on its first search)."""
    if not entries:
        return
    with local.transaction():
        headers = local.search.headers(collection)
        if not headers:
            return
        last_seg, last_count = headers[-1]
        if len(entries) < SMALL_CHANGE and last_count < TAIL_ENTRIES:
            merged = local.search.get(collection, last_seg)
            merged.update(entries)
            local.search.put(collection, last_seg, merged)
        else:
            local.search.put(collection, last_seg + 1, dict(entries))
            if len(headers) + 1 > MAX_SEGMENTS:
                compact(local, collection)


def compact(local: LocalStore, collection: str) -> None:
    """Merge the segments of ``collection`` into as few as hold its live entries."""
    with local.transaction():
        live = {rid: text for rid, text in merged(local, collection).items() if text is not None}
        local.search.clear(collection)
        _write_chunked(local, collection, live.items())


def merged(local: LocalStore, collection: str) -> Entries:
    """Every entry of the index, later segments winning."""
    out: Entries = {}
    for seg, _ in local.search.headers(collection):
        out.update(local.search.get(collection, seg))
    return out


def find(local: LocalStore, collection: str, search: str) -> set[str]:
    """Ids of the records whose search text matches ``search`` (index must be built).

    Segments are read newest first, one at a time, so only one segment's texts are in
    memory (and the ids already decided): an entry overrides older ones of its record."""
    test = matcher(search)
    seen: set[str] = set()
    found: set[str] = set()
    for seg, _ in reversed(local.search.headers(collection)):
        for rid, text in local.search.get(collection, seg).items():
            if rid not in seen:
                seen.add(rid)
                if text is not None and test(text):
                    found.add(rid)
    return found
