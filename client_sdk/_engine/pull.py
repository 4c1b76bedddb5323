"""Pull: a ``PullRequest``; the changes of its answer → a plan for the local store.

The answer is read tolerantly by :func:`.responses.read_page` into a
:class:`PulledPage`. The plan says, for each change in order, what the local store does:

* ``put`` — store the server copy (``upsert``);
* ``tombstone`` — a ``delete`` of a record with local writes waiting: keep its fields
  flagged deleted, so the view still shows the record; the push decides by the entity's
  delete policy;
* ``remove`` — a ``delete`` or ``evict`` of a record with nothing waiting;
* ``evict`` — the record left this user's scope while local writes waited on it: remove
  it and move the writes to the dead letters with :data:`EVICTED_ERROR` (the server
  would refuse them; nothing typed vanishes silently).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from typing import Any, NamedTuple

from sync_protocol import PullRequest

from .._rows import CONFLICTS, Key, LocalCounts
from .health import DeviceInfo, device_status

PUT, TOMBSTONE, REMOVE, EVICT = "put", "tombstone", "remove", "evict"

EVICTED_ERROR: dict[str, Any] = {
    "code": "forbidden",
    "message": "the record left your scope (it was reassigned or access was removed)",
    "details": {"evicted": True},
}


class PulledChange(NamedTuple):
    """One change of a pulled page (a named tuple: an initial sync makes tens of
    thousands, and a tuple is built several times faster than a frozen dataclass)."""

    collection: str
    record_id: str
    version: int
    op: str
    #: the fields of an upsert — ``None`` when only ``raw`` is kept
    fields: dict[str, Any] | None
    #: the JSON text of an upsert's fields exactly as the page carried it (UTF-8), when
    #: the page was read on the fast path (:func:`.responses.read_page`): the local
    #: store seals it as is, with no decoding kept and no encoding again
    raw: bytes | None = None

    def decoded(self) -> dict[str, Any]:
        """The upsert's fields (decoded from ``raw`` when only the text was kept)."""
        if self.fields is not None:
            return self.fields
        return json.loads(self.raw) if self.raw is not None else {}


@dataclass(frozen=True, slots=True)
class PulledPage:
    changes: list[PulledChange]
    checkpoint: str
    has_more: bool
    server_hlc: str | None
    remaining: int | None
    #: changes of a kind this SDK does not know, skipped
    skipped: int = 0


def build_request(
    checkpoint: str | None,
    counts: LocalCounts,
    *,
    device_id: str,
    device: DeviceInfo,
    limit: int,
    now: float,
) -> dict[str, Any]:
    """The JSON body of ``POST /v1/sync/pull`` with the device's report (validated)."""
    request = PullRequest(
        device_id=device_id,
        schema_version=device.schema_version,
        schema_name=device.schema_name,
        checkpoint=checkpoint,
        limit=limit,
        device_status=device_status(counts, device, now),  # type: ignore[arg-type]
    )
    body: dict[str, Any] = request.model_dump(mode="json", exclude_none=True)
    body.setdefault("checkpoint", None)  # null, explicitly, for an initial sync
    return body


@dataclass(slots=True)
class PagePlan:
    #: what to do with each change, in order — empty when ``only_puts`` (then every
    #: change of ``changes`` is a ``put``, and no list of operations is built)
    ops: list[tuple[str, PulledChange]]
    checkpoint: str
    #: every change is an upsert (the common page of an initial sync): ``changes`` are
    #: stored in one go
    only_puts: bool = False
    changes: list[PulledChange] = field(default_factory=list)
    #: records of the page whose local writes still wait (their views replay them)
    waiting: set[Key] = field(default_factory=set)
    #: ids touched per collection (for change events)
    collections: dict[str, set[str]] = field(default_factory=dict)
    evictions: int = 0
    eviction_error: dict[str, Any] = field(default_factory=lambda: dict(EVICTED_ERROR))

    @property
    def conflicts_changed(self) -> bool:
        return CONFLICTS in self.collections

    def steps(self) -> Iterator[tuple[str, PulledChange]]:
        """(kind, change) of every change in order, ``only_puts`` or not."""
        if self.only_puts:
            return ((PUT, ch) for ch in self.changes)
        return iter(self.ops)


_OP, _COLLECTION, _RECORD_ID = itemgetter(3), itemgetter(0), itemgetter(1)


def plan_page(page: PulledPage, pending: set[Key]) -> PagePlan:
    """What to do with each change of ``page``, given the records with waiting writes.

    A page of upserts only (an initial sync's) is planned without a step per change:
    the ids per collection are gathered in runs, and ``waiting`` is the intersection
    with ``pending`` — empty when no local write waits."""
    changes = page.changes
    plan = PagePlan([], page.checkpoint, changes=changes)
    collections = plan.collections
    for c, run in groupby(changes, _COLLECTION):
        ids = collections.get(c)
        if ids is None:
            ids = collections[c] = set()
        ids.update(map(_RECORD_ID, run))
    if set(map(_OP, changes)) <= {"upsert"}:
        plan.only_puts = True
        if pending:
            plan.waiting = {(ch.collection, ch.record_id) for ch in changes} & pending
        return plan
    pending = set(pending) if pending else pending
    ops, waiting = plan.ops, plan.waiting
    for ch in changes:
        if ch.op == "upsert":
            ops.append((PUT, ch))
            if pending and (ch.collection, ch.record_id) in pending:
                waiting.add((ch.collection, ch.record_id))
            continue
        key = (ch.collection, ch.record_id)
        if ch.op == "delete":
            ops.append((TOMBSTONE, ch) if key in pending else (REMOVE, ch))
            if key in pending:
                waiting.add(key)
            continue
        plan.evictions += 1
        ops.append((EVICT, ch) if key in pending else (REMOVE, ch))
        pending.discard(key)
        waiting.discard(key)
    return plan
