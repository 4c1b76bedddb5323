"""One world per test module and database for the CRM tests (building a world migrates
a fresh database, which costs more than most of these tests): ``world`` here is
module-scoped and parametrised over SQLite and PostgreSQL. Tests keep their data apart
with fresh ids and distinct phone numbers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import POSTGRES_ADMIN_URL, _libpq_url, postgres_reachable, sqlalchemy_url
from tests.server.conftest import World, build_world


@pytest.fixture(scope="module")
def module_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('crm') / 'fieldsync.db'}"
        return
    if not postgres_reachable():
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}")
    import psycopg

    name = f"fs_crm_{uuid.uuid4().hex[:12]}"
    admin = _libpq_url(POSTGRES_ADMIN_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield sqlalchemy_url(f"{admin.rsplit('/', 1)[0]}/{name}")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def world(module_db_url: str) -> Iterator[World]:
    """Two teams (A: mgr_a, rep_a1, rep_a2; B: mgr_b, rep_b1) and an admin, shared by
    the module's tests on this database."""
    w, client = build_world(module_db_url)
    with client:
        yield w
    w.context.engine.dispose()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "module_db_url" in metafunc.fixturenames:
        metafunc.parametrize(
            "module_db_url",
            ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
            indirect=True,
            scope="module",
        )
