"""In-process fixtures for server tests: a migrated database with two teams, an app
built by ``create_app(settings)`` and FastAPI's ``TestClient``, and a ``Phone`` helper
that signs in as a user's device and pushes/pulls like the SDK does."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.accounts import create_team, create_user
from server.app import create_app
from server.context import ServerContext
from server.db import make_engine, make_session_factory
from server.migrate import upgrade
from server.settings import Settings
from sync_protocol import HybridLogicalClock
from tests.conftest import register_db_template
from tests.support.dbtemplate import shared_template
from tests.support.server_proc import TEST_SECRET

#: name -> (role, team)
PEOPLE = {
    "mgr_a": ("manager", "team-a"),
    "rep_a1": ("rep", "team-a"),
    "rep_a2": ("rep", "team-a"),
    "mgr_b": ("manager", "team-b"),
    "rep_b1": ("rep", "team-b"),
    "admin": ("admin", None),
}

_device_counter = itertools.count()


def password_of(name: str) -> str:
    return f"pw-{name}-secret"


def new_id(prefix: str = "r") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


@dataclass
class World:
    db_url: str
    client: TestClient
    context: ServerContext
    users: dict[str, str] = field(default_factory=dict)

    def phone(self, name: str, device_id: str | None = None) -> Phone:
        return Phone(self, name, device_id or f"dev-{name}-{next(_device_counter)}")


class Phone:
    """One signed-in device, speaking the wire protocol through the TestClient."""

    def __init__(self, world: World, name: str, device_id: str) -> None:
        self.world = world
        self.name = name
        self.device_id = device_id
        self.clock = HybridLogicalClock(device_id)
        self.checkpoint: str | None = None
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.versions: dict[tuple[str, str], int] = {}
        self.tokens = self.login()

    def login(self, **extra: Any) -> dict[str, Any]:
        response = self.world.client.post(
            "/v1/auth/login",
            json={
                "username": self.name,
                "password": password_of(self.name),
                "device_id": self.device_id,
                **extra,
            },
        )
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        self.tokens = tokens
        return tokens

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}

    def mutation(
        self,
        collection: str,
        record_id: str,
        fields: dict[str, Any] | None = None,
        *,
        op: str = "upsert",
        base_version: int | None = None,
        base: dict[str, Any] | None = None,
        mutation_id: str | None = None,
        resolves: list[str] | None = None,
    ) -> dict[str, Any]:
        m: dict[str, Any] = {
            "id": mutation_id or new_id("m"),
            "collection": collection,
            "record_id": record_id,
            "op": op,
            "fields": fields or {},
            "hlc": self.clock.now().encode(),
            "base_version": base_version,
        }
        if base is not None:
            m["base"] = base
        if resolves is not None:
            m["resolves"] = resolves
        return m

    def push_raw(self, mutations: list[dict[str, Any]], **extra: Any) -> Any:
        body = {"device_id": self.device_id, "schema_version": 1, "mutations": mutations, **extra}
        return self.world.client.post("/v1/sync/push", json=body, headers=self.headers)

    def push(self, mutations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        response = self.push_raw(mutations)
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    def push_one(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.push([self.mutation(*args, **kwargs)])[0]

    def pull_raw(self, checkpoint: str | None = None, limit: int = 500, **extra: Any) -> Any:
        body = {
            "device_id": self.device_id,
            "schema_version": 1,
            "checkpoint": checkpoint,
            "limit": limit,
            **extra,
        }
        return self.world.client.post("/v1/sync/pull", json=body, headers=self.headers)

    def sync_down(self, limit: int = 500) -> list[dict[str, Any]]:
        """Pull every page from the stored checkpoint; apply changes to ``records``."""
        changes: list[dict[str, Any]] = []
        while True:
            response = self.pull_raw(self.checkpoint, limit)
            assert response.status_code == 200, response.text
            page = response.json()
            for change in page["changes"]:
                key = (change["collection"], change["record_id"])
                if change["op"] == "upsert":
                    self.records[key] = change["fields"]
                    self.versions[key] = change["version"]
                else:
                    self.records.pop(key, None)
                    self.versions.pop(key, None)
            changes.extend(page["changes"])
            self.checkpoint = page["checkpoint"]
            if not page["has_more"]:
                return changes


def _seed_people(session: Any) -> dict[str, str]:
    users: dict[str, str] = {}
    for team in ("team-a", "team-b"):
        create_team(session, team.upper(), team_id=team)
    for name, (role, team) in PEOPLE.items():
        users[name] = create_user(
            session,
            username=name,
            password=password_of(name),
            role=role,
            team_id=team,
            user_id=f"u-{name}",
        ).id
    session.commit()
    return users


def _build_world_template(db_url: str) -> None:
    """What every world starts from: migrated, the two teams and the people."""
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            _seed_people(session)
    finally:
        engine.dispose()


#: Migrating and hashing six passwords per test cost more than most tests themselves;
#: a world's database is a copy of one built once per process (tests/support/dbtemplate.py).
WORLD_TEMPLATE = shared_template("world", _build_world_template)


def build_world(db_url: str, **overrides: Any) -> tuple[World, Any]:
    """A world on the EMPTY database at ``db_url`` (copied from :data:`WORLD_TEMPLATE`;
    a database that is not empty is migrated and seeded here, as before)."""
    templated = WORLD_TEMPLATE.fill(db_url)
    if not templated:
        upgrade(db_url)
    settings = Settings(
        env=overrides.pop("env", "test"),
        database_url=db_url,
        secret_key=TEST_SECRET,
        **overrides,
    )
    app = create_app(settings)
    context: ServerContext = app.state.fieldsync
    if templated:
        users = {name: f"u-{name}" for name in PEOPLE}
    else:
        with context.sessions() as session:
            users = _seed_people(session)
    client = TestClient(app, client=("10.0.0.1", 50000))
    world = World(db_url, client, context, users)
    return world, client


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    """Two teams (A: mgr_a, rep_a1, rep_a2; B: mgr_b, rep_b1) and an admin."""
    w, client = build_world(db_url)
    with client:
        yield w
    w.context.engine.dispose()


register_db_template(world, WORLD_TEMPLATE)


@pytest.fixture
def sqlite_world(sqlite_url: str) -> Iterator[World]:
    w, client = build_world(sqlite_url)
    with client:
        yield w
    w.context.engine.dispose()


_phones = itertools.count(1)


def customer_fields(name: str = "张三") -> dict[str, Any]:
    """A valid new customer; each call a different phone number (the server flags a
    second customer with the same number as a possible duplicate)."""
    return {"name": name, "status": "potential", "phone": f"+86 138 {next(_phones):04d} 0000"}
