"""The duplicate check's fast paths (issue 19: one key computation per member, no
object per key nobody holds, a unit whose keys no record holds answered without building
candidates) answer exactly what the frozen reference (:mod:`.reference_duplicates`, on
the reference keys) answers — results, error codes, messages, ``details.matches`` in
order — and store the same records and byte-identical duplicate keys, on random pushes
through the real engine: customers and leads, new and updated and deleted, groups,
overrides, several writers (visible and invisible matches), values that fold together
(Han / pinyin / homophones, legal forms, phone formats, e-mail case) and awkward ones."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection

from server.accounts import Principal
from server.crm import CRM_RULES, CrmRules
from server.crm.duplicates import DuplicatesRule
from server.repository import apply_push
from sync_protocol import CRM_SCHEMA, HybridLogicalClock, Mutation
from tests.server.conftest import World, build_world
from tests.server.crm import reference_keys as ref
from tests.server.crm.reference_duplicates import ReferenceDuplicatesRule

REFERENCE_RULES = CrmRules(
    [ReferenceDuplicatesRule() if isinstance(r, DuplicatesRule) else r for r in CRM_RULES.rules]
)
WRITERS = {
    "rep_a1": Principal("u-rep_a1", "rep", "team-a", frozenset(), "dev-a1"),
    "rep_a2": Principal("u-rep_a2", "rep", "team-a", frozenset(), "dev-a2"),
    "rep_b1": Principal("u-rep_b1", "rep", "team-b", frozenset(), "dev-b1"),
    "mgr_a": Principal(
        "u-mgr_a", "manager", "team-a", frozenset({"u-mgr_a", "u-rep_a1", "u-rep_a2"}), "dev-m"
    ),
}
PHONES = [
    "+86 138 0000 0001",
    "13800000001",
    "0086-138-0000-0001",
    "(021) 5555-0001",
    "021 5555 0001",
    "１３８ ００００ ０００１",
    "+86 139 0000 0002",
    "12345",
    "",
]
EMAILS = ["a@x.cn", "A@X.CN", "b@x.cn", " A@X.cn ", "not-an-email", ""]
NAMES = ["张三", "Zhang San", "章三", "李四", "Li Si", "客户 Customer 1", "ΑΣ", "🙂", "  ", ""]
COMPANIES = ["星辰科技有限公司", "星辰科技", "Xingchen Keji Co., Ltd.", "Costco", "公司", ""]
RECORDS = {"customers": ["c1", "c2", "c3", "c4", "c5"], "leads": ["l1", "l2", "l3"]}


def _mostly(valid: list[str], awkward: list[str]) -> st.SearchStrategy[str]:
    """One of ``valid`` (the schema accepts them) nine times in ten."""
    return st.sampled_from(valid * 3 + awkward)


_fields = {
    "customers": st.fixed_dictionaries(
        {},
        optional={
            "phone": _mostly(PHONES[:-2], PHONES[-2:]),
            "mobile": _mostly(PHONES[:-2], PHONES[-2:]),
            "email": _mostly(EMAILS[:3], EMAILS[3:]),
            "name": _mostly(NAMES[:-2], NAMES[-2:]),
            "company": st.sampled_from(COMPANIES),
        },
    ),
    "leads": st.fixed_dictionaries(  # a lead has no mobile
        {},
        optional={
            "phone": _mostly(PHONES[:-2], PHONES[-2:]),
            "email": _mostly(EMAILS[:3], EMAILS[3:]),
            "name": _mostly(NAMES[:-2], NAMES[-2:]),
            "company": st.sampled_from(COMPANIES),
        },
    ),
}


@st.composite
def _mutation(draw: Any) -> dict[str, Any]:
    collection = draw(st.sampled_from(sorted(RECORDS)))
    fields = draw(_fields[collection])
    if draw(st.integers(0, 9)):  # mostly a valid new record's required fields
        fields.setdefault("name", "某人")
        fields["status"] = "potential" if collection == "customers" else "new"
    op = "delete" if draw(st.integers(0, 9)) == 0 else "upsert"
    return {
        "collection": collection,
        "record_id": draw(st.sampled_from(RECORDS[collection])),
        "op": op,
        "fields": fields if op == "upsert" else {},
        "override": ["possible_duplicate"] if draw(st.integers(0, 7)) == 0 else None,
        "group": draw(st.sampled_from([None] * 6 + ["g1", "g2"])),
    }


_pushes = st.lists(
    st.tuples(st.sampled_from(sorted(WRITERS)), st.lists(_mutation(), min_size=1, max_size=8)),
    min_size=1,
    max_size=4,
)


@pytest.fixture(scope="module")
def sqlite_crm_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    url = f"sqlite:///{tmp_path_factory.mktemp('dupfast')}/w.db"
    w, client = build_world(url)
    with client:
        yield w
    w.context.engine.dispose()


_ids = itertools.count()


def _snapshot(conn: Connection) -> tuple[list[Any], list[Any]]:
    keys = conn.exec_driver_sql(
        "SELECT collection, record_id, key FROM record_keys ORDER BY collection, record_id, key"
    ).all()
    records = conn.exec_driver_sql(
        "SELECT collection, record_id, owner_id, version, deleted, data FROM records "
        "WHERE collection IN ('customers', 'leads') ORDER BY collection, record_id"
    ).all()
    return [tuple(k) for k in keys], [tuple(r) for r in records]


def _run(conn: Connection, rules: CrmRules, writer: str, mutations: list[Mutation]) -> Any:
    clock = HybridLogicalClock("server", wall=lambda: 1_800_000_000_000)
    out = apply_push(
        conn,
        WRITERS[writer],
        CRM_SCHEMA,
        mutations,
        now_ms=1_800_000_000_000,
        server_hlc=lambda: clock.now().encode(),
        rules=rules,
    )
    results = [r.model_dump(mode="json") for r in out.results]
    return (results, out.counter, out.applied, out.rejected), _snapshot(conn)


@settings(
    max_examples=int(os.environ.get("DUP_EXAMPLES", "300")),  # 3,000 passed at 16:50 (~100 s)
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(_pushes)
def test_the_fast_check_answers_and_stores_what_the_reference_does(
    sqlite_crm_world: World, pushes: list[tuple[str, list[dict[str, Any]]]]
) -> None:
    device_clock = HybridLogicalClock("device", wall=lambda: 1_799_999_000_000)
    with sqlite_crm_world.context.engine.connect() as conn:
        outer = conn.begin()
        try:
            for writer, drawn in pushes:
                mutations = [
                    Mutation(id=f"m-{next(_ids)}", hlc=device_clock.now().encode(), **m)
                    for m in drawn
                ]
                fast = conn.begin_nested()
                got = _run(conn, CRM_RULES, writer, mutations)
                fast.rollback()
                reference = conn.begin_nested()
                expected = _run(conn, REFERENCE_RULES, writer, mutations)
                reference.commit()  # the next push starts from here
                assert got == expected
                for result in expected[0][0]:
                    error = result["error"]
                    event(error["code"] if error else result["status"])
                    if error and error["code"] == "validation_failed":
                        event(error["message"][:60])
                    if error and error["code"] == "possible_duplicate":
                        matches = error["details"]["matches"]
                        event(f"{len(matches)} matches, visible: {'visible' not in matches[0]}")
                # ... and the stored keys are the reference keys of every live record.
                stored_keys, records = expected[1]
                live = {(c, r) for c, r, _o, _v, deleted, _d in records if not deleted}
                for collection, record_id in live:
                    row = conn.exec_driver_sql(
                        "SELECT data FROM records WHERE collection = ? AND record_id = ?",
                        (collection, record_id),
                    ).scalar_one()
                    fields = json.loads(row) if row else {}
                    assert {k for c, r, k in stored_keys if (c, r) == (collection, record_id)} == (
                        ref.duplicate_keys(fields)
                    )
        finally:
            outer.rollback()


_person = {"name": "王五", "status": "potential"}


def test_a_key_only_the_merged_record_has_is_read_after_the_batch_read(
    sqlite_crm_world: World,
) -> None:
    """The batch reads the keys of every mutation at its first check; an update naming
    only ``company`` makes a name + company key no mutation carries: read when asked."""
    device_clock = HybridLogicalClock("device", wall=lambda: 1_799_999_000_000)

    def push(*mutations: dict[str, Any]) -> list[dict[str, Any]]:
        batch = [
            Mutation(id=f"m-{next(_ids)}", hlc=device_clock.now().encode(), op="upsert", **m)
            for m in mutations
        ]
        (results, *_), _ = _run(conn, CRM_RULES, "rep_a1", batch)
        return results

    with sqlite_crm_world.context.engine.connect() as conn:
        outer = conn.begin()
        try:
            first = push(
                {
                    "collection": "customers",
                    "record_id": "k1",
                    "fields": {**_person, "company": "星辰科技"},
                },
                {
                    "collection": "customers",
                    "record_id": "k2",
                    "fields": {**_person, "company": "月亮公司"},
                },
            )
            assert [r["status"] for r in first] == ["applied", "applied"]
            results = push(
                {
                    "collection": "customers",
                    "record_id": "k3",
                    "fields": {"name": "赵六", "status": "potential", "phone": "13900000009"},
                },
                {
                    "collection": "customers",
                    "record_id": "k2",
                    "fields": {"company": "星辰科技有限公司"},
                },
            )
            assert results[0]["status"] == "applied"
            assert results[1]["error"]["code"] == "possible_duplicate"
            assert results[1]["error"]["details"]["matches"][0]["record_id"] == "k1"
        finally:
            outer.rollback()
