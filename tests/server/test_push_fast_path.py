"""The push's fast path for new records (:meth:`PushBatch._create`, issue 19) equals the
general path (:meth:`PushBatch._run_unit` / :meth:`PushBatch._apply`).

The same batches — creates of every kind among updates, deletes, groups, rejections
(validation, scope, roles, read-only fields, duplicates, append-only events), replays
and reused mutation ids — are pushed once with the fast path and once without it, each
into its own copy of one database, with the same clocks. Every row of every table and
every answer (the response's bytes, the counts) must be the same. Some clocks run ahead
and are clamped, as the route does, after the digests of what was sent are taken.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.accounts import Principal
from server.crm import push_rules
from server.db import make_engine
from server.integration import events
from server.repository import apply_push, mutation_digest, push
from sync_protocol import CRM_SCHEMA, Mutation, PushRequest, PushResponse, Timestamp
from sync_protocol.hlc import clamp
from tests.server.conftest import WORLD_TEMPLATE

T0 = 1_764_720_000_000
NOW_MS = T0 + 5_000
DRIFT_MS = 300_000

REP = Principal("u-rep_a1", "rep", "team-a", frozenset(), "dev-rep")
MANAGER = Principal(
    "u-mgr_a", "manager", "team-a", frozenset({"u-mgr_a", "u-rep_a1", "u-rep_a2"}), "dev-mgr"
)
ADMIN = Principal("u-admin", "admin", None, frozenset(), "dev-admin")
OTHER_REP = Principal("u-rep_b1", "rep", "team-b", frozenset(), "dev-rep-b")
PRINCIPALS = (REP, MANAGER, ADMIN, OTHER_REP)

Batch = tuple[Principal, list[dict[str, Any]]]


class Clocks:
    """Deterministic device and server clocks (the same sequence on both runs)."""

    def __init__(self) -> None:
        self.device = itertools.count(1)
        self.server = itertools.count(1)

    def hlc(self, node: str) -> str:
        n = next(self.device)
        # every seventh from a clock running a day ahead: clamped
        wall = T0 + 86_400_000 if n % 7 == 0 else T0
        return f"{wall:015d}:{n % 100_000:05d}:{node}"

    def server_hlc(self) -> str:
        return f"{T0 + 1000:015d}:{next(self.server):05d}:server"


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    con = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {t: sorted(con.execute(f"SELECT * FROM {t}"), key=repr) for t in sorted(tables)}
    finally:
        con.close()


def _run(
    path: Path, batches: list[Batch], *, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[tuple[str, int, int, int]], dict[str, list[tuple[Any, ...]]]]:
    """Push ``batches`` into the database at ``path``; every answer and every table."""
    monkeypatch.setattr(push, "FAST_CREATES", fast)
    event_ids = itertools.count(1)
    monkeypatch.setattr(events, "new_event_id", lambda: f"evt-{next(event_ids):06d}")
    clocks = Clocks()
    rules = push_rules(CRM_SCHEMA)
    engine = make_engine(f"sqlite:///{path}")
    answers = []
    try:
        for principal, raw in batches:
            sent = PushRequest.model_validate(
                {"device_id": principal.device_id, "schema_version": 1, "mutations": raw}
            ).mutations
            # As the route does: the digests of what was sent, then clocks too far ahead
            # clamped (a copy of the mutation).
            digests = [mutation_digest(m) for m in sent]
            mutations = [_settled(m) for m in sent]
            with engine.begin() as conn:
                outcome = apply_push(
                    conn,
                    principal,
                    CRM_SCHEMA,
                    mutations,
                    now_ms=NOW_MS,
                    server_hlc=clocks.server_hlc,
                    digests=digests,
                    rules=rules,
                )
            body = PushResponse(
                protocol=1, results=outcome.results, server_hlc=clocks.server_hlc(), warnings=[]
            ).model_dump_json()
            answers.append((body, outcome.counter, outcome.applied, outcome.rejected))
    finally:
        engine.dispose()
    return answers, _dump(path)


def _settled(m: Mutation) -> Mutation:
    ts = Timestamp.parse(m.hlc)
    if ts.wall_ms <= NOW_MS + DRIFT_MS:
        return m
    return m.model_copy(
        update={"hlc": clamp(ts, server_now_ms=NOW_MS, max_drift_ms=DRIFT_MS).encode()}
    )


def assert_paths_agree(
    tmp_path: Path, batches: list[Batch], monkeypatch: pytest.MonkeyPatch
) -> list[tuple[str, int, int, int]]:
    runs = []
    for fast in (True, False):
        path = tmp_path / f"{'fast' if fast else 'general'}.db"
        for leftover in tmp_path.glob(f"{path.name}*"):
            leftover.unlink()
        assert WORLD_TEMPLATE.fill(f"sqlite:///{path}")
        runs.append(_run(path, batches, fast=fast, monkeypatch=monkeypatch))
    (fast_answers, fast_tables), (general_answers, general_tables) = runs
    assert fast_answers == general_answers
    assert fast_tables.keys() == general_tables.keys()
    for table in fast_tables:
        assert fast_tables[table] == general_tables[table], table
    return fast_answers


# ---- the mutations ---------------------------------------------------------------------

_ids = itertools.count(1)


def _mutation(
    collection: str,
    record_id: str,
    fields: dict[str, Any] | None = None,
    *,
    op: str = "upsert",
    mid: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    m: dict[str, Any] = {
        "id": mid or f"m-{next(_ids):06d}",
        "collection": collection,
        "record_id": record_id,
        "op": op,
        "fields": fields or {},
        # replaced with the run's clock (_clocked)
        "hlc": "000000000000000:00000:x",
    }
    m.update(extra)
    return m


def customer(k: int, *, phone: int | None = None, **more: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": f'客户 {k} "q" \\ \u2028',
        "status": "potential",
        "phone": f"+86 21 {phone if phone is not None else 5000 + k:08d}",
        "email": f"c{k}@example.com",
        "tags": ["重点客户", "logistics"],
        "next_follow_up": "2026-12-01",
    }
    fields.update(more)
    return {k: v for k, v in fields.items() if v is not None}


#: Each a function of a number (record ids, phones from small pools: they collide).
KINDS: dict[str, Callable[[int], list[dict[str, Any]]]] = {
    "customer": lambda n: [_mutation("customers", f"c-{n % 6}", customer(n))],
    "customer_same_phone": lambda n: [
        _mutation("customers", f"c-x{n}", customer(n + 100, phone=n % 3))
    ],
    "customer_override": lambda n: [
        _mutation(
            "customers",
            f"c-o{n}",
            customer(n + 200, phone=n % 3),
            override=["possible_duplicate"],
        )
    ],
    "customer_invalid": lambda n: [
        _mutation("customers", f"c-i{n}", customer(n + 300, status=None, email="nope"))
    ],
    "customer_unknown_field": lambda n: [
        _mutation("customers", f"c-u{n}", customer(n + 400, colour="red"))
    ],
    "customer_with_owner": lambda n: [
        _mutation("customers", f"c-w{n}", customer(n + 500, owner_id="u-rep_a2"))
    ],
    "customer_custom": lambda n: [
        _mutation("customers", f"c-j{n}", customer(n + 600, custom={"b": 1.5, "a": [1, {"x": 0}]}))
    ],
    "customer_update": lambda n: [
        _mutation("customers", f"c-{n % 6}", {"city": f"城市 {n}"}, base_version=1)
    ],
    "customer_delete": lambda n: [_mutation("customers", f"c-{n % 6}", op="delete")],
    "customer_resolves": lambda n: [
        _mutation("customers", f"c-r{n}", customer(n + 700), resolves=["cf-none"])
    ],
    "contact": lambda n: [
        _mutation("contacts", f"p-{n % 5}", {"customer_id": f"c-{n % 6}", "name": f"联系人 {n}"})
    ],
    "contact_unknown_customer": lambda n: [
        _mutation("contacts", f"p-u{n}", {"customer_id": "c-missing", "name": "x"})
    ],
    "activity": lambda n: [
        _mutation(
            "activities",
            f"a-{n % 4}",
            {"customer_id": f"c-{n % 6}", "type": "call", "occurred_at": "2026-11-30T08:00:00Z"},
        )
    ],
    "task": lambda n: [
        _mutation(
            "tasks",
            f"t-{n}",
            {
                "customer_id": f"c-{n % 6}",
                "title": "回访",
                "status": "open",
                "due_at": "2026-12-02T09:00:00Z",
            },
        )
    ],
    "lead": lambda n: [_mutation("leads", f"l-{n}", {"name": f"线索 {n}", "status": "new"})],
    "lead_converted_unlinked": lambda n: [
        _mutation("leads", f"l-c{n}", {"name": f"线索 {n}", "status": "converted"})
    ],
    "stage_as_anyone": lambda n: [
        _mutation("pipeline_stages", f"s-{n}", {"name": f"阶段 {n}", "position": n})
    ],
    "conflict_write": lambda n: [_mutation("_conflicts", f"cf-{n}", {"status": "resolved"})],
    "unknown_collection": lambda n: [_mutation("widgets", f"w-{n}", {"a": 1})],
    "reused_id": lambda n: [_mutation("customers", f"c-z{n}", customer(n + 800), mid="m-reused")],
    "group": lambda n: [
        _mutation("customers", f"c-g{n}", customer(n + 900), group=f"g-{n}"),
        _mutation(
            "contacts",
            f"p-g{n}",
            {"customer_id": f"c-g{n}", "name": f"联系人 g{n}"},
            group=f"g-{n}",
        ),
    ],
    "group_failing": lambda n: [
        _mutation("customers", f"c-h{n}", customer(n + 950), group=f"h-{n}"),
        _mutation("contacts", f"p-h{n}", {"customer_id": "c-missing"}, group=f"h-{n}"),
    ],
}


def _clocked(batches: list[Batch]) -> list[Batch]:
    """Give every mutation an HLC of its own (deterministic, the same for both runs)."""
    clocks = Clocks()
    return [(p, [{**m, "hlc": clocks.hlc(p.device_id or "dev")} for m in ms]) for p, ms in batches]


def _batch(principal: Principal, *picks: tuple[str, int]) -> Batch:
    return principal, [m for kind, n in picks for m in KINDS[kind](n)]


def test_a_bulk_push_of_new_customers_is_the_same_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = _clocked(
        [
            _batch(REP, *[("customer_same_phone", n) for n in range(40)]),
            _batch(REP, *[("customer", n) for n in range(6)], *[("task", n) for n in range(6)]),
        ]
    )
    answers = assert_paths_agree(tmp_path, batches, monkeypatch)
    # ... and the batch had what the fast path is for, and what it hands back to the rules:
    assert '"status":"applied"' in answers[0][0] and "possible_duplicate" in answers[0][0]


def test_every_kind_of_write_is_the_same_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kinds = list(KINDS)
    first = [_batch(p, *[(k, n) for n, k in enumerate(kinds)]) for p in PRINCIPALS]
    batches = _clocked(first)
    batches += batches[:2]  # replayed: every answer ``duplicate`` (or reused)
    batches += _clocked([_batch(REP, *[(k, n + 50) for n, k in enumerate(reversed(kinds))])])
    answers = assert_paths_agree(tmp_path, batches, monkeypatch)
    text = "".join(a[0] for a in answers)
    for code in (
        "validation_failed",
        "forbidden",
        "possible_duplicate",
        "group_rejected",
        "mutation_id_reused",
        "append_only",
        "unknown_collection",
        '"duplicate"',
    ):
        assert code in text, code


@st.composite
def mixed_batches(draw: st.DrawFn) -> list[Batch]:
    kinds = sorted(KINDS)
    out: list[Batch] = []
    for _ in range(draw(st.integers(1, 4))):
        if out and draw(st.integers(0, 4)) == 0:
            out.append(out[draw(st.integers(0, len(out) - 1))])  # a replay
            continue
        principal = draw(st.sampled_from(PRINCIPALS))
        picks = draw(
            st.lists(st.tuples(st.sampled_from(kinds), st.integers(0, 12)), min_size=1, max_size=12)
        )
        out.extend(_clocked([_batch(principal, *picks)]))
    return out


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=mixed_batches())
def test_mixed_batches_are_the_same_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batches: list[Batch]
) -> None:
    assert_paths_agree(tmp_path, batches, monkeypatch)


def test_the_fast_path_is_taken_for_new_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What it is for: a push of new customers goes through it, not through _apply."""
    calls: list[str] = []
    real = push.PushBatch._apply

    def counting(self: push.PushBatch, m: Any) -> Any:
        calls.append(m.id)
        return real(self, m)

    monkeypatch.setattr(push.PushBatch, "_apply", counting)
    path = tmp_path / "x.db"
    assert WORLD_TEMPLATE.fill(f"sqlite:///{path}")
    batches = _clocked([_batch(REP, *[("customer_same_phone", n) for n in range(3)])])
    _run(path, batches, fast=True, monkeypatch=monkeypatch)
    assert calls == []
