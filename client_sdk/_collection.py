"""One collection of the store: validated writes and fast local queries.

Writes are validated against the entity schema *before* they are acknowledged, so the
outbox only holds writes the app's schema accepts (the server may still refuse one —
that is what dead letters are for). Reads decrypt what they return, when asked
(:mod:`._local.views`): ``get`` one record, a text search only the records its sealed
index matched, a query without ``order_by`` only up to ``offset + limit`` matches (in
id order). Filters and sorting are plain Python over the decrypted records; nothing is
kept in memory between calls.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sync_protocol import EntitySchema, FieldError, ValidationFailed
from sync_protocol.schema import RESERVED_FIELDS

from ._core import StoreCore
from ._errors import NotAllowed, RecordNotFound
from ._ids import uuid7
from ._models import Record
from ._writes import drop_unsent, enqueue

Where = Mapping[str, Any] | Callable[[Record], bool] | None


class Collection:
    """Records of one entity. Get one with :meth:`Store.collection`."""

    def __init__(self, core: StoreCore, entity: EntitySchema) -> None:
        self._core = core
        self.entity = entity
        self.name = entity.name

    def __repr__(self) -> str:
        return f"Collection({self.name!r})"

    # -- writes ---------------------------------------------------------------------------
    def insert(self, fields: Mapping[str, Any], *, id: str | None = None) -> Record:
        """Create a record (validated as a whole); returns it once it is safely on disk."""
        values = dict(fields)
        self._check_writable(values)
        errors = self.entity.validate(values, partial=False)
        if errors:
            raise ValidationFailed(f"the {self.name} record is not valid", errors=errors)
        record_id = id or uuid7()
        with self._core.lock:
            self._core.check_usable()
            if self._core.views.view(self.name, record_id) is not None:
                raise ValidationFailed(
                    f"{self.name} {record_id} already exists",
                    errors=[FieldError(field="id", code="duplicate", message="id already exists")],
                )
            rec = enqueue(self._core, self.name, record_id, "upsert", values)
        assert rec is not None
        return rec

    def update(self, record_id: str, patch: Mapping[str, Any]) -> Record:
        """Change some fields; unchanged values are dropped from the patch."""
        if self.entity.append_only:
            raise NotAllowed(f"{self.name} is append-only: records cannot be changed")
        values = dict(patch)
        self._check_writable(values)
        errors = self.entity.validate(values, partial=True)
        if errors:
            raise ValidationFailed(f"the {self.name} change is not valid", errors=errors)
        with self._core.lock:
            self._core.check_usable()
            current = self._core.views.view(self.name, record_id)
            if current is None:
                raise RecordNotFound(f"no {self.name} record {record_id!r}")
            changed = {
                k: v for k, v in values.items() if k not in current.fields or current.fields[k] != v
            }
            if not changed:
                return current
            rec = enqueue(self._core, self.name, record_id, "upsert", changed)
        assert rec is not None
        return rec

    def delete(self, record_id: str) -> None:
        """Delete a record (a record that never reached the server simply disappears)."""
        if self.entity.append_only:
            raise NotAllowed(f"{self.name} is append-only: records cannot be deleted")
        with self._core.lock:
            self._core.check_usable()
            if self._core.views.view(self.name, record_id) is None:
                raise RecordNotFound(f"no {self.name} record {record_id!r}")
            if not drop_unsent(self._core, self.name, record_id):
                enqueue(self._core, self.name, record_id, "delete", {})

    def _check_writable(self, values: Mapping[str, Any]) -> None:
        errors = []
        for name in values:
            spec = self.entity.fields.get(name)
            if name in RESERVED_FIELDS:
                errors.append(
                    FieldError(field=name, code="reserved", message=f"{name} is managed by sync")
                )
            elif spec is not None and spec.read_only:
                errors.append(
                    FieldError(field=name, code="read_only", message=f"{name} is read-only")
                )
        if errors:
            raise ValidationFailed(f"the {self.name} write is not allowed", errors=errors)

    # -- reads ----------------------------------------------------------------------------
    def get(self, record_id: str) -> Record | None:
        with self._core.lock:
            self._core.check_usable()
            return self._core.views.view(self.name, record_id)

    def __getitem__(self, record_id: str) -> Record:
        rec = self.get(record_id)
        if rec is None:
            raise RecordNotFound(f"no {self.name} record {record_id!r}")
        return rec

    def __len__(self) -> int:
        with self._core.lock:
            self._core.check_usable()
            return self._core.views.count(self.name)

    def all(self) -> list[Record]:
        """Every record, in id order (UUIDv7 ids: creation order)."""
        return self._select(None, None)

    def count(self, where: Where = None, *, search: str | None = None) -> int:
        if where is None and not (search and search.strip()):
            return len(self)
        return len(self._select(where, search))

    def query(
        self,
        where: Where = None,
        search: str | None = None,
        order_by: str | Callable[[Record], Any] | None = None,
        descending: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Record]:
        """Records matching ``where`` (field equality dict or predicate) and ``search``.

        ``search`` is a case-insensitive substring match over the entity's
        ``search_fields`` (phone fields also as bare digits) and the store's
        ``search_keys`` hook; several words must all match. ``order_by`` names a field
        (``"id"`` and ``"version"`` too) or is a key function; missing values sort last.
        Without ``order_by`` records come in id order, and only the first
        ``offset + limit`` matches are read.
        """
        end = None if limit is None else offset + limit
        if order_by is None:
            return self._select(where, search, stop=end)[offset:]
        rows = _sorted(self._select(where, search), order_by, descending)
        return rows[offset:end]

    def _select(self, where: Where, search: str | None, stop: int | None = None) -> list[Record]:
        with self._core.lock:
            self._core.check_usable()
            views = self._core.views
            rows: Iterable[Record] = (
                views.search(self.name, search)
                if search and search.strip()
                else views.scan(self.name)
            )
            if callable(where):
                rows = filter(where, rows)
            elif where is not None:
                items = list(where.items())
                rows = (r for r in rows if all(r.fields.get(k) == v for k, v in items))
            return list(rows if stop is None else itertools.islice(rows, stop))


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, int | float):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    return (2, str(value))


def _sorted(
    rows: list[Record], order_by: str | Callable[[Record], Any], descending: bool
) -> list[Record]:
    if callable(order_by):
        return sorted(rows, key=order_by, reverse=descending)
    if order_by == "id":
        return sorted(rows, key=lambda r: r.id, reverse=descending)
    if order_by == "version":
        present = [r for r in rows if r.version is not None]
        missing = [r for r in rows if r.version is None]
        return sorted(present, key=lambda r: r.version or 0, reverse=descending) + missing
    present = [r for r in rows if r.fields.get(order_by) is not None]
    missing = [r for r in rows if r.fields.get(order_by) is None]
    present.sort(key=lambda r: _sort_key(r.fields[order_by]), reverse=descending)
    return present + missing
