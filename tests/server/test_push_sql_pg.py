"""What a push sends PostgreSQL, not how fast (issue 17): the shape of the bulk writes
behind each PostgreSQL-side optimisation, and that awkward values survive it.

* Every bulk write of a push (records inserted and updated, idempotency results, audit
  rows, duplicate keys, reminders) unpacks its rows from one ``jsonb`` array parameter:
  ``e->>i`` on a ``json`` value lexes the element's text again up to column ``i`` —
  once per column, through every escaped ``data``/``clocks`` string before it — which
  cost the records INSERT ~2.5× the PostgreSQL CPU (``bench.push_bench``, CPU split).
* Lists of keys (record ids to look up or delete, duplicate keys to claim and look up)
  travel as one JSON text unpacked by ``jsonb_array_elements_text``, never as a Python
  list: psycopg builds a text array's literal in Python, escaping element by element
  (~11 ms of server CPU for the ~4,000 duplicate keys of 1,000 new customers).
* Claiming a push's duplicate keys (rows of ``duplicate_key_claims``, migration 0016)
  writes no WAL: the table is UNLOGGED (migration 0018) — a claim is a lock, not data.
  Concurrent pushes of one phone still take turns
  (``tests/server/test_counter_pg.py::test_two_concurrent_pushes_cannot_both_create_one_phone``).
* Values that need escaping (quotes, backslashes, control characters, astral-plane
  characters, JSON-looking text) come back exactly as pushed, through the insert and
  the update path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event

from server.repository.writing import key_list
from tests.server.conftest import World, build_world, customer_fields, new_id


@pytest.fixture
def world(postgres_url: str) -> Iterator[World]:
    w, client = build_world(postgres_url, search_index_interval_s=0)
    with client:
        yield w
    w.context.engine.dispose()


@contextmanager
def statements(engine: Engine, params: list[Any] | None = None) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        seen.append(re.sub(r"\s+", " ", statement))
        if params is not None:
            params.append(parameters)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


_AWKWARD = [
    'quote " and \\ backslash \\" \\\\',
    "tab\tnew\nline\rreturn \x01\x1f",
    "张三 😀 𠀀 e\u0301 \u2028\u2029",
    '{"looks": ["like", "json"], "n": 1}',
    "e->>0 '; DROP TABLE records; --",
]


def _bulk(seen: list[str]) -> list[str]:
    """The push's multi-row writes (INSERT … SELECT / UPDATE … FROM an array)."""
    return [
        s
        for s in seen
        if re.match(r"(INSERT INTO \w+ \(.*\) SELECT|UPDATE \w+ AS \w+ SET)", s)
        and re.search(r"\bjsonb?_array_elements\(", s)
    ]


def test_bulk_writes_unpack_one_jsonb_array_and_round_trip_awkward_values(world: World) -> None:
    phone = world.phone("rep_a1")
    ids = [new_id("c") for _ in _AWKWARD]
    creates = [
        phone.mutation(
            "customers",
            rid,
            {**customer_fields(f"客户 {i}"), "notes": text, "company": text[:20]},
        )
        for i, (rid, text) in enumerate(zip(ids, _AWKWARD, strict=True))
    ]
    with statements(world.context.engine) as sql:
        results = phone.push(creates)
    assert [r["status"] for r in results] == ["applied"] * len(ids)
    versions = {rid: r["version"] for rid, r in zip(ids, results, strict=True)}
    updates = [
        phone.mutation(
            "customers",
            rid,
            {"notes": text[::-1] + " ✓"},
            base_version=versions[rid],
        )
        for rid, text in zip(ids, _AWKWARD, strict=True)
    ]
    with statements(world.context.engine) as sql_update:
        results = phone.push(updates)
    assert [r["status"] for r in results] == ["applied"] * len(ids)

    bulk = _bulk(sql) + _bulk(sql_update)
    tables = {re.match(r"(?:INSERT INTO|UPDATE) (\w+)", s).group(1) for s in bulk}  # type: ignore[union-attr]
    # records inserted and updated, results, audit rows, duplicate keys, reminders
    assert {"records", "applied_mutations", "audit_log", "record_keys"} <= tables
    for s in bulk:
        assert "jsonb_array_elements(%s::jsonb)" in s, s
        assert "json_array_elements(" not in s, s

    reader = world.phone("rep_a1")
    pulled = {c["record_id"]: c["fields"] for c in reader.sync_down() if c["record_id"] in ids}
    for rid, text in zip(ids, _AWKWARD, strict=True):
        assert pulled[rid]["notes"] == text[::-1] + " ✓"
        assert pulled[rid]["company"] == text[:20]


def test_key_lists_travel_as_one_json_text_not_a_python_list(world: World) -> None:
    phone = world.phone("rep_a1")
    ids = [new_id("c") for _ in range(30)]
    creates = [
        phone.mutation("customers", rid, {**customer_fields(f"客户 {i}"), "email": f"k{i}@x.cn"})
        for i, rid in enumerate(ids)
    ]
    params: list[Any] = []
    with statements(world.context.engine, params) as sql:
        results = phone.push(creates)
        results += phone.push(
            [
                phone.mutation("customers", rid, {"phone": f"+86 139 {i:04d} 1111"})
                for i, rid in enumerate(ids)
            ]
        )
    assert {r["status"] for r in results} == {"applied"}
    keyed = [(s, p) for s, p in zip(sql, params, strict=True) if "k.key" in s or "k(key)" in s]
    # records looked up, duplicate keys claimed and looked up, derived rows deleted by key
    assert any(s.startswith("SELECT q.*") and "FROM records" in s for s, _ in keyed)
    assert any(s.startswith("INSERT INTO duplicate_key_claims") for s, _ in keyed)
    assert any(s.startswith("SELECT q.*") and "FROM record_keys" in s for s, _ in keyed)
    assert any(s.startswith("DELETE FROM reminders") for s, _ in keyed)
    # the old phones' duplicate keys: deleted by their full key (migration 0019), the
    # (collection, key, record_id) triples as one JSON array
    [(gone, gone_params)] = [
        (s, p) for s, p in zip(sql, params, strict=True) if s.startswith("DELETE FROM record_keys")
    ]
    assert "jsonb_array_elements(%s::jsonb) AS e" in gone
    triples = json.loads(gone_params[0])
    assert sorted(r for _c, _k, r in triples) == sorted(ids)
    assert all(c == "customers" and k.startswith("p:") for c, k, _r in triples)
    for statement, p in keyed:
        assert "jsonb_array_elements_text(%s::jsonb) AS k(key)" in statement, statement
        assert isinstance(p[0], str) and isinstance(json.loads(p[0]), list), statement
    for p in params:  # no Python list in any statement of the push
        values = p.values() if isinstance(p, dict) else p or ()
        assert not any(isinstance(v, list | tuple) for v in values), p

    # A key that needs escaping in JSON is still claimed and found: a duplicate is caught.
    awkward = {**customer_fields("引号"), "email": 'o"brien\\x@x.cn'}
    [first] = phone.push([phone.mutation("customers", new_id("c"), awkward)])
    twin = {**customer_fields("引号二"), "email": awkward["email"]}
    [second] = phone.push([phone.mutation("customers", new_id("c"), twin)])
    assert first["status"] == "applied", first
    assert second["status"] == "rejected" and second["error"]["code"] == "possible_duplicate"


def test_claiming_duplicate_keys_writes_no_wal(world: World) -> None:
    phone = world.phone("rep_a1")
    params: list[Any] = []
    with statements(world.context.engine, params) as sql:
        phone.push([phone.mutation("customers", new_id("c"), customer_fields()) for _ in range(20)])
    [(claim, _)] = [(s, p) for s, p in zip(sql, params, strict=True) if "duplicate_key_claims" in s]
    fresh = key_list([f"p:139{i:08d}" for i in range(400)])
    with world.context.engine.connect() as conn:
        persistence = conn.exec_driver_sql(
            "SELECT relpersistence FROM pg_class WHERE relname = 'duplicate_key_claims'"
        ).scalar_one()
        [[plan]] = conn.exec_driver_sql(
            "EXPLAIN (ANALYZE, WAL, FORMAT JSON) " + claim, (fresh,)
        ).all()
        conn.rollback()
    top = plan[0]["Plan"]
    assert top["Tuples Inserted"] == 400  # 400 new claims ...
    assert (top["WAL Records"], top["WAL Bytes"]) == (0, 0)  # ... and no WAL for them
    assert persistence == "u"
