"""The pull path's shortcuts (issue 19), and that each still gives the right answer.

* The auth generation (migration ``0012_auth_state``) rises with every change a token is
  checked against — by trigger, so also for raw SQL and other tools — and not with
  anything else (``last_seen`` is written all the time);
* a poll with nothing new is one statement (counter + auth generation) on the event
  loop's connection, outside any transaction, with no pooled connection and no read of
  the account rows;
* revocation, deactivation, sign-out and team moves still take effect on the very next
  pull, whoever made them (the API, or raw SQL standing in for another instance);
* the pull page is gzip-compressed by the route when the client takes gzip, and decodes
  to the same page.

Timing is not asserted here: the figures are in bench/server_bench.py.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from server.middleware import GZIP, IDENTITY, accepted_encoding, gzip_bytes
from tests.server.conftest import Phone, World, customer_fields, new_id


def generation(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(text("SELECT generation FROM auth_state WHERE id = 1")).scalar_one()
        )


def run_sql(engine: Engine, sql: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


# ---- the auth generation ----------------------------------------------------------------


CHANGES: dict[str, tuple[str, dict[str, Any]]] = {
    "device revoked": ("UPDATE devices SET revoked_at = :now WHERE id = :device", {}),
    "device wiped": ("UPDATE devices SET wipe = :yes WHERE id = :device", {}),
    "device signed out": (
        "UPDATE devices SET token_generation = token_generation + 1 WHERE id = :device",
        {},
    ),
    "device moved": ("UPDATE devices SET user_id = 'u-rep_a2' WHERE id = :device", {}),
    "device deleted": ("DELETE FROM devices WHERE id = :device", {}),
    "user deactivated": ("UPDATE users SET active = :no WHERE id = 'u-rep_a1'", {}),
    "user signed out": (
        "UPDATE users SET token_generation = token_generation + 1 WHERE id = 'u-rep_a1'",
        {},
    ),
    "user promoted": ("UPDATE users SET role = 'manager' WHERE id = 'u-rep_a1'", {}),
    "user moved to another team": ("UPDATE users SET team_id = 'team-b' WHERE id = 'u-rep_a1'", {}),
    "user created in a team": (
        "INSERT INTO users (id, username, display_name, role, team_id, password_hash, active, "
        "created_at, token_generation) VALUES ('u-new', 'new', 'New', 'rep', 'team-a', 'x', "
        ":yes, :now, 0)",
        {},
    ),
    "team given a manager": ("UPDATE teams SET manager_id = 'u-rep_a1' WHERE id = 'team-a'", {}),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_every_change_a_token_is_checked_against_raises_the_generation(
    world: World, change: str
) -> None:
    phone = world.phone("rep_a1")
    engine = world.context.engine
    before = generation(engine)
    sql, _ = CHANGES[change]
    if change == "device deleted":  # its refresh tokens reference it
        run_sql(
            engine, "DELETE FROM refresh_tokens WHERE device_id = :device", device=phone.device_id
        )
    params = {"device": phone.device_id, "now": datetime.now(UTC), "yes": True, "no": False}
    run_sql(engine, sql, **{k: v for k, v in params.items() if f":{k}" in sql})
    assert generation(engine) > before


def test_what_tokens_do_not_depend_on_leaves_the_generation_alone(world: World) -> None:
    phone = world.phone("rep_a1")
    engine = world.context.engine
    before = generation(engine)
    run_sql(
        engine,
        "UPDATE devices SET last_seen = :now WHERE id = :d",
        now=datetime.now(UTC),
        d=phone.device_id,
    )
    run_sql(engine, "UPDATE devices SET revoked_at = NULL WHERE id = :d", d=phone.device_id)  # same
    run_sql(engine, "UPDATE users SET display_name = 'Renamed' WHERE id = 'u-rep_a1'")
    phone.push_one("customers", new_id("c"), customer_fields())
    phone.sync_down()
    assert generation(engine) == before


def test_a_rolled_back_revocation_does_not_raise_the_generation(world: World) -> None:
    phone = world.phone("rep_a1")
    engine = world.context.engine
    before = generation(engine)
    with engine.connect() as conn:
        conn.execute(
            text("UPDATE devices SET revoked_at = :now WHERE id = :d"),
            {"now": datetime.now(UTC), "d": phone.device_id},
        )
        conn.rollback()
    assert generation(engine) == before


# ---- the empty poll ---------------------------------------------------------------------


@contextmanager
def traced(world: World) -> Iterator[dict[str, Any]]:
    """Every statement the loop's poll connection sends (at the driver: transaction
    control included), and any use of the engine's pool or SQLAlchemy execution."""
    seen: dict[str, Any] = {"statements": [], "checkouts": 0, "executions": 0}
    engine = world.context.engine
    reader = world.context.loop_reader
    assert reader is not None and reader.dbapi_connection is not None
    driver = reader.dbapi_connection

    def checkout(*_args: Any) -> None:
        seen["checkouts"] += 1

    def execution(*_args: Any) -> None:
        seen["executions"] += 1

    event.listen(engine, "checkout", checkout)
    event.listen(engine, "before_cursor_execute", execution)
    if engine.dialect.name == "sqlite":
        driver.set_trace_callback(seen["statements"].append)
        try:
            yield seen
        finally:
            driver.set_trace_callback(None)
    else:
        import os
        import tempfile

        from psycopg.pq import Trace

        with tempfile.TemporaryFile() as trace:
            driver.pgconn.trace(trace.fileno())
            driver.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
            try:
                yield seen
            finally:
                driver.pgconn.untrace()
                os.fsync(trace.fileno())
                trace.seek(0)
                # Frontend messages: a simple Query, or Parse/Bind for an extended one;
                # count each statement once (by its Query or its Bind).
                for line in trace.read().decode().splitlines():
                    parts = line.split("\t")
                    if (
                        len(parts) > 2
                        and parts[0] == "F"
                        and parts[2].startswith(("Query", "Bind"))
                    ):
                        seen["statements"].append(line)
    event.remove(engine, "checkout", checkout)
    event.remove(engine, "before_cursor_execute", execution)
    if engine.dialect.name != "sqlite":
        seen["transaction_status"] = driver.info.transaction_status
    else:
        seen["in_transaction"] = driver.in_transaction


def test_an_empty_poll_is_one_statement_outside_any_transaction(world: World) -> None:
    phone = world.phone("rep_a1")
    phone.push_one("customers", new_id("c"), customer_fields())
    phone.sync_down()
    warm = phone.pull_raw(phone.checkpoint)  # verifies the token, fills the cache
    assert warm.status_code == 200
    hits = world.context.auth_cache.hits
    with traced(world) as seen:
        page = phone.pull_raw(phone.checkpoint)
    assert page.status_code == 200, page.text
    assert page.json()["changes"] == [] and page.json()["checkpoint"] == phone.checkpoint
    [statement] = seen["statements"]  # exactly one, and it is the counter read
    assert "sync_state" in statement and "auth_state" in statement
    assert not any(
        word in statement.upper() for word in ("BEGIN", "COMMIT", "ROLLBACK", "DEVICES", "USERS")
    )
    assert seen["checkouts"] == 0 and seen["executions"] == 0  # no pool, no ORM, no session
    if "in_transaction" in seen:
        assert seen["in_transaction"] is False
    else:
        from psycopg.pq import TransactionStatus

        assert seen["transaction_status"] == TransactionStatus.IDLE
    assert world.context.auth_cache.hits == hits + 1  # the token check came from the cache


def test_a_poll_after_a_change_takes_the_full_path_and_sees_it(world: World) -> None:
    writer = world.phone("rep_a1")
    reader = world.phone("rep_a1")
    reader.sync_down()
    reader.pull_raw(reader.checkpoint)
    record = new_id("c")
    writer.push_one("customers", record, customer_fields())
    changes = reader.sync_down()
    assert [c["record_id"] for c in changes] == [record]


# ---- revocation and scope changes still act at once ----------------------------------------


def _warm(phone: Phone) -> None:
    phone.sync_down()
    for _ in range(3):  # served from the cache now
        assert phone.pull_raw(phone.checkpoint).status_code == 200


Revoke = Callable[[World, Phone], None]


def _revoke_by_api(world: World, phone: Phone) -> None:
    manager = world.phone("mgr_a")
    r = world.client.post(f"/v1/manager/devices/{phone.device_id}/revoke", headers=manager.headers)
    assert r.status_code == 200, r.text


def _revoke_by_sql(world: World, phone: Phone) -> None:
    # What another instance (or an operator's tool) commits: nothing in this process
    # sees the write happen.
    from sqlalchemy import create_engine

    from server.db import normalize_url

    other = create_engine(normalize_url(world.db_url))
    try:
        run_sql(
            other,
            "UPDATE devices SET revoked_at = :now WHERE id = :d",
            now=datetime.now(UTC),
            d=phone.device_id,
        )
    finally:
        other.dispose()


@pytest.mark.parametrize("revoke", [_revoke_by_api, _revoke_by_sql], ids=["api", "raw-sql"])
def test_a_revoked_device_is_refused_on_its_very_next_poll(world: World, revoke: Revoke) -> None:
    phone = world.phone("rep_a1")
    _warm(phone)
    revoke(world, phone)
    refused = phone.pull_raw(phone.checkpoint)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "device_revoked"


def test_a_deactivated_user_is_refused_on_the_next_poll(world: World) -> None:
    phone = world.phone("rep_a1")
    _warm(phone)
    run_sql(world.context.engine, "UPDATE users SET active = :no WHERE id = 'u-rep_a1'", no=False)
    assert phone.pull_raw(phone.checkpoint).status_code == 401


def test_a_sign_out_elsewhere_ends_the_token_on_the_next_poll(world: World) -> None:
    phone = world.phone("rep_a1")
    _warm(phone)
    assert world.client.post("/v1/auth/logout", headers=phone.headers).status_code == 204
    assert phone.pull_raw(phone.checkpoint).status_code == 401


def test_a_team_move_reaches_a_managers_scope_on_the_next_pull(world: World) -> None:
    manager = world.phone("mgr_a")
    outsider = world.phone("rep_b1")
    _warm(manager)
    run_sql(world.context.engine, "UPDATE users SET team_id = 'team-a' WHERE id = 'u-rep_b1'")
    record = new_id("c")
    assert outsider.push_one("customers", record, customer_fields())["status"] == "applied"
    assert record in [c["record_id"] for c in manager.sync_down()]


# ---- compression --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, IDENTITY),
        ("", IDENTITY),
        ("gzip, deflate", GZIP),  # the SDK's (httpx's default)
        ("deflate, gzip;q=0.5", GZIP),
        ("gzip;q=0", IDENTITY),
        ("GZIP", GZIP),
        ("x-gzip", GZIP),
        ("*", GZIP),
        ("*;q=0", IDENTITY),
        ("br, identity", IDENTITY),
        ("gzip;q=bogus", IDENTITY),
    ],
)
def test_negotiation_picks_gzip_only_when_the_client_takes_it(
    header: str | None, expected: str
) -> None:
    assert accepted_encoding(header) == expected


def test_gzip_bytes_is_ordinary_gzip() -> None:
    body = json.dumps([{"name": "客户", "i": i} for i in range(2000)], ensure_ascii=False).encode()
    for level in range(1, 10):
        packed = gzip_bytes(body, level)
        assert gzip.decompress(packed) == body
        assert len(packed) < len(body) / 3


def _page(phone: Phone, encoding: str) -> tuple[dict[str, Any], str | None]:
    body = {"device_id": phone.device_id, "schema_version": 1, "checkpoint": None, "limit": 500}
    response = phone.world.client.post(
        "/v1/sync/pull", json=body, headers={**phone.headers, "Accept-Encoding": encoding}
    )
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()  # httpx decodes the gzip body
    page.pop("server_hlc")
    return page, response.headers.get("content-encoding")


def test_a_compressed_page_decodes_to_the_same_page(world: World) -> None:
    phone = world.phone("rep_a1")
    phone.push([phone.mutation("customers", new_id("c"), customer_fields()) for _ in range(60)])
    plain, plain_encoding = _page(phone, IDENTITY)
    packed, packed_encoding = _page(phone, "gzip, deflate")
    refused, refused_encoding = _page(phone, "gzip;q=0")
    assert (plain_encoding, packed_encoding, refused_encoding) == (None, GZIP, None)
    assert len(plain["changes"]) == 60
    assert packed == plain == refused


def test_a_broken_loop_connection_falls_back_to_the_ordinary_path(sqlite_world: World) -> None:
    world = sqlite_world
    phone = world.phone("rep_a1")
    phone.sync_down()
    assert phone.pull_raw(phone.checkpoint).status_code == 200
    reader = world.context.loop_reader
    assert reader is not None
    reader.dbapi_connection.close()  # the loop's read now raises
    again = phone.pull_raw(phone.checkpoint)
    assert again.status_code == 200, again.text
    assert again.json()["changes"] == []
    assert reader.dbapi_connection is None  # dropped; the next poll opens a fresh one
    assert phone.pull_raw(phone.checkpoint).status_code == 200
    assert reader.dbapi_connection is not None


def test_a_pull_with_changes_reads_outside_any_transaction(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The full path reads in autocommit: no BEGIN … ROLLBACK round trips, no snapshot
    held while the page is built. Checked at the driver right after the page was read."""
    import server.routers.sync as sync_routes

    # a few changes are served on the loop's connection (test_fast_poll.py): this is
    # about the worker thread's path, so every pull with changes takes it here
    monkeypatch.setattr(sync_routes, "LOOP_PAGE_VERSIONS", 0)
    writer = world.phone("rep_a1")
    reader = world.phone("rep_a1")
    reader.sync_down()
    reader.pull_raw(reader.checkpoint)  # the token check is cached from here on
    writer.push([writer.mutation("customers", new_id("c"), customer_fields()) for _ in range(3)])
    states: list[bool] = []
    answer = sync_routes._answer

    def checked(*args: Any) -> Any:
        response = answer(*args)
        conn = args[5]
        driver = conn.connection.driver_connection
        if conn.dialect.name == "sqlite":
            states.append(bool(driver.in_transaction))
        else:
            from psycopg.pq import TransactionStatus

            states.append(driver.info.transaction_status != TransactionStatus.IDLE)
        return response

    monkeypatch.setattr(sync_routes, "_answer", checked)
    page = reader.pull_raw(reader.checkpoint)
    assert page.status_code == 200 and len(page.json()["changes"]) == 3
    assert states == [False]  # the full path ran once, outside any transaction
