"""The database templates the suite's worlds and servers start from
(tests/support/dbtemplate.py): each copy is a complete, independent database, a
database that is not empty is never overwritten, and a test using ``world`` on
PostgreSQL gets its copy created straight from the template."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import _DB_TEMPLATE_KEY, scratch_postgres
from tests.server.conftest import WORLD_TEMPLATE, World
from tests.support.dbtemplate import DatabaseTemplate


def _build(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE people (name TEXT PRIMARY KEY)"))
        conn.execute(text("INSERT INTO people VALUES ('ann')"))
    engine.dispose()


def _names(url: str) -> list[str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        names = [row[0] for row in conn.execute(text("SELECT name FROM people ORDER BY name"))]
    engine.dispose()
    return names


def _add(url: str, name: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO people VALUES (:n)"), {"n": name})
    engine.dispose()


def test_sqlite_copies_are_independent_and_a_used_file_is_left_alone(tmp_path: Path) -> None:
    builds: list[str] = []
    template = DatabaseTemplate("unit", lambda url: (builds.append(url), _build(url)))
    try:
        one, two = (f"sqlite:///{tmp_path / name}" for name in ("one.db", "two.db"))
        assert template.fill(one) and template.fill(two)
        assert len(builds) == 1  # built once, copied twice
        _add(one, "bob")
        assert _names(one) == ["ann", "bob"] and _names(two) == ["ann"]

        used = tmp_path / "used.db"
        sqlite3.connect(used).execute("CREATE TABLE other (x INTEGER)").connection.commit()
        before = used.read_bytes()
        assert not template.fill(f"sqlite:///{used}")
        assert used.read_bytes() == before
        assert not template.fill(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    finally:
        template.close()


@pytest.mark.postgres
def test_postgres_copies_are_independent_and_a_used_database_is_left_alone() -> None:
    template = DatabaseTemplate("unit", _build)
    try:
        with scratch_postgres() as empty, scratch_postgres(template=template) as direct:
            assert template.fill(empty)  # dropped and re-created from the template
            assert template.fill(direct)  # created from it already: nothing to do
            _add(direct, "bob")
            assert _names(direct) == ["ann", "bob"] and _names(empty) == ["ann"]
            # Filled once: a second fill sees a used database and leaves it alone.
            assert not template.fill(direct) and not template.fill(empty)
            assert _names(direct) == ["ann", "bob"]
    finally:
        template.close()


def test_server_world_fixture_is_registered_for_a_direct_copy(
    request: pytest.FixtureRequest,
) -> None:
    """The collection hook marks tests whose ``world`` builds on ``db_url``; this test
    does not use it, so its ``postgres_url`` would be empty."""
    assert _DB_TEMPLATE_KEY not in request.node.stash
    assert isinstance(WORLD_TEMPLATE, DatabaseTemplate)


def test_a_world_test_gets_its_database_from_the_world_template(
    world: World, request: pytest.FixtureRequest
) -> None:
    assert request.node.stash[_DB_TEMPLATE_KEY] is WORLD_TEMPLATE
    phone = world.phone("rep_a1")  # the template's people can sign in
    assert phone.tokens["access_token"]
    assert set(world.users) == {"mgr_a", "rep_a1", "rep_a2", "mgr_b", "rep_b1", "admin"}
