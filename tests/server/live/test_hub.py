"""The hub on a real SQLite database, without HTTP: which streams a change pokes, the
scope index against the rule, and the credential check's cost (a fixed number of
queries, whatever the number of streams) and its scopes (equal to principal_for's).

Rows are written straight into ``records``/``evictions`` with the counter raised, as a
committed write leaves them; the hub must poke exactly the streams whose scope holds
one of the changed owners (reference data and admins: everyone in scope), an evicted
user, and — after a restore (new epoch) or a purge (new horizon) — every stream."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy import event, select, text

from server.accounts import Principal, create_team, create_user, principal_for, utcnow
from server.auth import AccessClaims
from server.db import make_engine, make_session_factory
from server.live.hub import LiveHub, ScopeIndex, Stream, _principals
from server.migrate import upgrade
from server.models import Device, Team, User
from server.scope import team_owner

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


def test_the_scope_index_pokes_exactly_whom_the_rule_would() -> None:
    """:class:`ScopeIndex` against :meth:`Stream.sees` (the rule, stream by stream) over
    random principals, changes, rescopes and departures."""
    rng = random.Random(17)
    users = [f"u-{n}" for n in range(12)]
    teams = ["t1", "t2", "t3"]

    def principal() -> Principal:
        role = rng.choice(["rep", "rep", "manager", "admin"])
        team = rng.choice([*teams, None])
        members = frozenset(rng.sample(users, 3)) if role == "manager" else frozenset()
        return Principal(rng.choice(users), role, team, members)

    owners_pool: list[str | None] = [*users, *(team_owner(t) for t in teams), None, "u-x"]
    index = ScopeIndex()
    streams = [Stream(AccessClaims("u", f"d{n}", 2**40), principal()) for n in range(40)]
    for stream in streams:
        index.add(stream)
    for _ in range(600):
        move = rng.random()
        if move < 0.1:
            index.rescope(rng.choice(streams), principal())
        elif move < 0.15:
            gone = rng.choice(streams)
            index.discard(gone)
            streams.remove(gone)
            fresh = Stream(AccessClaims("u", f"d{rng.random()}", 2**40), principal())
            index.add(fresh)
            streams.append(fresh)
        owners = set(rng.sample(owners_pool, rng.randint(0, 3))) if rng.random() > 0.05 else None
        evicted = set(rng.sample(users, rng.randint(0, 1)))
        assert index.poked(owners, evicted) == {s for s in streams if s.sees(owners, evicted)}
    assert len(index) == len(streams)


def _accounts(url: str) -> dict[str, str]:
    """Users in every shape principal_for knows; returns name -> user id."""
    upgrade(url)
    engine = make_engine(url)
    ids: dict[str, str] = {}
    try:
        with make_session_factory(engine)() as session:
            for team in ("north", "south", "east", "west"):
                create_team(session, team, team_id=f"team-{team}")
            shapes = [
                ("boss", "manager", "team-north"),  # leads north (first manager of it)
                ("rep_n", "rep", "team-north"),
                ("rep_s", "rep", "team-south"),
                ("lone", "manager", None),  # leads nothing, in no team
                ("both", "manager", "team-east"),  # leads east, and south below
                ("rep_e", "rep", "team-east"),
                ("admin", "admin", None),
                ("drifter", "rep", None),
            ]
            for name, role, team in shapes:
                user = create_user(
                    session, username=name, password="x" * 12, password_hash="x", role=role,
                    team_id=team,
                )  # fmt: skip
                ids[name] = user.id
            session.flush()
            south = session.get_one(Team, "team-south")
            south.manager_id = ids["both"]
            session.get_one(Team, "team-west").manager_id = ids["boss"]
            session.get_one(Team, "team-north").manager_id = None  # boss now leads west
            session.commit()
    finally:
        engine.dispose()
    return ids


def test_batched_scopes_equal_principal_for(sqlite_url: str) -> None:
    ids = _accounts(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        with make_session_factory(engine)() as session:
            users = {u.id: u for u in session.scalars(select(User))}
            batched = _principals(session, users)
            for name, uid in ids.items():
                assert batched[uid] == principal_for(session, users[uid], None), name
            assert batched[ids["boss"]].team_id == "team-west"
    finally:
        engine.dispose()


def test_checking_streams_costs_the_same_queries_for_10_or_300(sqlite_url: str) -> None:
    ids = _accounts(sqlite_url)
    engine = make_engine(sqlite_url)
    sessions = make_session_factory(engine)
    hub = LiveHub(engine, sessions, poll_s=3600, auth_check_s=3600, max_streams=1000)
    with sessions() as session:
        for n in range(300):
            session.add(
                Device(id=f"dev-{n}", user_id=list(ids.values())[n % 8], created_at=utcnow())
            )
        session.commit()
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(str(a[2])))

    def check(count: int) -> tuple[int, dict[str, str]]:
        streams = []
        for n in range(count):
            uid = list(ids.values())[n % 8]
            streams.append(Stream(AccessClaims(uid, f"dev-{n}", 2**40), Principal(uid, "rep")))
        statements.clear()
        verdicts = hub._check(streams)
        scopes = {
            s.device_id: str(v.team_id if isinstance(v, Principal) else v.code)
            for s, v in verdicts.items()
        }
        return len(statements), scopes

    try:
        few, _ = check(10)
        many, scopes = check(300)
        # rows, led teams, members; + principal_for's own 3 for the two-team manager
        assert few == many <= 6, (few, many)
        assert scopes["dev-0"] == "team-west" and scopes["dev-4"] in ("team-east", "team-south")
        # A revoked device among them: that one stream closes, the others stay.
        with sessions() as session:
            session.get_one(Device, "dev-9").revoked_at = utcnow()
            session.commit()
        _, scopes = check(300)
        assert scopes["dev-9"] == "device_revoked" and scopes["dev-17"] != "device_revoked"
    finally:
        engine.dispose()


def test_while_the_auth_generation_stands_still_a_check_is_one_read(sqlite_url: str) -> None:
    """The periodic credential check reads one scalar while nothing a token is checked
    against changed (expiry is looked at in memory); a revocation raises the generation
    (a trigger) and the next check reads the rows and closes that stream."""
    ids = _accounts(sqlite_url)
    engine = make_engine(sqlite_url)
    sessions = make_session_factory(engine)
    now = [1_000.0]
    hub = LiveHub(
        engine, sessions, poll_s=3600, auth_check_s=3600, max_streams=100, clock=lambda: now[0]
    )
    users = list(ids.values())
    with sessions() as session:
        for n in range(20):
            session.add(Device(id=f"dev-{n}", user_id=users[n % 8], created_at=utcnow()))
        session.commit()
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(str(a[2])))

    async def scenario() -> None:
        streams = [
            hub.open(
                AccessClaims(users[n % 8], f"dev-{n}", 2_000 if n == 3 else 2**40),
                Principal(users[n % 8], "rep"),
            )
            for n in range(20)
        ]
        assert await hub.check_streams() == 0 and hub.checks == 1  # first: the rows
        statements.clear()
        assert await hub.check_streams() == 0
        assert hub.checks == 1 and len(statements) == 1  # the generation alone
        now[0] = 3_000.0  # dev-3's token has expired: closed without reading a row
        statements.clear()
        assert await hub.check_streams() == 1 and len(statements) == 1
        assert streams[3].closed is not None and streams[3].closed.code == "token_expired"

        def revoke() -> None:
            with sessions() as session:
                session.get_one(Device, "dev-9").revoked_at = utcnow()
                session.commit()

        await asyncio.to_thread(revoke)
        assert await hub.check_streams() == 1 and hub.checks == 2
        assert streams[9].closed is not None and streams[9].closed.code == "device_revoked"
        assert [s for s in streams if s.closed is not None] == [streams[3], streams[9]]

    try:
        asyncio.run(scenario())
    finally:
        engine.dispose()
