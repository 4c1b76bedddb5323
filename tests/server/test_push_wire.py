"""The push's request path outside the engine (issue 19): its shortcuts give exactly the
answers of the general code they skip."""

from __future__ import annotations

import codecs
import json
import struct
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from server import middleware
from server.routers import sync
from sync_protocol import ClockSkew, ErrorBody, ErrorCode, Mutation, Timestamp
from sync_protocol.hlc import clamp
from tests.server.conftest import World, customer_fields, new_id

NOW = 1_764_720_000_000


def _reference_settle(context: Any, mutations: list[Mutation]) -> tuple[list[Mutation], Any]:
    """``_settle_clocks`` as it was: a Timestamp parsed for every mutation."""
    settings = context.settings
    now = NOW
    limit = now + settings.max_drift_ms
    settled: list[Mutation] = []
    worst = 0
    for m in mutations:
        ts = Timestamp.parse(m.hlc)
        if ts.wall_ms > limit:
            worst = max(worst, ts.wall_ms - now)
            if settings.clock_policy == "clamp":
                ts = clamp(ts, server_now_ms=now, max_drift_ms=settings.max_drift_ms)
                m = m.model_copy(update={"hlc": ts.encode()})
        settled.append(m)
    details = {"drift_ms": worst, "server_time_ms": now, "max_drift_ms": settings.max_drift_ms}
    if worst and settings.clock_policy == "refuse":
        raise ClockSkew(
            f"device clock is {worst // 1000} s ahead of the server; fix the device's time",
            details=details,
        )
    warnings = []
    if worst:
        warnings.append(
            ErrorBody(
                code=ErrorCode.CLOCK_SKEW,
                message=f"device clock is {worst // 1000} s ahead of the server; "
                "its timestamps were pulled back",
                details=details,
            )
        )
    return settled, warnings


def _mutation(hlc: str, i: int = 0) -> Mutation:
    return Mutation.model_validate(
        {
            "id": f"m{i}",
            "collection": "customers",
            "record_id": f"c{i}",
            "op": "upsert",
            "fields": {"name": "x"},
            "hlc": hlc,
        }
    )


def _hlc(wall: int, counter: int = 0, node: str = "dev-1") -> str:
    return f"{wall:015d}:{counter:05d}:{node}"


@pytest.mark.parametrize("policy", ["clamp", "refuse"])
def test_clock_settling_answers_as_a_timestamp_per_mutation_did(
    sqlite_world: World, monkeypatch: pytest.MonkeyPatch, policy: str
) -> None:
    """Walls at, below and past ``now + max_drift_ms`` (by 1 ms, by years), counters and
    nodes that sort differently as text: the same mutations, clamps, warnings and
    refusals as the Timestamp comparison, and the same value handed to the clock."""
    context = sqlite_world.context
    monkeypatch.setattr(context.settings, "clock_policy", policy)
    monkeypatch.setattr(sync, "wall_clock_ms", lambda: NOW)
    limit = NOW + context.settings.max_drift_ms
    walls = [0, NOW - 5, limit - 1, limit, limit + 1, limit + 999, 10**15 - 1]
    batches = [[_hlc(w, c, n) for w in walls[:k]] for k in range(1, 5) for c, n in [(0, "a")]]
    batches += [
        [_hlc(limit, 99_999, "z"), _hlc(limit - 1, 5, "b")],
        [_hlc(w, i % 3, f"d{i}") for i, w in enumerate(walls)],
        [_hlc(limit + 1, 7, "q"), _hlc(NOW, 0, "a")],
    ]
    received: list[str] = []
    monkeypatch.setattr(context.clock, "receive", received.append)
    for hlcs in batches:
        mutations = [_mutation(h, i) for i, h in enumerate(hlcs)]
        try:
            expected: Any = _reference_settle(context, mutations)
        except ClockSkew as exc:
            expected = ("refused", str(exc), exc.details)
        try:
            got: Any = sync._settle_clocks(context, mutations)
        except ClockSkew as exc:
            got = ("refused", str(exc), exc.details)
        if expected[0] == "refused":
            assert got == expected, hlcs
            continue
        assert [m.model_dump() for m in got[0]] == [m.model_dump() for m in expected[0]], hlcs
        assert [w.model_dump() for w in got[1]] == [w.model_dump() for w in expected[1]]
        # Unchanged mutations are handed on as they are, not copied.
        for before, after in zip(mutations, got[0], strict=True):
            assert (after is before) == (after.hlc == before.hlc)
        assert received.pop() == max(m.hlc for m in expected[0])
    assert any(w > limit for w in walls)  # the batches did cross the limit


def test_an_hlc_of_other_digits_is_parsed_as_before(
    sqlite_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wire pattern's ``\\d`` takes any decimal digit; only ASCII ones take the
    shortcut — the rest meet ``Timestamp.parse`` as before."""
    monkeypatch.setattr(sync, "wall_clock_ms", lambda: NOW)
    # ASCII zeros first: as text this sorts below the limit, as digits it is no HLC.
    for wall in ("000" + "\u0661" * 12, "".join(chr(0x0660 + int(c)) for c in f"{NOW:015d}")):
        mutations = [_mutation(f"{wall}:00000:dev-1"), _mutation(_hlc(NOW), 1)]
        with pytest.raises(ValueError, match="not an HLC timestamp"):
            sync._settle_clocks(sqlite_world.context, mutations)


# ---- the push in one hop to a worker thread ----------------------------------------------


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The functions handed to a worker thread (Starlette's and FastAPI's hops both go
    through ``anyio.to_thread.run_sync``)."""
    import anyio.to_thread

    handed: list[str] = []
    real = anyio.to_thread.run_sync

    async def counting(func: Any, *args: Any, **kwargs: Any) -> Any:
        inner = getattr(func, "func", func)  # run_in_threadpool hands a partial
        handed.append(getattr(inner, "__name__", "?"))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    return handed


def test_a_valid_push_takes_one_hop_to_a_worker_thread(
    sqlite_world: World, hops: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rep = sqlite_world.phone("rep_a1")
    mutations = [
        rep.mutation("customers", new_id("c"), customer_fields(f"客户{i}")) for i in range(3)
    ]
    hops.clear()
    assert [r["status"] for r in rep.push(mutations)] == ["applied"] * 3
    assert hops == ["_push_one_hop"]
    # FastAPI's way (what the short way replaces): the session's entry and exit, the
    # caller's check and the endpoint, each a hop.
    monkeypatch.setattr(sync, "_valid_body", lambda *_args: None)
    hops.clear()
    more = [rep.mutation("customers", new_id("c"), customer_fields("客户x"))]
    assert [r["status"] for r in rep.push(more)] == ["applied"]
    assert len(hops) >= 3


def _answer(response: Any) -> tuple[int, Any, str | None]:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if isinstance(body, dict):
        body.pop("server_hlc", None)
        for result in body.get("results", []):
            result.pop("version", None)
    return response.status_code, body, response.headers.get("content-type")


def test_the_one_hop_push_answers_every_request_as_fastapi_does(
    sqlite_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each request twice — the short way, then with FastAPI's handler doing it all — and
    the same answer (status, body, type): good pushes, refused callers (no token, a bad
    one, another device's, a revoked device), refused pushes (protocol, batch size,
    clock), bodies FastAPI does not read as JSON, bodies that do not validate — with
    a bad token too (the caller is refused first)."""
    from server.accounts import revoke_device

    world = sqlite_world
    world.client = TestClient(world.client.app, raise_server_exceptions=False)
    monkeypatch.setattr(sync, "wall_clock_ms", lambda: NOW)  # the clock error's figures
    rep, other, revoked = world.phone("rep_a1"), world.phone("rep_a2"), world.phone("rep_a1")
    with world.context.sessions() as s:
        revoke_device(s, revoked.device_id, wipe=True)
        s.commit()

    def body(phone: Any, **change: Any) -> dict[str, Any]:
        # The same content every time (the second valid push is a duplicate).
        fields = {"name": "王五", "status": "potential", "phone": "+86 138 5555 0101"}
        m = phone.mutation("customers", "c-same", fields, mutation_id="m-same")
        m["hlc"] = _hlc(NOW, 0, phone.device_id)
        return {"device_id": phone.device_id, "schema_version": 1, "mutations": [m], **change}

    cases: list[tuple[str, bytes, dict[str, str]]] = []
    jt = {"Content-Type": "application/json"}

    def case(name: str, doc: Any, headers: dict[str, str]) -> None:
        cases.append((name, json.dumps(doc).encode(), headers))

    case("valid", body(rep), {**rep.headers, **jt})
    case(
        "valid, charset",
        body(rep),
        {**rep.headers, "Content-Type": "application/json; charset=utf-8"},
    )
    case("no token", body(rep), jt)
    case("garbage token", body(rep), {"Authorization": "Bearer nope", **jt})
    case("basic auth", body(rep), {"Authorization": "Basic cmVwOnB3", **jt})
    case("another device's token", body(rep), {**other.headers, **jt})
    case("revoked device", body(revoked), {**revoked.headers, **jt})
    case("protocol", body(rep, protocol=99), {**rep.headers, **jt})
    case("schema", body(rep, schema_version=99), {**rep.headers, **jt})
    case("no content type", body(rep), rep.headers)
    case("text/plain", body(rep), {**rep.headers, "Content-Type": "text/plain"})
    case("+json", body(rep), {**rep.headers, "Content-Type": "application/vnd.x+json"})
    bad = body(rep)
    bad["mutations"][0]["base_version"] = "1"
    case("invalid", bad, {**rep.headers, **jt})
    case("invalid, bad token", bad, {"Authorization": "Bearer nope", **jt})
    case("invalid, no token", bad, jt)
    case("not an object", [1, 2], {**rep.headers, **jt})
    case("wrong type", {"device_id": 5}, {"Authorization": "Bearer nope", **jt})

    def answers() -> list[Any]:
        return [
            _answer(world.client.post("/v1/sync/push", content=raw, headers=headers))
            for _name, raw, headers in cases
        ]

    monkeypatch.setattr(world.context.settings, "max_batch", 1)
    big = body(rep)
    big["mutations"] = big["mutations"] * 2
    case("batch too large", big, {**rep.headers, **jt})
    short = answers()
    monkeypatch.setattr(world.context.settings, "clock_policy", "refuse")
    skewed = body(rep)
    skewed["mutations"][0]["hlc"] = f"{10**15 - 1}:00000:{rep.device_id}"
    cases.append(("clock refused", json.dumps(skewed).encode(), {**rep.headers, **jt}))
    short.append(answers()[-1])

    monkeypatch.setattr(sync, "_valid_body", lambda *_args: None)
    monkeypatch.setattr(world.context.settings, "clock_policy", "clamp")
    fastapi_way = answers()[:-1]
    monkeypatch.setattr(world.context.settings, "clock_policy", "refuse")
    fastapi_way.append(answers()[-1])

    by_name = [name for name, _raw, _headers in cases]
    for name, a, b in zip(by_name, short, fastapi_way, strict=True):
        if name.startswith("valid"):
            assert a[0] == b[0] == 200, (name, a, b)
            assert [r["status"] for r in a[1]["results"]] in (["applied"], ["duplicate"]), a
            assert [r["status"] for r in b[1]["results"]] == ["duplicate"]
            continue
        assert a == b, name
    statuses = dict(zip(by_name, (a[0] for a in short), strict=True))
    assert statuses["no token"] == statuses["garbage token"] == 401
    assert statuses["revoked device"] == 403 and statuses["invalid, bad token"] == 401
    assert statuses["invalid"] == 422 and statuses["batch too large"] == 413
    assert statuses["clock refused"] == 409 and statuses["protocol"] == 426


# ---- the body check's parser ---------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    """Equal values of equal types; floats to the bit; object keys in the same order."""
    if a.__class__ is not b.__class__:
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _quick_reads_as_json_loads(body: bytes) -> None:
    """What the body check's quick path accepts, :func:`json.loads` of the decoded text
    reads too, value for value — the document a route validates is the one it was."""
    document = middleware._plainly_safe(body, middleware.MAX_JSON_DEPTH)
    if document is middleware._DOUBT:
        return
    expected = json.loads(body.decode("utf-8"))  # raises: the quick path took too much
    assert _same(document, expected), body[:200]
    assert not body.startswith(codecs.BOM_UTF8)


_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
_DOCUMENT = st.recursive(
    _LEAF,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=16,
)
#: Bytes that break JSON, UTF-8 or both.
_NOISE = b' \t\n\r\x00\x1f\x7f"\\/bfnrtu019aeEfF+-.[]{}:,\x80\xc3\xa9\xed\xa0\xef\xbb\xbf\xff'


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(
    document=_DOCUMENT,
    ascii_only=st.booleans(),
    edits=st.lists(
        st.tuples(st.integers(0, 10**6), st.sampled_from(range(3)), st.integers(0, 255)), max_size=3
    ),
)
def test_the_quick_parser_reads_what_json_loads_reads(
    document: Any, ascii_only: bool, edits: list[tuple[int, int, int]]
) -> None:
    raw = bytearray(json.dumps(document, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass"))
    _quick_reads_as_json_loads(bytes(raw))
    for at, kind, noise in edits:
        i = at % (len(raw) + 1)
        byte = _NOISE[noise % len(_NOISE)]
        if kind == 0 and raw:
            del raw[min(i, len(raw) - 1)]
        elif kind == 1:
            raw[i:i] = bytes([byte])
        elif raw:
            raw[min(i, len(raw) - 1)] = byte
        _quick_reads_as_json_loads(bytes(raw))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": -0, "b": -0.0, "c": 0.1, "d": 1e308, "e": 5e-324, "f": 2.2250738585072011e-308}',
        b'{"a": 1, "b": 2, "a": 3}',
        b'{"x": 123456789012345678901234567890, "y": 9223372036854775807}',
        b'{"s": "\\u00e9\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\\"\\\\"}',
        b'{"s": "\\u00e9\\u5ba2\\/\\b\\f\\n\\r\\t\\"\\\\"}',
        b'{"s": "\xe5\xae\xa2\xe6\x88\xb7", "t": "\xf0\x9f\x98\x80"}',
        b'{"s": "\xed\xa0\x80"}',
        b'{"s": "\xc0\xaf"}',
        b'{"s": "\xff"}',
        b'{"s": "a\x01b"}',
        b"\xef\xbb\xbf{}",
        b'{"a": NaN}',
        b'{"a": 1e400}',
        b'{"a": 1}x',
        b'{"a": 1,}',
        b'{"a": 01}',
        b'{"a": .5}',
        b'{"a": 1.}',
        b"[" * 150 + b"]" * 150,
        b"9" * 5000,
    ],
)
def test_the_quick_parser_on_the_edges(raw: bytes) -> None:
    _quick_reads_as_json_loads(raw)
    quick = middleware.checked_json(raw)
    try:
        walked = middleware._walk_problems(raw.decode("utf-8-sig"), middleware.MAX_JSON_DEPTH)
    except UnicodeDecodeError:
        walked = (None, [middleware._problem("", "invalid_encoding", "the body is not UTF-8 text")])
    assert quick[1] == walked[1]
    if not walked[1]:
        assert _same(quick[0], walked[0])
