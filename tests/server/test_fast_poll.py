"""The poll's fast path (issue 19): :class:`server.routers.sync.FastPoll` answers a poll
with nothing new before the body middleware and FastAPI, and everything else exactly as
the ordinary stack does.

* a steady poll is answered by it, with the bytes and headers the route would send, and
  counted under the route's template with a request id and the device in the access line;
* what it cannot answer — a malformed body, a bad token, a wrong device, an unknown
  checkpoint, an outdated schema, a revoked device — gets the same typed error as before
  (the ordinary stack answers it: compared with the same request sent gzip-encoded,
  which the fast path never takes);
* a revocation by raw SQL (another instance, an operator's tool) is refused on the very
  next poll although the polls before were answered here;
* a pull with changes left to the route reads the counter once, on the loop: the worker
  thread serves from it.

Timing is not asserted here: the figures are in bench/server_bench.py.
"""

from __future__ import annotations

import gzip
import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, text

import server.routers.sync as sync_routes
from server.db import normalize_url
from server.repository.state import read_counter_dbapi
from tests.server.conftest import Phone, World, build_world, customer_fields, new_id


def fast_path(world: World) -> sync_routes.FastPoll:
    """The app's FastPoll instance (the middleware stack is built on the first request)."""
    app: Any = world.client.app
    layer = app.middleware_stack
    while layer is not None and not isinstance(layer, sync_routes.FastPoll):
        layer = getattr(layer, "app", None)
    assert layer is not None, "FastPoll is not in the middleware stack"
    return layer


def poll_body(phone: Phone, **extra: Any) -> dict[str, Any]:
    return {
        "device_id": phone.device_id,
        "schema_version": 1,
        "checkpoint": phone.checkpoint,
        "limit": 500,
        **extra,
    }


def post(phone: Phone, raw: bytes, *, packed: bool = False, **headers: str) -> Any:
    """POST ``raw`` to the pull route; ``packed``: gzip-encoded, which FastPoll leaves to
    the ordinary stack (the body middleware inflates it)."""
    sent = {**phone.headers, "Content-Type": "application/json", **headers}
    if packed:
        raw = gzip.compress(raw)
        sent["Content-Encoding"] = "gzip"
    return phone.world.client.post("/v1/sync/pull", content=raw, headers=sent)


def steady(world: World) -> Phone:
    phone = world.phone("rep_a1")
    phone.push_one("customers", new_id("c"), customer_fields())
    phone.sync_down()
    assert phone.pull_raw(phone.checkpoint).status_code == 200  # the token check cached
    return phone


def test_a_steady_poll_is_answered_by_the_fast_path_as_the_route_would(world: World) -> None:
    phone = steady(world)
    fast = fast_path(world)
    before = fast.answered
    raw = json.dumps(poll_body(phone)).encode()
    quick = post(phone, raw)
    assert fast.answered == before + 1
    ordinary = post(phone, raw, packed=True)
    assert fast.answered == before + 1  # the route answered this one
    for r in (quick, ordinary):
        assert r.status_code == 200, r.text
    one, two = quick.json(), ordinary.json()
    assert one["changes"] == [] and one["checkpoint"] == phone.checkpoint
    one.pop("server_hlc"), two.pop("server_hlc")
    assert one == two

    def shown(r: Any) -> dict[str, str]:
        return {k: v for k, v in r.headers.items() if k != "x-request-id"}

    assert shown(quick) == shown(ordinary)
    assert quick.headers["x-request-id"] and quick.headers["content-type"] == "application/json"


def test_the_fast_path_is_observed_like_the_route(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    world, client = build_world(db_url, access_log=True)
    with client:
        phone = steady(world)
        seen: list[tuple[str, str, int]] = []
        metrics = world.context.ops.metrics
        observe = metrics.observe_request

        def recorded(route: str, method: str, status: int, seconds: float) -> None:
            seen.append((route, method, status))
            observe(route, method, status, seconds)

        metrics.observe_request = recorded  # type: ignore[method-assign]
        pulls = world.context.ops.metrics
        fast = fast_path(world)
        before = fast.answered
        with caplog.at_level(logging.INFO, logger="fieldsync.access"):
            # Only this request's lines: the setup's requests are logged too when an
            # earlier test of the session left the access logger at INFO.
            caplog.clear()
            r = phone.world.client.post(
                "/v1/sync/pull",
                json=poll_body(phone),
                headers={**phone.headers, "X-Request-ID": "proxy-7"},
            )
        assert r.status_code == 200 and fast.answered == before + 1
        assert r.headers["x-request-id"] == "proxy-7"
        assert seen == [("/v1/sync/pull", "POST", 200)]
        [line] = [x for x in caplog.records if x.name == "fieldsync.access"]
        assert line.__dict__["route"] == "/v1/sync/pull"
        assert line.__dict__["device_id"] == phone.device_id
        assert pulls is metrics
    world.context.engine.dispose()


# ---- what the fast path leaves to the ordinary stack gets the same answer ---------------


def _bodies(phone: Phone) -> dict[str, tuple[bytes, int, str]]:
    """name -> (raw body, status, error code) as the ordinary stack answers them."""

    def js(**extra: Any) -> bytes:
        return json.dumps(poll_body(phone, **extra)).encode()

    good = poll_body(phone)
    return {
        "not json": (b"{not json", 422, "validation_failed"),
        "a list": (b"[1, 2]", 422, "validation_failed"),
        "nul in device id": (js(device_id="dev\u0000x"), 422, "validation_failed"),
        "64-bit overflow": (js(limit=2**70), 422, "validation_failed"),
        # device_status is read tolerantly (a bad one is dropped), so only the wire
        # checks refuse these — the fast path must run them too
        "nul in device status": (js(device_status={"x": "a\u0000b"}), 422, "validation_failed"),
        "NaN in device status": (
            json.dumps(poll_body(phone, device_status={"x": float("nan")})).encode(),
            422,
            "validation_failed",
        ),
        "unknown field": (js(colour="red"), 422, "validation_failed"),
        "string for a number": (js(limit="5"), 422, "validation_failed"),
        "limit too large": (js(limit=10**6), 422, "validation_failed"),
        "no device id": (
            json.dumps({k: v for k, v in good.items() if k != "device_id"}).encode(),
            422,
            "validation_failed",
        ),
        "bad checkpoint": (js(checkpoint="v9:x"), 422, "validation_failed"),
        "checkpoint ahead": (js(checkpoint="v1:999999999"), 410, "resync_required"),
        "another device": (js(device_id="dev-someone-else"), 403, "forbidden"),
        "schema too old": (js(schema_version=0), 422, "validation_failed"),
        "another schema": (js(schema_name="not-this-one"), 409, "schema_mismatch"),
        "future protocol": (js(protocol=99), 426, "protocol_unsupported"),
    }


def test_what_the_fast_path_cannot_answer_gets_the_same_typed_error(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same status, same body, and the same side effects (the device's reported activity:
    nothing is recorded twice because the fast path looked first)."""
    phone = steady(world)
    fast = fast_path(world)
    before = fast.answered
    activity = world.context.ops.activity
    reports: list[str] = []
    report = activity.report

    def counted(device_id: str, **kwargs: Any) -> None:
        reports.append(device_id)
        report(device_id, **kwargs)

    monkeypatch.setattr(activity, "report", counted)
    for name, (raw, status, code) in _bodies(phone).items():
        start = len(reports)
        quick = post(phone, raw)
        middle = len(reports)
        ordinary = post(phone, raw, packed=True)
        assert middle - start == len(reports) - middle, (name, reports)
        assert quick.status_code == ordinary.status_code, name
        assert quick.json() == ordinary.json(), name
        assert quick.status_code == status, (name, quick.text)
        assert quick.json()["error"]["code"] == code, (name, quick.text)
    assert fast.answered == before


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (None, "unauthorized"),
        ("Bearer ", "unauthorized"),
        ("Bearer fs1.not.signed", "unauthorized"),
        ("Basic dXNlcjpwdw==", "unauthorized"),
    ],
)
def test_a_bad_token_gets_the_same_error_as_before(
    world: World, token: str | None, code: str
) -> None:
    phone = steady(world)
    fast = fast_path(world)
    before = fast.answered
    raw = json.dumps(poll_body(phone)).encode()
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = token
    quick = world.client.post("/v1/sync/pull", content=raw, headers=headers)
    ordinary = world.client.post(
        "/v1/sync/pull",
        content=gzip.compress(raw),
        headers={**headers, "Content-Encoding": "gzip"},
    )
    assert quick.status_code == ordinary.status_code == 401, quick.text
    assert quick.json() == ordinary.json()
    assert quick.json()["error"]["code"] == code
    assert fast.answered == before


def test_an_expired_token_is_refused_on_the_fast_path(world: World) -> None:
    phone = steady(world)
    fast = fast_path(world)
    signer = world.context.signer
    before = fast.answered
    clock = signer.clock
    signer.clock = lambda: clock() + 10 * 365 * 86400  # type: ignore[method-assign]
    try:
        r = post(phone, json.dumps(poll_body(phone)).encode())
    finally:
        signer.clock = clock  # type: ignore[method-assign]
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_expired", r.text
    assert fast.answered == before


def test_a_device_revoked_by_raw_sql_is_refused_on_its_next_fast_poll(world: World) -> None:
    phone = steady(world)
    fast = fast_path(world)
    before = fast.answered
    raw = json.dumps(poll_body(phone)).encode()
    for _ in range(3):
        assert post(phone, raw).status_code == 200
    assert fast.answered == before + 3  # answered by the fast path from the cache
    other = create_engine(normalize_url(world.db_url))  # another instance, a tool
    try:
        with other.begin() as conn:
            conn.execute(
                text("UPDATE devices SET revoked_at = :now WHERE id = :d"),
                {"now": datetime.now(UTC), "d": phone.device_id},
            )
    finally:
        other.dispose()
    refused = post(phone, raw)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "device_revoked"
    assert fast.answered == before + 3


def test_a_pull_with_changes_reads_the_counter_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path's read on the loop serves the worker thread too (no second counter
    statement on a pooled connection), and the page is complete."""
    writer = world.phone("rep_a1")
    reader = steady(world)
    loop_reads: list[int] = []
    thread_reads: list[int] = []
    reader_obj = world.context.loop_reader
    assert reader_obj is not None
    real_read = reader_obj.read

    async def counted_read() -> Any:
        loop_reads.append(1)
        return await real_read()

    def counted_dbapi(*args: Any) -> Any:
        thread_reads.append(1)
        return read_counter_dbapi(*args)

    monkeypatch.setattr(reader_obj, "read", counted_read)
    monkeypatch.setattr("server.routers.sync.read_counter_dbapi", counted_dbapi)
    records = [new_id("c") for _ in range(3)]
    writer.push([writer.mutation("customers", r, customer_fields()) for r in records])
    page = reader.pull_raw(reader.checkpoint)
    assert page.status_code == 200, page.text
    assert sorted(c["record_id"] for c in page.json()["changes"]) == sorted(records)
    assert (len(loop_reads), len(thread_reads)) == (1, 0)


def test_a_few_changes_are_served_on_the_loop_outside_any_transaction(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counter, then the page's one statement, on the loop's connection: no pooled
    connection, no worker thread, no transaction — and the same page the worker thread
    serves."""
    from tests.server.test_poll_path import traced

    threaded: list[int] = []
    serve = sync_routes._serve_pull

    def counted(*args: Any) -> Any:
        threaded.append(1)
        return serve(*args)

    monkeypatch.setattr(sync_routes, "_serve_pull", counted)

    writer = world.phone("rep_a1")
    reader = steady(world)
    fast = fast_path(world)
    records = [new_id("c") for _ in range(3)]
    writer.push([writer.mutation("customers", r, customer_fields()) for r in records])
    raw = json.dumps(poll_body(reader)).encode()
    before = fast.answered
    threaded.clear()  # (the reader's initial sync took it)
    with traced(world) as seen:
        quick = post(reader, raw)
    assert quick.status_code == 200, quick.text
    assert fast.answered == before + 1
    assert len(seen["statements"]) == 2, seen["statements"]  # counter, page
    counter, rows = seen["statements"]
    assert "auth_state" in counter
    assert "UNION ALL" in rows or "\tBind\t" in rows  # PostgreSQL traces the Bind only
    # (SQLAlchemy executions are not counted: the live hub may re-read the counter
    # after the writer's commit at any moment, on its own connection)
    assert seen["checkouts"] == 0 and threaded == []
    assert seen.get("in_transaction", False) is False
    if "transaction_status" in seen:
        from psycopg.pq import TransactionStatus

        assert seen["transaction_status"] == TransactionStatus.IDLE
    ordinary = post(reader, raw, packed=True)  # the worker thread's page
    assert fast.answered == before + 1 and threaded == [1]
    one, two = quick.json(), ordinary.json()
    one.pop("server_hlc"), two.pop("server_hlc")
    assert one == two
    assert sorted(c["record_id"] for c in one["changes"]) == sorted(records)


def test_a_checkpoint_far_behind_is_served_by_the_worker_thread(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Page building for many changes stays off the event loop."""
    monkeypatch.setattr(sync_routes, "LOOP_PAGE_VERSIONS", 2)
    writer = world.phone("rep_a1")
    reader = steady(world)
    fast = fast_path(world)
    records = [new_id("c") for _ in range(3)]
    writer.push([writer.mutation("customers", r, customer_fields()) for r in records])
    before = fast.answered
    page = post(reader, json.dumps(poll_body(reader)).encode())
    assert page.status_code == 200, page.text
    assert sorted(c["record_id"] for c in page.json()["changes"]) == sorted(records)
    assert fast.answered == before  # the route and its worker thread answered


def test_while_a_page_is_read_on_the_loop_another_pull_takes_the_worker_thread(
    world: World,
) -> None:
    """One page read at a time on the loop's connection: a burst of pulls never queues
    the polls behind several page reads."""
    writer = world.phone("rep_a1")
    reader = steady(world)
    fast = fast_path(world)
    records = [new_id("c") for _ in range(3)]
    writer.push([writer.mutation("customers", r, customer_fields()) for r in records])
    loop = world.context.loop_reader
    assert loop is not None
    before = fast.answered
    loop.paging = True  # as while another pull's page is being read
    try:
        page = post(reader, json.dumps(poll_body(reader)).encode())
    finally:
        loop.paging = False
    assert page.status_code == 200, page.text
    assert sorted(c["record_id"] for c in page.json()["changes"]) == sorted(records)
    assert fast.answered == before  # the worker thread served it
    again = post(reader, json.dumps(poll_body(reader)).encode())
    assert again.status_code == 200 and fast.answered == before + 1  # the loop again
