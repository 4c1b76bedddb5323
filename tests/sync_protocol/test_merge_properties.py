"""Property tests of the merge as a whole protocol: convergence, idempotence, no lost writes.

A tiny in-memory reference server is built from :func:`merge_record` alone (records,
version counter, conflict list, idempotency by mutation id, clock clamping), and
several devices make random offline edits to a few shared records with their own HLCs
(some skewed, one days ahead). Their outboxes are delivered in random interleavings
(each device's outbox in order, as a FIFO queue is sent) with random duplicate
re-deliveries, then every device pulls. The checks:

* **convergence** — two different delivery schedules give the same existence and the
  same last-writer-wins, maximum and union (add) values; every device ends identical to
  the server;
* **idempotence** — re-merging any mutation into its own result changes nothing, and a
  re-delivered mutation id answers ``duplicate`` without a new version;
* **no lost writes** — every edit's value is the final value, is superseded by a later
  HLC (lww) or by policy (server_wins, max), is incorporated (union, append), or sits in
  a conflict record; an edit followed by its own device's delete may go with the record;
  a delete sticks unless another device's concurrent edit kept the record (edit_wins,
  or manual with a ``_deleted`` conflict).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_protocol import (
    DEFAULT_MAX_DRIFT_MS,
    DELETED_FIELD,
    DeletePolicy,
    EntitySchema,
    FieldConflict,
    HybridLogicalClock,
    LocalEdit,
    MergePolicy,
    StoredRecord,
    clamp,
    merge_record,
)

from .helpers import T0, policy_entity

RECORDS = ("r0", "r1", "r2")
INITIAL: dict[str, Any] = {
    "title": "t0",
    "owner_note": "",
    "score": 0,
    "tags": [],
    "notes": "",
    "amount": 0,
}
EDITABLE = ("title", "owner_note", "score", "tags", "notes", "amount")
#: Fields whose policy is order-independent (server_wins keeps the first arrival and
#: manual the first value, so whether a delete meets a concurrent edit can depend on
#: the order when they are involved).
ORDER_FREE = ("title", "score", "tags", "notes")
SKEWS_MS = (0, -10 * 60_000, 2_000, 3 * 24 * 3600 * 1000)  # the last is clamped
SERVER_NOW = T0


@dataclass(frozen=True)
class Sent:
    """One queued mutation (what the device pushes)."""

    id: str
    device: str
    seq: int
    record_id: str
    op: Literal["upsert", "delete"]
    fields: dict[str, Any]
    base: dict[str, Any]
    base_version: int
    hlc: str
    #: Per field, what this edit added (union tags / appended lines), for the oracle.
    added: dict[str, list[str]]


@dataclass
class RefServer:
    """The server's sync logic, reduced to merge_record and bookkeeping."""

    schema: EntitySchema
    records: dict[str, StoredRecord] = field(default_factory=dict)
    record_version: dict[str, int] = field(default_factory=dict)
    version: int = 0
    conflicts: list[tuple[str, FieldConflict]] = field(default_factory=list)
    answered: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: What the push answered the device: the wire status and, for merged/conflict,
    #: the record as the answer's ``record`` carries it.
    replies: dict[str, tuple[str, dict[str, Any] | None]] = field(default_factory=dict)

    def push(self, m: Sent) -> str:
        if m.id in self.answered:
            return "duplicate"
        effective = clamp(m.hlc, server_now_ms=SERVER_NOW, max_drift_ms=DEFAULT_MAX_DRIFT_MS)
        edit = LocalEdit(m.op, m.fields, effective.encode(), m.base_version, m.base)
        current = self.records.get(m.record_id)
        result = merge_record(self.schema, None, edit, current, new_version=self.version + 1)
        # idempotence of the merge itself: the same edit again changes nothing visible
        again = merge_record(self.schema, None, edit, result.record, new_version=self.version + 2)
        assert visible(again.record) == visible(result.record), (m, result, again)
        assert current is None or current == self.records[m.record_id]  # inputs untouched
        if result.changed or result.existence_changed:
            self.version += 1
            self.record_version[m.record_id] = self.version
        self.records[m.record_id] = result.record
        self.conflicts += [(m.record_id, c) for c in result.conflicts]
        self.answered[m.id] = (result.status.value, self.version)
        wire = result.status.value
        if wire == "unchanged":  # as the server answers it
            wire = "merged" if result.superseded else "applied"
        self.replies[m.id] = (wire, visible(result.record))
        return result.status.value

    def pull(self, checkpoint: int) -> tuple[dict[str, dict[str, Any] | None], int]:
        changes = {
            rid: visible(self.records[rid])
            for rid, v in self.record_version.items()
            if v > checkpoint
        }
        return changes, self.version


def visible(record: StoredRecord) -> dict[str, Any] | None:
    """What a device sees: the fields, or nothing for a deleted record."""
    return None if record.deleted else copy.deepcopy(record.fields)


@dataclass
class Device:
    node: str
    clock: HybridLogicalClock
    wall: list[int]
    checkpoint: int
    shadow: dict[str, dict[str, Any]]  # server values last pulled
    local: dict[str, dict[str, Any] | None]
    outbox: list[Sent] = field(default_factory=list)
    seq: int = 0

    def pull(self, server: RefServer) -> None:
        changes, self.checkpoint = server.pull(self.checkpoint)
        for rid, fields in changes.items():
            self.local[rid] = copy.deepcopy(fields)
            if fields is not None:
                self.shadow[rid] = copy.deepcopy(fields)


def new_server(schema: EntitySchema) -> RefServer:
    server = RefServer(schema)
    for i, rid in enumerate(RECORDS):
        created = Sent(
            f"create-{rid}",
            "origin",
            i,
            rid,
            "upsert",
            dict(INITIAL),
            {},
            0,
            HybridLogicalClock("origin", wall=lambda: T0 - 60_000).now().encode(),
            {},
        )
        server.push(created)
    return server


def _reader(wall: list[int]) -> Callable[[], int]:
    """A device's physical clock: a settable cell the history generator advances."""
    return lambda: wall[0]


@st.composite
def histories(
    draw: st.DrawFn,
) -> tuple[DeletePolicy, list[list[Sent]], list[dict[str, dict[str, Any] | None]]]:
    """Each device's outbox after a stretch offline, all starting from the same pull."""
    policy = draw(st.sampled_from(list(DeletePolicy)))
    editable = draw(st.sampled_from([EDITABLE, ORDER_FREE]))
    seed = new_server(policy_entity(policy))
    n_devices = draw(st.integers(2, 4))
    devices = []
    for d in range(n_devices):
        skew = draw(st.sampled_from(SKEWS_MS))
        wall = [SERVER_NOW - 1_000 + skew]
        dev = Device(
            node=f"dev{d}",
            clock=HybridLogicalClock(f"dev{d}", wall=_reader(wall)),
            wall=wall,
            checkpoint=0,
            shadow={},
            local={},
        )
        dev.pull(seed)
        devices.append(dev)
    for dev in devices:
        for _ in range(draw(st.integers(1, 6))):
            rid = draw(st.sampled_from(RECORDS))
            state = dev.local[rid]
            if state is None:
                continue  # deleted on this device: nothing left to edit
            dev.wall[0] += draw(st.integers(0, 40))
            dev.seq += 1
            tag = f"{dev.node}-{dev.seq}"
            if draw(st.integers(0, 9)) == 0:
                m = Sent(
                    tag,
                    dev.node,
                    dev.seq,
                    rid,
                    "delete",
                    {},
                    {},
                    dev.checkpoint,
                    dev.clock.now().encode(),
                    {},
                )
                dev.local[rid] = None
                dev.outbox.append(m)
                continue
            names = draw(st.lists(st.sampled_from(editable), min_size=1, max_size=4, unique=True))
            fields: dict[str, Any] = {}
            added: dict[str, list[str]] = {}
            for name in names:
                if name in ("title", "owner_note"):
                    fields[name] = tag
                elif name == "score":
                    fields[name] = draw(st.integers(1, 100))  # never the base value 0
                elif name == "amount":
                    # unique per edit and never the base 0: two devices writing the same
                    # manual value agree (no conflict), which the oracle cannot tell from
                    # a lost write (agreement is covered by the table tests)
                    fields[name] = (
                        int(dev.node[3:]) * 10_000 + dev.seq * 10 + draw(st.integers(1, 9))
                    )
                elif name == "tags":
                    fields[name] = [*state["tags"], tag]
                    added[name] = [tag]
                else:  # notes
                    fields[name] = f"{state['notes']}\n{tag}" if state["notes"] else tag
                    added[name] = [tag]
            state.update(copy.deepcopy(fields))
            base = {n: copy.deepcopy(dev.shadow[rid][n]) for n in fields}
            dev.outbox.append(
                Sent(
                    tag,
                    dev.node,
                    dev.seq,
                    rid,
                    "upsert",
                    fields,
                    base,
                    dev.checkpoint,
                    dev.clock.now().encode(),
                    added,
                )
            )
    return policy, [dev.outbox for dev in devices], [dev.local for dev in devices]


@st.composite
def schedules(draw: st.DrawFn, outboxes: list[list[Sent]]) -> list[Sent]:
    """Interleave the outboxes (each in order) and re-deliver some mutations."""
    cursors = [0] * len(outboxes)
    order: list[Sent] = []
    while any(c < len(box) for c, box in zip(cursors, outboxes, strict=True)):
        ready = [i for i, box in enumerate(outboxes) if cursors[i] < len(box)]
        i = draw(st.sampled_from(ready))
        order.append(outboxes[i][cursors[i]])
        cursors[i] += 1
        if order and draw(st.integers(0, 4)) == 0:
            order.append(draw(st.sampled_from(order)))  # a retried push
    return order


def run(policy: DeletePolicy, outboxes: list[list[Sent]], order: list[Sent]) -> RefServer:
    server = new_server(policy_entity(policy))
    answered_before: dict[str, tuple[str, int]] = {}
    for m in order:
        version_before = server.version
        status = server.push(m)
        if m.id in answered_before:
            assert status == "duplicate" and server.version == version_before
        answered_before[m.id] = server.answered[m.id]
    assert set(server.answered) >= {m.id for box in outboxes for m in box}
    return server


def converged_view(server: RefServer, *, existence: bool) -> dict[str, Any]:
    """The parts that must not depend on delivery order: lww, max and union values, and
    (for histories of order-independent fields) whether each record exists."""
    view: dict[str, Any] = {}
    for rid in RECORDS:
        fields = visible(server.records[rid])
        values = (
            None
            if fields is None
            else (
                fields["title"],
                fields["score"],
                frozenset(fields["tags"]),
            )
        )
        if existence or values is not None:
            view[rid] = values
    return view


def order_free(outboxes: list[list[Sent]]) -> bool:
    return all(set(m.fields) <= set(ORDER_FREE) for box in outboxes for m in box)


def assert_no_lost_writes(server: RefServer, outboxes: list[list[Sent]]) -> None:
    schema = server.schema
    sent = [m for box in outboxes for m in box]

    def effective(m: Sent) -> str:
        return clamp(m.hlc, server_now_ms=SERVER_NOW, max_drift_ms=DEFAULT_MAX_DRIFT_MS).encode()

    for m in sent:
        if m.op == "delete":
            # a delete only fails to stick because of another device's concurrent edit
            if not server.records[m.record_id].deleted:
                assert schema.delete_policy is not DeletePolicy.DELETE_WINS, m
                assert any(
                    o.op == "upsert" and o.record_id == m.record_id and o.device != m.device
                    for o in sent
                ), m
                if schema.delete_policy is DeletePolicy.MANUAL:
                    assert any(
                        rid == m.record_id and c.field == DELETED_FIELD
                        for rid, c in server.conflicts
                    ), m
            continue
        record = server.records[m.record_id]
        alive = not record.deleted
        own_later_delete = any(
            o.op == "delete"
            and o.device == m.device
            and o.record_id == m.record_id
            and o.seq > m.seq
            for o in sent
        )
        if not alive and own_later_delete:
            continue  # the device itself deleted what it had written
        for name, value in m.fields.items():
            policy = schema.fields[name].merge
            candidates = [record.fields[name]] if alive else []
            candidates += [
                v
                for rid, c in server.conflicts
                if rid == m.record_id and c.field == name
                for v in (c.local, c.remote)
            ]
            others = [
                o
                for o in sent
                if o.op == "upsert"
                and o.record_id == m.record_id
                and name in o.fields
                and o is not m
            ]
            own_later = [o for o in others if o.device == m.device and o.seq > m.seq]
            why = (m, name, record, server.conflicts)
            if policy is MergePolicy.LWW:
                # clamping can give one device's edits equal HLCs: its later one wins
                later = [o for o in others if effective(o) > effective(m)] + own_later
                assert value in candidates or later, why
                if alive and record.fields[name] != value:
                    assert record.clocks[name].hlc > effective(m) or (
                        record.clocks[name].hlc == effective(m) and own_later
                    ), why
            elif policy is MergePolicy.MAX:
                assert any(c is not None and c >= value for c in candidates) or any(
                    o.fields[name] >= value for o in others
                ), why
            elif policy is MergePolicy.SERVER_WINS:
                assert value in candidates or others, why
            elif policy is MergePolicy.MANUAL:
                assert value in candidates or own_later, why
            elif policy is MergePolicy.UNION:
                for tag in m.added[name]:
                    assert any(tag in (c or []) for c in candidates), why
            elif policy is MergePolicy.APPEND:
                for line in m.added[name]:
                    assert any(line in str(c or "").split("\n") for c in candidates), why


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_offline_histories_converge_without_losing_writes(data: st.DataObject) -> None:
    policy, outboxes, locals_ = data.draw(histories(), label="histories")
    first = run(policy, outboxes, data.draw(schedules(outboxes), label="schedule 1"))
    second = run(policy, outboxes, data.draw(schedules(outboxes), label="schedule 2"))

    # convergence: delivery order does not change existence, lww, max or union values
    strict = order_free(outboxes)
    view1 = converged_view(first, existence=strict)
    view2 = converged_view(second, existence=strict)
    if strict:
        assert view1 == view2
    else:  # compare the records alive under both schedules
        assert {r: v for r, v in view1.items() if r in view2} == {
            r: v for r, v in view2.items() if r in view1
        }
    # no lost writes, under both schedules
    assert_no_lost_writes(first, outboxes)
    assert_no_lost_writes(second, outboxes)
    # every device ends identical to the server: its offline state, then each push
    # answer (merged/conflict carry the record), then a pull from its old checkpoint
    server_view = {rid: visible(rec) for rid, rec in first.records.items()}
    _, seed_checkpoint = new_server(first.schema).pull(0)
    for box, local in zip(outboxes, locals_, strict=True):
        replica = copy.deepcopy(local)
        for m in box:
            status, record = first.replies[m.id]
            if status in ("merged", "conflict"):
                replica[m.record_id] = record
        changes, _ = first.pull(seed_checkpoint)
        replica.update(changes)
        assert replica == server_view


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_lww_result_is_the_edit_latest_in_hlc_order(data: st.DataObject) -> None:
    """With edit_wins and no deletes, each lww field ends at its highest-HLC edit."""
    _policy, outboxes, _locals = data.draw(histories(), label="histories")
    outboxes = [[m for m in box if m.op == "upsert"] for box in outboxes]
    server = run(DeletePolicy.EDIT_WINS, outboxes, data.draw(schedules(outboxes)))
    for rid in RECORDS:
        edits = [m for box in outboxes for m in box if m.record_id == rid and "title" in m.fields]
        if not edits:
            assert server.records[rid].fields["title"] == INITIAL["title"]
            continue

        def key(m: Sent) -> tuple[str, int]:
            clamped = clamp(m.hlc, server_now_ms=SERVER_NOW, max_drift_ms=DEFAULT_MAX_DRIFT_MS)
            return clamped.encode(), m.seq  # a clamped device's ties: its later edit

        assert server.records[rid].fields["title"] == max(edits, key=key).fields["title"]
        score_edits = [
            m.fields["score"]
            for box in outboxes
            for m in box
            if m.record_id == rid and "score" in m.fields
        ]
        assert server.records[rid].fields["score"] == max(score_edits, default=0)
