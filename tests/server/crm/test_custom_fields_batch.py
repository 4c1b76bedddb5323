"""Custom fields in one push (issue 19): with nothing declared, a record's ``custom``
value is not checked (the rule skips the per-record work); a declaration the same push
writes first is enforced on the records after it — and not on those before it."""

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


def _push(conn: Connection, *mutations: tuple[str, dict[str, Any]]) -> list[Any]:
    batch = [
        Mutation(
            id=f"m-{next(_ids)}",
            collection=collection,
            record_id=f"r-{next(_ids)}",
            op="upsert",
            fields=fields,
            hlc=_clock.now().encode(),
        )
        for collection, fields in mutations
    ]
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
        [f["field"] + ":" + f["code"] for f in r.error.details["fields"]] if r.error else "ok"
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
