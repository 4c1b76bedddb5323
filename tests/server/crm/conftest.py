"""One world per test module and database for the CRM tests (building a world migrates
a fresh database, which costs more than most of these tests): ``world`` here is
module-scoped and parametrised over SQLite and PostgreSQL. Tests keep their data apart
with fresh ids and distinct phone numbers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import scratch_database
from tests.server.conftest import World, build_world


@pytest.fixture(scope="module")
def module_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with scratch_database(request.param, tmp_path_factory.mktemp("crm"), "fs_crm") as url:
        yield url


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


@pytest.fixture
def quiet_world(db_url: str) -> Iterator[World]:
    """The two-team world without the background indexer: only readers catch up."""
    w, client = build_world(db_url, search_index_interval_s=0)
    with client:
        yield w
    w.context.engine.dispose()
