"""Custom fields in one push (issue 19): with nothing declared, a record's ``custom``
value is not checked (the rule skips the per-record work); the declarations are parsed
once per push and reused while they are unchanged — a declaration the same push writes,
rewrites or deletes counts from where the push writes it (and not before), and one a
refused unit changed counts as it was before that unit."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection

from server.accounts import Principal
from server.crm import CRM_RULES
from server.repository import apply_push
from sync_protocol import CRM_SCHEMA, HybridLogicalClock, Mutation
from tests.server.conftest import World, build_world

ADMIN = Principal("u-admin", "admin", None, frozenset(), "dev-admin")
_ids = itertools.count()
_clock = HybridLogicalClock("device", wall=lambda: 1_799_999_000_000)


@pytest.fixture(scope="module")
def sqlite_crm_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    url = f"sqlite:///{tmp_path_factory.mktemp('customfields')}/w.db"
    w, client = build_world(url)
    with client:
        yield w
    w.context.engine.dispose()


def _push(conn: Connection, *mutations: tuple[Any, ...]) -> list[Any]:
    """Each mutation ``(collection, fields[, record_id[, op[, group]]])``."""
    batch = []
    for collection, fields, *rest in mutations:
        record_id, op, group = (*rest, None, None, None)[:3] if rest else (None, None, None)
        batch.append(
            Mutation(
                id=f"m-{next(_ids)}",
                collection=collection,
                record_id=record_id or f"r-{next(_ids)}",
                op=op or "upsert",
                fields=fields if op != "delete" else {},
                hlc=_clock.now().encode(),
                group=group,
            )
        )
    out = apply_push(
        conn,
        ADMIN,
        CRM_SCHEMA,
        batch,
        now_ms=1_800_000_000_000,
        server_hlc=lambda: _clock.now().encode(),
        rules=CRM_RULES,
    )
    return [
        "ok"
        if r.error is None
        else [f["field"] + ":" + f["code"] for f in r.error.details.get("fields", ())]
        or r.error.code.value
        for r in out.results
    ]


REQUIRED = {"entity": "customers", "key": "tier2", "type": "number", "label": "T", "required": True}


def test_a_declaration_counts_from_where_the_push_writes_it(sqlite_crm_world: World) -> None:
    free = {"name": "甲", "status": "potential", "custom": {"anything": [1]}}
    with sqlite_crm_world.context.engine.connect() as conn:
        outer = conn.begin()
        try:
            assert _push(conn, ("customers", free)) == ["ok"]  # nothing declared
            assert _push(
                conn,
                ("customers", free),  # checked before the declaration exists
                ("custom_field_defs", REQUIRED),
                ("customers", free),
                ("customers", {**free, "custom": {"tier2": 3}}),
            ) == ["ok", "ok", ["custom.anything:unknown_field", "custom.tier2:required"], "ok"]
            # ... and stored, it counts for the next push
            assert _push(conn, ("customers", {**free, "custom": {}})) == [["custom.tier2:required"]]
        finally:
            outer.rollback()


def test_declarations_rewritten_deleted_or_rolled_back_in_a_push_count_as_they_stand(
    sqlite_crm_world: World,
) -> None:
    free = {"name": "乙", "status": "potential"}
    number = {**REQUIRED, "key": "tier3", "type": "number", "required": False}
    with sqlite_crm_world.context.engine.connect() as conn:
        outer = conn.begin()
        try:
            assert _push(conn, ("custom_field_defs", number, "d-tier3")) == ["ok"]
            assert _push(
                conn,
                ("customers", {**free, "custom": {"tier3": 1}}),
                ("customers", {**free, "custom": {"tier3": "x"}}),
                # rewritten: now required text
                ("custom_field_defs", {**number, "type": "string", "required": True}, "d-tier3"),
                ("customers", {**free, "custom": {"tier3": "x"}}),
                ("customers", {**free, "custom": {}}),
                ("custom_field_defs", {}, "d-tier3", "delete"),
                ("customers", {**free, "custom": {"tier3": 1, "other": 2}}),
            ) == [
                "ok",
                ["custom.tier3:type"],
                "ok",
                "ok",
                ["custom.tier3:required"],
                "ok",
                "ok",
            ]
            assert _push(conn, ("custom_field_defs", number, "d-tier4")) == ["ok"]
            assert _push(
                conn,
                ("customers", {**free, "custom": {"tier3": 1}}),
                # a group refused: its rewrite of the declaration does not stay
                ("custom_field_defs", {**number, "type": "string"}, "d-tier4", None, "g"),
                ("customers", {**free, "custom": {"tier3": 2}}, None, None, "g"),
                ("customers", {**free, "custom": {"tier3": 3}}),
            ) == ["ok", "group_rejected", ["custom.tier3:type"], "ok"]
        finally:
            outer.rollback()


def test_a_declaration_changed_in_place_is_parsed_again() -> None:
    """The parsed declarations are reused by the declarations' value, not identity."""
    from types import SimpleNamespace

    from server.crm import custom

    fields = {**REQUIRED, "key": "tier5", "type": "number"}
    state = SimpleNamespace(record=SimpleNamespace(fields=fields, deleted=False))
    batch: Any = SimpleNamespace(
        scratch={custom._DEFINITION_IDS: {"d5"}},
        rows={(custom.DEFINITIONS_COLLECTION, "d5"): state},
    )
    assert custom._definitions(batch, "customers")["tier5"].type == "number"
    assert custom._definitions(batch, "customers") is custom._definitions(batch, "customers")
    fields["type"] = "string"
    assert custom._definitions(batch, "customers")["tier5"].type == "string"
    fields["options"] = ["a"]
    fields["type"] = "choice"
    defs = custom._definitions(batch, "customers")
    fields["options"].append("b")  # a nested value changed in place
    assert custom._definitions(batch, "customers")["tier5"].options == ("a", "b")
    assert defs["tier5"].options == ("a",)
