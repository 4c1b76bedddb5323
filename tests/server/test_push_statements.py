"""What a push asks the database, not how fast: the behaviour behind each push
optimisation (issue 19), checked on the statements a real push sends.

* Lookups of a batch's records (and, on a retry, of its stored mutation results) are
  plan-stable on PostgreSQL: one JSON array parameter looked up key by key
  (``jsonb_array_elements_text`` + ``LATERAL … OFFSET 0``), the same statement text for 3 ids and for 300, planned as
  an index lookup on a bulk-loaded table that was never analysed — where ``= ANY`` and
  ``IN (…)`` are planned as a scan of the whole collection.
* The idempotency check is the ``INSERT … ON CONFLICT DO NOTHING`` that stores the
  results: a fresh batch reads nothing from ``applied_mutations`` first; a retry is
  caught by that INSERT and still answers ``duplicate``.
* Each table is written with one statement per batch, whatever its size.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from server.db import make_engine
from server.migrate import upgrade
from tests.server.conftest import Phone, World, build_world, customer_fields, new_id


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    """The two-team world without the background search indexer: the statements seen
    are the push's own."""
    w, client = build_world(db_url, search_index_interval_s=0)
    with client:
        yield w
    w.context.engine.dispose()


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement sent through ``engine`` meanwhile (whitespace folded)."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(re.sub(r"\s+", " ", statement))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _batch(phone: Phone, n: int) -> list[dict[str, Any]]:
    return [
        phone.mutation("customers", new_id("c"), customer_fields(f"客户 {i}")) for i in range(n)
    ]


def _on(table: str, sql: list[str], verb: str) -> list[str]:
    return [s for s in sql if s.upper().startswith(verb) and re.search(rf"\b{table}\b", s)]


def test_a_fresh_batch_checks_idempotency_with_one_insert_on_conflict(world: World) -> None:
    phone = world.phone("rep_a1")
    small, large = _batch(phone, 3), _batch(phone, 300)
    with statements(world.context.engine) as sql:
        assert all(r["status"] == "applied" for r in phone.push(small))
    with statements(world.context.engine) as sql_large:
        assert all(r["status"] == "applied" for r in phone.push(large))
    for seen in (sql, sql_large):
        assert _on("applied_mutations", seen, "SELECT") == []  # nothing read first
        [insert] = _on("applied_mutations", seen, "INSERT")
        assert "ON CONFLICT (user_id, device_id, mutation_id) DO NOTHING" in insert
        # One statement per table, whatever the batch size.
        assert len(_on("records", seen, "INSERT")) == 1
        assert len(_on("audit_log", seen, "INSERT")) == 1

    # A retry is caught by that INSERT: the batch is applied again with the stored
    # results loaded, answers ``duplicate`` and stores nothing twice.
    with statements(world.context.engine) as retry:
        again = phone.push(small)
    assert [r["status"] for r in again] == ["duplicate"] * 3
    assert len(_on("applied_mutations", retry, "SELECT")) == 1
    with world.context.sessions() as s:
        ids = [m["id"] for m in small]
        stored = s.execute(
            text("SELECT count(*) FROM applied_mutations WHERE mutation_id IN (:a, :b, :c)"),
            dict(zip("abc", ids, strict=True)),
        ).scalar_one()
    assert stored == 3


def test_record_lookups_are_plan_stable_on_postgresql(postgres_url: str) -> None:
    w, client = build_world(postgres_url, search_index_interval_s=0)
    with client:
        phone = w.phone("rep_a1")
        created = _batch(phone, 300)
        phone.push(created)
        edits = [
            [phone.mutation("customers", m["record_id"], {"tier": "high"}) for m in created[:n]]
            for n in (3, 300)
        ]
        lookups = []
        for batch in edits:
            with statements(w.context.engine) as sql:
                assert all(r["status"] == "applied" for r in phone.push(batch))
            [lookup] = [s for s in _on("records", sql, "SELECT") if "record_id = k.key" in s]
            assert "jsonb_array_elements_text(%s::jsonb)" in lookup and " IN (" not in lookup
            lookups.append(lookup)
        assert lookups[0] == lookups[1]  # one statement text for 3 ids and for 300
    w.context.engine.dispose()


def test_the_lookup_is_an_index_scan_on_a_never_analysed_bulk_load(postgres_url: str) -> None:
    """20,000 rows loaded into a table whose statistics were never gathered
    (autovacuum off): the push's lookup statement is still planned on the index."""
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE records SET (autovacuum_enabled = false)"))
            conn.execute(
                text(
                    "INSERT INTO records (collection, record_id, owner_id, version, deleted,"
                    " data, clocks, created_at_ms, updated_at_ms) SELECT 'customers',"
                    " 'c-' || g, 'u-1', g, false, '{}', '{}', 0, 0"
                    " FROM generate_series(1, 20000) AS g"
                )
            )
        from server.repository.push import _LOAD_ROWS
        from server.repository.writing import key_list, lookup

        ids = [f"c-{i}" for i in range(1, 20000, 20)]  # 1,000 ids
        with statements(engine) as sql, engine.connect() as conn:
            assert len(lookup(conn, _LOAD_ROWS, "record_id", ids, ("customers",))) == 1000
        [statement] = sql
        with engine.connect() as conn:
            conn.execute(text("SET enable_seqscan = off"))  # even without seq scans ...
            naive = _plan(conn, _LOAD_ROWS.format("%s", "record_id = ANY(%s)"), "customers", ids)
            conn.execute(text("RESET enable_seqscan"))
            plan = _plan(conn, statement, key_list(ids), "customers")
        # ... = ANY filters the whole collection out of the index prefix (the defect) ...
        assert "Filter: ((record_id)::text = ANY" in naive, naive
        # ... while the push looks each id up on the full unique key.
        assert "Index Cond: (((collection)::text = 'customers'::text) AND " in plan, plan
        assert "record_id)::text = k.key" in plan, plan
        assert "Seq Scan" not in plan and "Bitmap" not in plan, plan
    finally:
        engine.dispose()


def _plan(conn: Any, statement: str, *args: Any) -> str:
    return "\n".join(str(r[0]) for r in conn.exec_driver_sql("EXPLAIN " + statement, args))


def test_upgrade_and_seed_demo_refresh_planner_statistics(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``fieldsync db upgrade`` and ``fieldsync seed-demo`` end with ANALYZE."""
    from server.cli import main

    def analysed(table: str) -> int:
        engine = make_engine(postgres_url)
        try:
            with engine.connect() as conn:
                return int(
                    conn.execute(
                        text("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = :t"),
                        {"t": table},
                    ).scalar_one()
                )
        finally:
            engine.dispose()

    assert main(["db", "upgrade", "--database-url", postgres_url]) == 0
    after_upgrade = analysed("records")
    assert after_upgrade >= 1
    monkeypatch.setenv("FIELDSYNC_SECRET_KEY", "x" * 40)
    assert main(["seed-demo", "--database-url", postgres_url, "--customers", "20"]) == 0
    assert analysed("records") > after_upgrade


def test_duplicate_keys_of_a_whole_push_are_read_in_one_query(world: World) -> None:
    phone = world.phone("rep_a1")
    with statements(world.context.engine) as sql:
        assert all(r["status"] == "applied" for r in phone.push(_batch(phone, 40)))
    assert len(_on("record_keys", sql, "SELECT")) == 1
    # ... and a duplicate is still caught, against the stored keys and within the push.
    first = customer_fields("王五")
    twin = {**customer_fields("王五"), "phone": first["phone"]}
    [stored] = phone.push([phone.mutation("customers", new_id("c"), first)])
    results = phone.push(
        [
            phone.mutation("customers", new_id("c"), twin),
            phone.mutation(
                "customers", new_id("c"), {**customer_fields("赵六"), "email": "z@x.cn"}
            ),
            phone.mutation(
                "customers", new_id("c"), {**customer_fields("钱七"), "email": "z@x.cn"}
            ),
        ]
    )
    assert stored["status"] == "applied"
    assert [r["status"] for r in results] == ["rejected", "applied", "rejected"]
    assert {r["error"]["code"] for r in (results[0], results[2])} == {"possible_duplicate"}


def test_derived_rows_are_deleted_by_key_and_not_at_all_for_new_records(world: World) -> None:
    phone = world.phone("rep_a1")
    created = _batch(phone, 5)
    with statements(world.context.engine) as sql:
        phone.push(created)
    for table in ("record_keys", "reminders"):
        assert _on(table, sql, "DELETE") == []  # new records: nothing to replace
    # search entries are caught up after the push (server/crm/indexing.py)
    assert [s for s in sql if re.search(r"\brecord_search\b", s)] == []
    with statements(world.context.engine) as sql:
        phone.push([phone.mutation("customers", m["record_id"], {"name": "新名"}) for m in created])
    assert [s for s in sql if re.search(r"\brecord_search\b", s)] == []
    # The keys did not change (a name without a company gives none): not a statement on
    # ``record_keys``; the reminders are deleted by record and written again.
    assert [s for s in sql if re.search(r"\brecord_keys\b", s) and "SELECT" not in s] == []
    [reminders] = _on("reminders", sql, "DELETE")
    with statements(world.context.engine) as sql:
        phone.push(
            [
                phone.mutation("customers", m["record_id"], {"phone": f"+86 137 {i:04d} 5555"})
                for i, m in enumerate(created)
            ]
        )
    # Keys replaced by difference: the old phone's key deleted by its full key (no index
    # by record: migration 0019), the new one inserted.
    [deletes] = _on("record_keys", sql, "DELETE")
    assert len(_on("record_keys", sql, "INSERT")) == 1
    if world.db_url.startswith("sqlite"):
        assert "WHERE collection = ? AND record_id IN (" in reminders
        assert "WHERE collection = ? AND key = ? AND record_id = ?" in deletes
        with world.context.engine.connect() as conn:
            for statement, args in (
                (reminders, ("customers", *["x"] * 5)),
                (deletes, ("customers", "p:1", "x")),
            ):
                plan = str(conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, args).all())
                assert "USING INDEX" in plan or "PRIMARY KEY" in plan, plan
    else:
        assert "ctid = ANY(ARRAY(SELECT q.ctid FROM jsonb_array_elements_text(" in reminders
        assert "ctid = ANY(ARRAY(SELECT q.ctid FROM jsonb_array_elements(" in deletes
        assert "key = e->>1 AND record_id = e->>2 OFFSET 0" in deletes
