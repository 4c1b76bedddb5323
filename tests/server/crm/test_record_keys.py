"""``record_keys`` as one B-tree keyed ``(collection, key, record_id)`` (migration 0019):
a record's duplicate keys are replaced by difference with the keys of its stored fields
(:func:`server.crm.indexing.index_keys`) — after every kind of write the table holds
exactly the keys of the live records' fields; the migration keeps the keys it finds."""

from __future__ import annotations

import json
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text

from server.crm.indexing import IndexedRow, index_keys
from server.crm.keys import duplicate_keys
from server.db import make_engine
from server.migrate import alembic_config, upgrade
from tests.server.conftest import World, new_id


def customer(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "status": "potential", **fields}


def _held(world: World, record_ids: list[str]) -> set[tuple[str, str, str]]:
    marks = ", ".join(f"'{r}'" for r in record_ids)
    with world.context.engine.connect() as conn:
        return {
            tuple(r)  # type: ignore[misc]
            for r in conn.exec_driver_sql(
                f"SELECT collection, key, record_id FROM record_keys WHERE record_id IN ({marks})"
            )
        }


def _expected(world: World, record_ids: list[str]) -> set[tuple[str, str, str]]:
    """The keys of the stored fields of the live ``record_ids``."""
    marks = ", ".join(f"'{r}'" for r in record_ids)
    with world.context.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            f"SELECT collection, record_id, data, deleted FROM records WHERE record_id IN ({marks})"
        ).all()
    return {
        (c, k, rid)
        for c, rid, data, deleted in rows
        if not deleted
        for k in duplicate_keys(json.loads(data))
    }


def test_keys_follow_updates_deletes_and_undeletes(world: World) -> None:
    rep = world.phone("rep_a1")
    a, b = new_id("c"), new_id("c")
    ids = [a, b]
    fields = customer("许一", company="云杉科技", phone="+86 139 7100 0001", email="x1@k.cn")
    assert rep.push_one("customers", a, fields)["status"] == "applied"
    assert (
        rep.push_one("customers", b, customer("许二", phone="13971000002"))["status"] == "applied"
    )
    held = _held(world, ids)
    assert len(held) == 4 and held == _expected(world, ids)

    steps: list[dict[str, Any]] = [
        {"phone": "+86 139 7100 0003"},  # one key replaced
        {"notes": "no key field"},  # nothing to change
        {"company": "云杉"},  # same folded company (suffix dropped): same key
        {"company": "红杉资本", "email": None},  # one replaced, one gone
        {"mobile": "13971000004", "email": "X1@K.cn"},  # two added
    ]
    for change in steps:
        assert rep.push_one("customers", a, change)["status"] == "applied", change
        assert _held(world, ids) == _expected(world, ids), change

    assert rep.push_one("customers", a, op="delete")["status"] == "applied"
    assert {r for _c, _k, r in _held(world, ids)} == {b}
    again = customer("许一", company="红杉", phone="+86 139 7100 0005")
    assert rep.push_one("customers", a, again)["status"] in ("applied", "merged")
    held = _held(world, ids)
    assert held == _expected(world, ids) and {r for _c, _k, r in held} == {a, b}
    # A freed key is free: another customer may take the deleted number.
    free = customer("许三", phone="+86 139 7100 0003")
    assert rep.push_one("customers", new_id("c"), free)["status"] == "applied"


def test_several_writes_of_one_record_in_one_push(world: World) -> None:
    rep = world.phone("rep_a1")
    new, old = new_id("c"), new_id("c")
    assert rep.push_one("customers", old, customer("陈一", phone="13971100001"))["status"] == (
        "applied"
    )
    results = rep.push(
        [
            rep.mutation("customers", new, customer("陈二", phone="13971100002")),
            rep.mutation("customers", new, {"phone": "13971100003"}),
            rep.mutation("customers", old, {"phone": "13971100004"}),
            rep.mutation("customers", old, {"email": "c1@k.cn", "phone": "13971100005"}),
            # refused (the number is new's): nothing of it is kept
            rep.mutation("customers", new_id("c"), customer("陈三", phone="13971100003")),
        ]
    )
    assert [r["status"] for r in results][:4] == ["applied"] * 4
    assert results[4]["error"]["code"] == "possible_duplicate"
    held = _held(world, [new, old])
    assert held == _expected(world, [new, old])
    assert {k for _c, k, _r in held} == {"p:13971100003", "p:13971100005", "e:c1@k.cn"}


def test_a_lead_and_a_customer_may_share_a_key(world: World) -> None:
    rep = world.phone("rep_a1")
    lead, cust = new_id("l"), new_id("c")
    assert rep.push_one("customers", cust, customer("林一", phone="13971200001"))["status"] == (
        "applied"
    )
    lead_fields = {"name": "林一", "phone": "13971200001", "status": "new"}
    m = {**rep.mutation("leads", lead, lead_fields), "override": ["possible_duplicate"]}
    [result] = rep.push([m])
    assert result["status"] == "applied", result
    held = _held(world, [lead, cust])
    assert held == {("customers", "p:13971200001", cust), ("leads", "p:13971200001", lead)}


def test_a_key_left_over_never_fails_a_write(world: World) -> None:
    """Were ``record_keys`` ever not what the stored fields give (a normalisation
    changed without a re-backfill), a write still succeeds: a key already there is
    skipped, and a leftover key names no duplicate (candidates are re-checked)."""
    rep = world.phone("rep_a1")
    a, b = new_id("c"), new_id("c")
    assert rep.push_one("customers", a, customer("郑一", phone="13971300001"))["status"] == (
        "applied"
    )
    with world.context.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO record_keys (collection, record_id, key) VALUES "
            f"('customers', '{a}', 'p:13971300002'), ('customers', '{a}', 'e:stale@k.cn'), "
            f"('customers', '{b}', 'p:13971300003')"
        )
    # a's new phone is already held for it; b is created with a key held for it already
    assert rep.push_one("customers", a, {"phone": "13971300002"})["status"] == "applied"
    assert rep.push_one("customers", b, customer("郑二", phone="13971300003"))["status"] == (
        "applied"
    )
    # a stale key of a is not a duplicate of a new customer with that e-mail
    c = customer("郑三", email="stale@k.cn")
    assert rep.push_one("customers", new_id("c"), c)["status"] == "applied"
    assert ("customers", "p:13971300002", a) in _held(world, [a])


def test_an_update_of_a_stored_row_needs_its_stored_fields(world: World) -> None:
    row = IndexedRow("customers", "c-x", customer("x", phone="13971400001"), False)
    with world.context.engine.connect() as conn, pytest.raises(ValueError, match="stored"):
        index_keys(conn, [row])


def test_0019_keeps_the_keys_and_goes_back(db_url: str) -> None:
    upgrade(db_url, "0018_unlogged_claims")
    rows = [
        ("customers", "c-1", "p:13900000001"),
        ("customers", "c-1", "e:a@b.cn"),
        ("customers", "c-2", "p:13900000001"),  # two records with one key
        ("leads", "l-1", "p:13900000001"),
        ("customers", "c-2", "n:zhang|xingchen"),
    ]
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            for c, r, k in [*rows, rows[0]]:  # the old table let a row repeat
                conn.execute(
                    text(
                        "INSERT INTO record_keys (collection, record_id, key) VALUES (:c, :r, :k)"
                    ),
                    {"c": c, "r": r, "k": k},
                )
        upgrade(db_url, "0019_record_keys_by_key")

        def held() -> list[tuple[str, str, str]]:
            with engine.connect() as conn:
                return sorted(
                    (c, r, k)
                    for c, r, k in conn.exec_driver_sql(
                        "SELECT collection, record_id, key FROM record_keys"
                    )
                )

        assert held() == sorted(rows)
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                [sql] = conn.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE name = 'record_keys'"
                ).one()
                assert "WITHOUT ROWID" in sql.upper()
                indexes = conn.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'record_keys'"
                ).all()
                assert [n for (n,) in indexes if not n.startswith("sqlite_autoindex")] == []
            else:
                indexes = conn.exec_driver_sql(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'record_keys'"
                ).all()
                assert [n for n, _ in indexes] == ["record_keys_pkey"]
                assert "(collection, key, record_id)" in indexes[0][1]
            # the duplicate check's lookup is a search of the primary key (PostgreSQL:
            # where a scan of these five rows is not cheaper)
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SET enable_seqscan = off")
            plan = str(
                conn.exec_driver_sql(
                    ("EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN ")
                    + "SELECT collection, record_id, key FROM record_keys "
                    "WHERE collection IN ('customers') AND key = 'p:13900000001'"
                ).all()
            )
            assert "PRIMARY KEY" in plan or "record_keys_pkey" in plan, plan
        command.downgrade(alembic_config(db_url), "0018_unlogged_claims")
        assert held() == sorted(rows)
        upgrade(db_url)
        assert held() == sorted(rows)
    finally:
        engine.dispose()
