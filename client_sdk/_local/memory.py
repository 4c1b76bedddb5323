"""The in-memory local store: the same contract as the SQLite one, in Python objects.

For tests, demos and throwaway devices: nothing touches the disk, so nothing is sealed.
Transactions are atomic by snapshot: the outermost block copies every table first and
puts the copies back when the block raises.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .._errors import StoreClosed
from .._rows import AttachmentRow, DeadLetterRow, Key, OutboxSummary, Pending, ServerCopy
from .base import CopyRow
from .crypto import Cipher

__all__ = ["MemoryLocalStore"]


class _Tables:
    def __init__(self) -> None:
        self.meta: dict[str, bytes] = {}
        self.secrets: dict[str, Any] = {}
        self.records: dict[Key, tuple[ServerCopy, int]] = {}
        self.outbox: dict[int, Pending] = {}
        self.next_seq = 1
        self.dead: dict[str, DeadLetterRow] = {}
        self.attachments: dict[str, AttachmentRow] = {}
        self.search: dict[str, dict[int, dict[str, str | None]]] = {}

    def snapshot(self) -> _Tables:
        return copy.deepcopy(self)


class MemoryLocalStore:
    path: Path | None = None

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._t: _Tables | None = _Tables()
        self._depth = 0
        self.meta = _Meta(self)
        self.records = _Records(self)
        self.outbox = _Outbox(self)
        self.dead_letters = _DeadLetters(self)
        self.attachments = _Attachments(self)
        self.search = _Search(self)

    @property
    def t(self) -> _Tables:
        if self._t is None:
            raise StoreClosed("the store is closed")
        return self._t

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            saved = self.t.snapshot()
            self._depth = 1
            try:
                yield
            except BaseException:
                self._t = saved
                raise
            finally:
                self._depth = 0

    def write_count(self) -> int | None:
        return None  # not tracked: readers hold the lock

    def is_new(self) -> bool:
        return not self.t.meta

    def create(self) -> None:
        self.t.meta.setdefault("format", b"4")

    def use_cipher(self, cipher: Cipher) -> None:
        return None  # nothing reaches a disk

    @property
    def closed(self) -> bool:
        return self._t is None

    def close(self) -> None:
        with self.lock:
            self._t = None

    def destroy(self) -> None:
        self.close()


class _Table:
    def __init__(self, store: MemoryLocalStore) -> None:
        self._s = store

    @property
    def t(self) -> _Tables:
        return self._s.t


class _Meta(_Table):
    def get(self, key: str) -> bytes | None:
        return self.t.meta.get(key)

    def set(self, key: str, value: bytes | None) -> None:
        with self._s.lock:
            if value is None:
                self.t.meta.pop(key, None)
            else:
                self.t.meta[key] = bytes(value)

    def get_secret(self, key: str) -> Any:
        return copy.deepcopy(self.t.secrets.get(key))

    def set_secret(self, key: str, value: Any) -> None:
        with self._s.lock:
            if value is None:
                self.t.secrets.pop(key, None)
            else:
                self.t.secrets[key] = copy.deepcopy(value)


class _Records(_Table):
    def get(self, collection: str, record_id: str) -> ServerCopy | None:
        found = self.t.records.get((collection, record_id))
        return copy.deepcopy(found[0]) if found else None

    def get_many(self, collection: str, record_ids: Iterable[str]) -> dict[str, ServerCopy]:
        out = {}
        for rid in record_ids:
            found = self.t.records.get((collection, rid))
            if found is not None:
                out[rid] = copy.deepcopy(found[0])
        return out

    def scan(self, collection: str) -> Iterator[tuple[str, ServerCopy]]:
        rows = sorted(
            ((k[1], c) for k, (c, _) in self.t.records.items() if k[0] == collection),
            key=lambda row: row[0],
        )
        for rid, found in rows:
            yield rid, copy.deepcopy(found)

    def count(self, collection: str) -> int:
        return sum(
            1 for k, (c, _) in self.t.records.items() if k[0] == collection and not c.deleted
        )

    def put(self, collection: str, record_id: str, copy_: ServerCopy, gen: int) -> None:
        with self._s.lock:
            self.t.records[(collection, record_id)] = (copy.deepcopy(copy_), gen)

    def put_many(self, rows: Iterable[CopyRow], gen: int) -> None:
        with self._s.lock:
            for c, rid, version, fields, raw in rows:
                if fields is None:
                    fields = json.loads(raw) if raw is not None else {}
                self.t.records[(c, rid)] = (ServerCopy(copy.deepcopy(fields), version), gen)

    def mark_deleted(self, collection: str, record_id: str, version: int, gen: int) -> None:
        with self._s.lock:
            found = self.t.records.get((collection, record_id))
            if found is not None:
                self.t.records[(collection, record_id)] = (
                    ServerCopy(found[0].fields, version, True),
                    gen,
                )

    def remove(self, collection: str, record_id: str) -> None:
        with self._s.lock:
            self.t.records.pop((collection, record_id), None)

    def drop_older(self, gen: int, keep: set[Key]) -> int:
        with self._s.lock:
            stale = [k for k, (_, g) in self.t.records.items() if g < gen and k not in keep]
            for k in stale:
                del self.t.records[k]
            return len(stale)

    def clear(self) -> None:
        with self._s.lock:
            self.t.records.clear()


class _Outbox(_Table):
    def append(self, entry: Pending) -> int:
        with self._s.lock:
            seq = self.t.next_seq
            self.t.next_seq += 1
            entry.seq = seq
            self.t.outbox[seq] = copy.deepcopy(entry)
            return seq

    def rewrite(self, entry: Pending) -> None:
        with self._s.lock:
            old = self.t.outbox.get(entry.seq)
            if old is not None:
                self.t.outbox[entry.seq] = replace(
                    old,
                    fields=copy.deepcopy(entry.fields),
                    base=copy.deepcopy(entry.base),
                    hlc=entry.hlc,
                )

    def _sorted(self) -> list[Pending]:
        return [copy.deepcopy(self.t.outbox[s]) for s in sorted(self.t.outbox)]

    def last(self) -> Pending | None:
        if not self.t.outbox:
            return None
        return copy.deepcopy(self.t.outbox[max(self.t.outbox)])

    def entries(self, collection: str | None = None, record_id: str | None = None) -> list[Pending]:
        return [
            p
            for p in self._sorted()
            if (collection is None or p.collection == collection)
            and (record_id is None or p.record_id == record_id)
        ]

    def head(self, limit: int) -> list[Pending]:
        ordered = self._sorted()
        batch = ordered[: max(1, limit)]
        if batch and batch[-1].group is not None:
            group, last = batch[-1].group, batch[-1].seq
            batch += [p for p in ordered if p.group == group and p.seq > last]
        return batch

    def mark_sent(self, seqs: Iterable[int]) -> None:
        with self._s.lock:
            for s in seqs:
                if s in self.t.outbox:
                    self.t.outbox[s] = replace(self.t.outbox[s], sent=True)

    def remove(self, seqs: Iterable[int]) -> None:
        with self._s.lock:
            for s in seqs:
                self.t.outbox.pop(s, None)

    def keys(self) -> set[Key]:
        return {p.key for p in self.t.outbox.values()}

    def resolving(self) -> set[str]:
        return {cid for p in self.t.outbox.values() for cid in p.resolves or ()}

    def summary(self) -> OutboxSummary:
        by: dict[str, int] = {}
        for p in self.t.outbox.values():
            by[p.collection] = by.get(p.collection, 0) + 1
        entries = list(self.t.outbox.values())
        oldest = min((p.created_at for p in entries), default=None)
        return OutboxSummary(by, oldest, max(self.t.outbox, default=None))

    def clear(self) -> None:
        with self._s.lock:
            self.t.outbox.clear()


class _DeadLetters(_Table):
    def add(self, entry: Pending, error: dict[str, Any], at: float) -> None:
        with self._s.lock:
            self.t.dead[entry.id] = DeadLetterRow(
                id=entry.id,
                collection=entry.collection,
                record_id=entry.record_id,
                op=entry.op,
                fields=copy.deepcopy(entry.fields),
                base=copy.deepcopy(entry.base),
                base_version=entry.base_version,
                error=copy.deepcopy(dict(error)),
                resolves=entry.resolves,
                created_at=at,
                group=entry.group,
            )

    def all(self) -> list[DeadLetterRow]:
        rows = sorted(self.t.dead.values(), key=lambda d: (d.created_at, d.id))
        return copy.deepcopy(rows)

    def remove(self, dead_letter_id: str) -> bool:
        with self._s.lock:
            return self.t.dead.pop(dead_letter_id, None) is not None

    def count(self) -> int:
        return len(self.t.dead)

    def clear(self) -> None:
        with self._s.lock:
            self.t.dead.clear()


class _Attachments(_Table):
    def insert(self, row: AttachmentRow) -> None:
        with self._s.lock:
            if row.id in self.t.attachments:
                raise ValueError(f"attachment {row.id!r} exists")
            self.t.attachments[row.id] = copy.deepcopy(row)

    def get(self, attachment_id: str) -> AttachmentRow | None:
        return copy.deepcopy(self.t.attachments.get(attachment_id))

    def _ordered(self, rows: Iterable[AttachmentRow]) -> list[AttachmentRow]:
        return copy.deepcopy(sorted(rows, key=lambda r: r.created_at))

    def for_record(self, record_id: str, collection: str | None = None) -> list[AttachmentRow]:
        return self._ordered(
            r
            for r in self.t.attachments.values()
            if r.record_id == record_id and (collection is None or r.collection == collection)
        )

    def in_states(self, states: Sequence[str]) -> list[AttachmentRow]:
        return self._ordered(r for r in self.t.attachments.values() if r.state in states)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.t.attachments.values():
            out[r.state] = out.get(r.state, 0) + 1
        return out

    def update(
        self,
        attachment_id: str,
        *,
        state: str | None = None,
        uploaded_bytes: int | None = None,
        registered: bool | None = None,
        local: bool | None = None,
        body: dict[str, Any] | None = None,
    ) -> AttachmentRow | None:
        with self._s.lock:
            row = self.t.attachments.get(attachment_id)
            if row is None:
                return None
            row = replace(
                row,
                state=row.state if state is None else state,
                uploaded_bytes=row.uploaded_bytes if uploaded_bytes is None else uploaded_bytes,
                registered=row.registered if registered is None else registered,
                local=row.local if local is None else local,
                body={**row.body, **copy.deepcopy(body or {})},
            )
            self.t.attachments[attachment_id] = row
            return copy.deepcopy(row)

    def remove(self, attachment_id: str) -> bool:
        with self._s.lock:
            return self.t.attachments.pop(attachment_id, None) is not None

    def ids(self) -> set[str]:
        return set(self.t.attachments)

    def clear(self) -> None:
        with self._s.lock:
            self.t.attachments.clear()


class _Search(_Table):
    def headers(self, collection: str) -> list[tuple[int, int]]:
        segments = self.t.search.get(collection, {})
        return [(seg, len(segments[seg])) for seg in sorted(segments)]

    def get(self, collection: str, seg: int) -> dict[str, str | None]:
        return dict(self.t.search.get(collection, {}).get(seg, {}))

    def put(self, collection: str, seg: int, entries: dict[str, str | None]) -> None:
        with self._s.lock:
            self.t.search.setdefault(collection, {})[seg] = dict(entries)

    def clear(self, collection: str | None = None) -> None:
        with self._s.lock:
            if collection is None:
                self.t.search.clear()
            else:
                self.t.search.pop(collection, None)
