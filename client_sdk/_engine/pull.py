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

from dataclasses import dataclass, field
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
    fields: dict[str, Any] | None


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
    ops: list[tuple[str, PulledChange]]
    checkpoint: str
    #: every op is a ``put`` (the common page of an initial sync: stored in one go)
    only_puts: bool = False
    #: records of the page whose local writes still wait (their views replay them)
    waiting: set[Key] = field(default_factory=set)
    #: ids touched per collection (for change events)
    collections: dict[str, set[str]] = field(default_factory=dict)
    evictions: int = 0
    eviction_error: dict[str, Any] = field(default_factory=lambda: dict(EVICTED_ERROR))

    @property
    def conflicts_changed(self) -> bool:
        return CONFLICTS in self.collections


def plan_page(page: PulledPage, pending: set[Key]) -> PagePlan:
    """What to do with each change of ``page``, given the records with waiting writes."""
    plan = PagePlan([], page.checkpoint)
    pending = set(pending) if pending else pending
    ops, waiting, collections = plan.ops, plan.waiting, plan.collections
    plan.only_puts = all(ch.op == "upsert" for ch in page.changes)
    for ch in page.changes:
        ids = collections.get(ch.collection)
        if ids is None:
            ids = collections[ch.collection] = set()
        ids.add(ch.record_id)
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
