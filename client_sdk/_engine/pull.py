"""Pull: a ``PullResponse`` → the changes it carries → a plan for the local store.

Read tolerantly and by hand (no pydantic: on an initial sync this runs for every record,
and building a model per change costs more than decrypting it). Unknown fields are
ignored. A change whose ``op`` this SDK does not know is *skipped* (counted in
``PulledPage.skipped``): the protocol guarantees a server introduces a change kind that
must not be skipped only together with a new protocol version. A known change that is
malformed is a protocol violation (``ValueError``).

The plan says, for each change in order, what the local store does:

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
from dataclasses import dataclass, field
from typing import Any

from sync_protocol import PullRequest

from .._rows import CONFLICTS, Key

PUT, TOMBSTONE, REMOVE, EVICT = "put", "tombstone", "remove", "evict"

EVICTED_ERROR: dict[str, Any] = {
    "code": "forbidden",
    "message": "the record left your scope (it was reassigned or access was removed)",
    "details": {"evicted": True},
}

_OPS = frozenset({"upsert", "delete", "evict"})


@dataclass(frozen=True, slots=True)
class PulledChange:
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
    *,
    device_id: str,
    schema_version: int,
    limit: int,
    device_status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of ``POST /v1/sync/pull`` (validated on the way)."""
    request = PullRequest(
        device_id=device_id,
        schema_version=schema_version,
        checkpoint=checkpoint,
        limit=limit,
        device_status=device_status,  # type: ignore[arg-type]  # validated by the model
    )
    body: dict[str, Any] = request.model_dump(mode="json", exclude_none=True)
    body.setdefault("checkpoint", None)  # null, explicitly, for an initial sync
    return body


def read_page(content: bytes) -> PulledPage:
    """Decode a pull answer; raises ``ValueError`` when it is not one."""
    try:
        body = json.loads(content)
        changes = []
        skipped = 0
        for ch in body["changes"]:
            op = ch["op"]
            if op not in _OPS:
                skipped += 1
                continue
            collection, record_id, version = ch["collection"], ch["record_id"], ch["version"]
            fields = ch.get("fields")
            if (
                type(collection) is not str
                or type(record_id) is not str
                or type(version) is not int
                or (fields is not None and type(fields) is not dict)
                or (op == "upsert" and fields is None)
            ):
                raise ValueError(f"malformed change {record_id!r}")
            changes.append(PulledChange(collection, record_id, version, op, fields))
        checkpoint, has_more = body["checkpoint"], body["has_more"]
        remaining, server_hlc = body.get("remaining"), body.get("server_hlc")
        if type(checkpoint) is not str or type(has_more) is not bool:
            raise ValueError("malformed checkpoint")
        if remaining is not None and type(remaining) is not int:
            remaining = None
        if server_hlc is not None and type(server_hlc) is not str:
            server_hlc = None
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a valid pull page: {exc}") from None
    return PulledPage(changes, checkpoint, has_more, server_hlc, remaining, skipped)


@dataclass(slots=True)
class PagePlan:
    ops: list[tuple[str, PulledChange]]
    checkpoint: str
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
