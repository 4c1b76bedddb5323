"""Pull pages in the server's own layout are read on a fast path — each upsert's fields
kept as the JSON text they came in, sealed as is — with the same result as the general
path; a page in any other layout, or a malformed one, goes the general way.

Behaviour, not timing (the figures are in bench/sdk_bench.py):

* a page built by the server's own code is read on the fast path, and every change
  equals what ``json.loads`` makes of it (the kept text decodes to the fields) — also
  for hypothesis-made fields full of quotes, braces, escapes and look-alike changes;
* a page in another layout (spaces, other key order, an extra key, an escaped id, an
  unknown kind of change, a second ``changes`` key) gives the general path's result;
  a malformed page is refused as before;
* a synced store holds the same records, sealed, whichever path read the pages, and a
  page of upserts over a record with a local write still shows that write (the plan
  of an all-upsert page keeps the record "waiting").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client_sdk import FAST_KDF, Store, SyncClient, SyncConfig
from client_sdk._engine import responses
from client_sdk._engine.pull import PulledChange, PulledPage, plan_page
from client_sdk._local.memory import MemoryLocalStore
from client_sdk._transports import Transport
from client_sdk.testing import FakeServer
from server.repository.pull import _change_json
from server.repository.rows import canonical_json
from sync_protocol import CRM_SCHEMA

from .conftest import MakeStore, ServerLayout, no_sleep

TRICKY = {
    "name": '王"伟} ],{"collection":"customers","record_id":"x","version":1,"op":"upsert","fields":{',
    "notes": 'back\\slash \\" quote\n\t tab \x00 nul \u2028 line sep 😀',
    "tags": ["}", "]", '"fields":{', "{}"],
    "json": {"nested": {"fields": {"a": [1, 2.5, -3e-7, None, True, False]}}, 'k"ey': "v"},
    "big": 12345678901234567890123,
    "empty": {},
}


def server_page(
    changes: list[tuple[str, str, int, str, dict[str, Any] | None]],
    *,
    has_more: bool = False,
) -> bytes:
    """A pull answer as the server writes it: its own change encoder, its envelope."""
    rows = [
        (
            version,
            collection,
            rid,
            {"upsert": 0, "delete": 1, "evict": 2}[op],
            canonical_json(fields) if fields is not None else None,
        )
        for collection, rid, version, op, fields in changes
    ]
    body = (
        '{"protocol":1,"changes":['
        + ",".join(_change_json(iter(rows)))
        + f'],"checkpoint":"v1:99","has_more":{"true" if has_more else "false"},'
        '"server_hlc":"0001700000000000-0000-srv","remaining":null}'
    )
    return body.encode("utf-8")


def as_read(page: PulledPage) -> list[tuple[Any, ...]]:
    return [
        (c.collection, c.record_id, c.version, c.op, c.decoded() if c.op == "upsert" else None)
        for c in page.changes
    ] + [(page.checkpoint, page.has_more, page.server_hlc, page.remaining, page.skipped)]


def general(content: bytes) -> PulledPage:
    return responses._read_general(content)


def test_a_server_page_is_read_on_the_fast_path_with_the_general_result() -> None:
    changes: list[tuple[str, str, int, str, dict[str, Any] | None]] = [
        ("customers", "c-1", 7, "upsert", TRICKY),
        ("customers", "客户-2", 8, "upsert", {"name": "李娜", "phone": "+86 138 0000 0000"}),
        ("tasks", "t-1", 9, "delete", None),
        ("customers", "c-3", 10, "evict", None),
        ("customers", "c-4", 11, "upsert", {}),
    ]
    content = server_page(changes, has_more=True)
    page = responses.read_page(content)
    assert as_read(page) == as_read(general(content))
    upserts = [c for c in page.changes if c.op == "upsert"]
    assert all(c.raw is not None and c.fields is None for c in upserts)  # the fast path
    assert [json.loads(c.raw or b"") for c in upserts] == [TRICKY, changes[1][4], {}]
    assert upserts[0].decoded() == TRICKY
    assert page.has_more and page.checkpoint == "v1:99"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
fields_st = st.dictionaries(st.text(), json_values, max_size=6)
ids = st.text(min_size=1, max_size=12)
change_st = st.tuples(
    st.sampled_from(["customers", "tasks"]),
    ids,
    st.integers(min_value=0, max_value=2**63),
    st.sampled_from(["upsert", "upsert", "delete", "evict"]),
    fields_st,
).map(lambda t: (t[0], t[1], t[2], t[3], t[4] if t[3] == "upsert" else None))


def _encodable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the server never stores one
        return False
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(change_st, max_size=6))
def test_any_server_page_reads_the_same_on_both_paths(changes: list[Any]) -> None:
    if not _encodable(changes):
        return
    content = server_page(changes)
    try:
        expected = as_read(general(content))
    except ValueError:  # e.g. an id "0\n": the server's plain-id check lets it through
        # unquoted (the protocol's id pattern refuses it before it is ever stored)
        with pytest.raises(ValueError):
            responses.read_page(content)
        return
    assert as_read(responses.read_page(content)) == expected


def _variants() -> list[tuple[str, bytes]]:
    base: dict[str, Any] = {
        "protocol": 1,
        "changes": [
            {"collection": "customers", "record_id": "c-1", "version": 3, "op": "upsert",
             "fields": {"name": "王伟"}},
            {"collection": "customers", "record_id": "c-2", "version": 4, "op": "delete"},
        ],
        "checkpoint": "v1:4",
        "has_more": False,
    }  # fmt: skip

    def compact(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    reordered = {
        **base,
        "changes": [{"fields": {"name": "王伟"}, **base["changes"][0]}, base["changes"][1]],
    }
    extra = {**base, "changes": [{**base["changes"][0], "meta": 1}, base["changes"][1]]}
    escaped = {**base, "changes": [{**base["changes"][0], "record_id": 'c"1'}]}
    unknown = {**base, "changes": [*base["changes"], {"collection": "x", "record_id": "y",
                                                      "version": 5, "op": "merge"}]}  # fmt: skip
    twice = compact(base)[:-1] + ',"changes":[]}'
    return [
        ("spaces", json.dumps(base).encode()),
        ("reordered", compact(reordered).encode()),
        ("extra key", compact(extra).encode()),
        ("escaped id", compact(escaped).encode()),
        ("unknown op", compact(unknown).encode()),
        ("changes twice", twice.encode()),
        ("ascii escapes", json.dumps(base, separators=(",", ":")).encode()),
    ]


@pytest.mark.parametrize("name,content", _variants(), ids=[n for n, _ in _variants()])
def test_other_layouts_give_the_general_result(name: str, content: bytes) -> None:
    assert as_read(responses.read_page(content)) == as_read(general(content))


MALFORMED = [
    b'{"protocol":1,"changes":[{"collection":"c","record_id":"r","version":1,"op":"upsert",'
    b'"fields":{"a":1}x,{"collection":"c","record_id":"s","version":2,"op":"delete"}],'
    b'"checkpoint":"v1:2","has_more":false}',
    b'{"protocol":1,"changes":[{"collection":"c","record_id":"r","version":1,"op":"upsert",'
    b'"fields":{"a":1}}],"checkpoint":"v1:2","has_more":false}trailing',
    b'{"protocol":1,"changes":[{"collection":"c","record_id":"r","version":1,"op":"upsert",'
    b'"fields":[1]}],"checkpoint":"v1:2","has_more":false}',
    b'{"protocol":1,"changes":[{"collection":"c","record_id":"r","version":1,"op":"upsert",'
    b'"fields":{"a":1}}],"checkpoint":2,"has_more":false}',
    b'{"protocol":1,"changes":[{"collection":"c","record_id":"r","version":1,"op":"upsert",'
    b'"fields":{"a":"\\x"}}],"checkpoint":"v1:2","has_more":false}',
    b'{"protocol":1,"changes":[',
]


@pytest.mark.parametrize("content", MALFORMED)
def test_a_malformed_page_is_refused(content: bytes) -> None:
    with pytest.raises(ValueError, match="not a valid pull page"):
        responses.read_page(content)


def test_a_store_holds_the_same_records_whichever_path_read_them(make_store: MakeStore) -> None:
    server = FakeServer()
    for i in range(30):
        server.put("customers", f"c-{i:03d}", {**TRICKY, "name": f"客户{i}"})
    stores = {}
    for name in ("general", "fast"):
        store = make_store(f"{name}.db")
        transport: Transport = server.transport()
        if name == "fast":
            transport = ServerLayout(transport)
        client = SyncClient(store, transport, SyncConfig(sleep=no_sleep, pull_limit=7))
        client.login("rep1", "fieldsync-demo")
        client.sync()
        stores[name] = store
    local = {name: s._core.local for name, s in stores.items()}
    for i in range(30):
        rid = f"c-{i:03d}"
        expected = {**TRICKY, "name": f"客户{i}"}
        copies = [local[name].records.get("customers", rid) for name in ("general", "fast")]
        assert all(c is not None and c.fields == expected for c in copies)  # decrypted
    assert [r.fields for r in stores["fast"].collection("customers").query()] == [
        r.fields for r in stores["general"].collection("customers").query()
    ]


def test_an_upsert_page_over_a_local_write_keeps_showing_the_write(
    make_store: MakeStore,
) -> None:
    server = FakeServer()
    for i in range(5):
        server.put("customers", f"c-{i}", {"name": f"王{i}", "company": "上海"})
    store = make_store()
    client = SyncClient(store, ServerLayout(server.transport()), SyncConfig(sleep=no_sleep))
    client.login("rep1", "fieldsync-demo")
    client.sync()
    customers = store.collection("customers")
    assert customers.query(search="王3")  # the index is built
    customers.update("c-3", {"company": "杭州本地"})  # waits in the outbox
    for i in range(5):  # a page of upserts only, one over the waiting write
        server.put("customers", f"c-{i}", {"name": f"李{i}", "company": "南京"})
    page = responses.read_page(
        server_page([("customers", f"c-{i}", 100 + i, "upsert", {"name": "x"}) for i in range(5)])
    )
    plan = plan_page(page, store._core.local.outbox.keys())
    assert plan.only_puts and plan.waiting == {("customers", "c-3")}
    client.pull()
    got = customers.get("c-3")
    assert got is not None and got["company"] == "杭州本地" and got["name"] == "李3"
    assert [r.id for r in customers.query(search="杭州本地")] == ["c-3"]
    assert [r.id for r in customers.query(search="南京")] == ["c-0", "c-1", "c-2", "c-4"]
    assert [r.id for r in customers.query(search="李3")] == ["c-3"]


def test_an_upsert_page_with_nothing_waiting_plans_no_step_per_change() -> None:
    content = server_page([("customers", f"c-{i}", i + 1, "upsert", {"n": i}) for i in range(4)])
    plan = plan_page(responses.read_page(content), set())
    assert plan.only_puts and not plan.ops and not plan.waiting
    assert plan.collections == {"customers": {"c-0", "c-1", "c-2", "c-3"}}
    assert [k for k, _ in plan.steps()] == ["put"] * 4


def test_the_memory_store_takes_kept_text(tmp_path: Path) -> None:
    store = Store.open(None, "x", schema=CRM_SCHEMA, kdf=FAST_KDF)
    assert isinstance(store._core.local, MemoryLocalStore)
    change = PulledChange("customers", "c-1", 1, "upsert", None, canonical_json(TRICKY).encode())
    store._core.local.records.put_many([("customers", "c-1", 1, None, change.raw)], 0)
    copy = store._core.local.records.get("customers", "c-1")
    assert copy is not None and copy.fields == TRICKY
    store.close()
