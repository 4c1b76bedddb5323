"""Local writes: one outbox entry per write, durable before the app gets its record.

A write is one transaction that appends the mutation (patch, the ``base`` values the
device last saw, ``base_version``, HLC) and persists the HLC; only then does the caller
get its :class:`Record` back. Mutation ids are generated once (UUIDv7) and never change,
so a push retried after a lost answer is recognised by the server (``duplicate``). For
that reason an entry is marked sent before its first push and never rewritten
afterwards; only consecutive edits of one record not yet sent — in the same mutation
group — are coalesced (typing into a form makes one write, not one per keystroke).

``group()`` makes every write inside it share one mutation group id, commits them in one
local transaction (all or none survive a crash or an exception), and keeps them in one
push batch; the server applies a group atomically.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from ._core import StoreCore
from ._ids import uuid7
from ._models import Record
from ._rows import Pending


def _coalesces(
    last: Pending | None, key: tuple[str, str], op: str, group: str | None, plain: bool
) -> bool:
    return (
        plain
        and op == "upsert"
        and last is not None
        and last.key == key
        and last.op == "upsert"
        and not last.sent
        and last.resolves is None
        and last.group == group
    )


def enqueue(
    core: StoreCore,
    collection: str,
    record_id: str,
    op: str,
    patch: Mapping[str, Any],
    *,
    resolves: list[str] | None = None,
    force: bool = False,
    override: list[str] | None = None,
) -> Record | None:
    """Append one mutation durably and update the record's view; returns the new view."""
    local = core.local
    with core.lock:
        core.check_usable()
        before = core.views.view(collection, record_id)
        server = local.records.get(collection, record_id)
        base_version = server.version if server else None
        base = (
            {k: server.fields.get(k) for k in patch}
            if server is not None and op == "upsert"
            else None
        )
        hlc = core.hlc.now().encode()
        now = core.clock.time()
        group = core.group_id()
        after: Record | None = None
        if op != "delete":
            fields_now = {**(before.fields if before else {}), **patch}
            after = Record(record_id, collection, fields_now, base_version, True)
        with local.transaction():
            last = local.outbox.last()
            plain = not force and resolves is None and not override
            if last is not None and _coalesces(last, (collection, record_id), op, group, plain):
                merged_base = (
                    None
                    if last.base is None and base is None
                    else {**(base or {}), **(last.base or {})}
                )
                local.outbox.rewrite(
                    replace(last, fields={**last.fields, **patch}, base=merged_base, hlc=hlc)
                )
            else:
                entry = Pending(
                    seq=0,
                    id=uuid7(int(now * 1000)),
                    collection=collection,
                    record_id=record_id,
                    op=op,
                    fields=dict(patch),
                    base=base,
                    base_version=base_version,
                    hlc=hlc,
                    resolves=resolves,
                    created_at=now,
                    group=group,
                    override=list(override) if override else None,
                )
                local.outbox.append(entry)
            local.meta.set("hlc", hlc.encode())
            core.views.set(collection, record_id, after)  # the search index, same transaction
    core.changed(collection, [record_id], "local")
    return after


def drop_unsent(core: StoreCore, collection: str, record_id: str) -> bool:
    """Forget a record that never reached the server (all its writes unsent): True if done."""
    local = core.local
    with core.lock:
        if local.records.get(collection, record_id) is not None:
            return False
        pending = local.outbox.entries(collection, record_id)
        if not pending or any(p.sent for p in pending):
            return False
        with local.transaction():
            local.outbox.remove(p.seq for p in pending)
            core.views.set(collection, record_id, None)
    core.changed(collection, [record_id], "local")
    return True


@contextlib.contextmanager
def group(core: StoreCore) -> Iterator[str]:
    """Writes inside share one group id, one local transaction and one push batch."""
    current = core.group_id()
    if current is not None:  # nested: the inner block joins the outer group
        yield current
        return
    group_id = uuid7()
    with core.lock:
        core.check_usable()
        core.begin_group(group_id)
        committed = False
        try:
            with core.local.transaction():
                yield group_id
            committed = True
        finally:  # a rollback takes the search index back with the writes
            core.end_group(publish=committed)
