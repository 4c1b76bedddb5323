"""The hub on a real SQLite database, without HTTP: which streams a change pokes.

Rows are written straight into ``records``/``evictions`` with the counter raised, as a
committed write leaves them; the hub must poke exactly the streams whose scope holds
one of the changed owners (reference data and admins: everyone in scope), an evicted
user, and — after a restore (new epoch) or a purge (new horizon) — every stream."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from server.accounts import Principal
from server.auth import AccessClaims
from server.db import make_engine, make_session_factory
from server.live.hub import LiveHub
from server.migrate import upgrade

PEOPLE = {
    "rep_a": Principal("u-rep_a", "rep", "team-a"),
    "rep_b": Principal("u-rep_b", "rep", "team-b"),
    "mgr_a": Principal("u-mgr_a", "manager", "team-a", frozenset({"u-rep_a", "u-mgr_a"})),
    "admin": Principal("u-admin", "admin"),
}


def _write(engine: object, version: int, owner: str | None, *, evict: str | None = None) -> None:
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(
            text(
                "INSERT INTO records (collection, record_id, owner_id, customer_id, version, "
                "deleted, data, clocks, created_at_ms, updated_at_ms, updated_by) VALUES "
                "('customers', :rid, :owner, NULL, :v, false, '{}', '{}', 0, 0, 'x')"
            ),
            {"rid": f"r-{version}", "owner": owner, "v": version},
        )
        if evict is not None:
            conn.execute(
                text(
                    "INSERT INTO evictions (user_id, collection, record_id, version, "
                    "created_at_ms) VALUES (:u, 'customers', :rid, :v, 0)"
                ),
                {"u": evict, "rid": f"r-{version}", "v": version},
            )
        conn.execute(text("UPDATE sync_state SET counter = :v"), {"v": version})


def test_changes_poke_only_the_streams_in_scope(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    hub = LiveHub(
        engine, make_session_factory(engine), poll_s=3600, auth_check_s=3600, max_streams=10
    )

    async def scenario() -> list[set[str]]:
        hub.state = await asyncio.to_thread(hub._read)
        streams = {
            name: hub.open(AccessClaims(p.user_id, f"dev-{name}", 2**40), p)
            for name, p in PEOPLE.items()
        }
        rounds: list[set[str]] = []

        async def step(write: object) -> None:
            for s in streams.values():
                s.wake.clear()
            await asyncio.to_thread(write)  # type: ignore[arg-type]
            await hub.refresh()
            rounds.append({n for n, s in streams.items() if s.wake.is_set()})

        await step(lambda: _write(engine, 1, "u-rep_a"))
        await step(lambda: _write(engine, 2, "u-rep_b"))
        await step(lambda: _write(engine, 3, None))  # reference data
        await step(lambda: _write(engine, 4, "u-rep_b", evict="u-rep_a"))
        await step(lambda: None)  # nothing changed: nobody
        await step(lambda: _exec(engine, "UPDATE sync_state SET purge_horizon = 2"))
        await step(lambda: _exec(engine, "UPDATE sync_state SET epoch = 'restored'"))
        assert streams["rep_a"].checkpoint == "v2:restored:4:2"
        return rounds

    try:
        rounds = asyncio.run(scenario())
    finally:
        engine.dispose()
    everyone = set(PEOPLE)
    assert rounds == [
        {"rep_a", "mgr_a", "admin"},
        {"rep_b", "admin"},
        everyone,
        {"rep_a", "rep_b", "admin"},
        set(),
        everyone,
        everyone,
    ]


def _exec(engine: object, sql: str) -> None:
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text(sql))
