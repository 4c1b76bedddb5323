"""schemathesis against the app in-process: every manager and admin-team route, a few
generated requests each, signed in as a manager — no server error, and every response
(errors included) matches the route's documented schema and status codes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.server.conftest import World, build_world
from tests.server.manager.conftest import Web


@pytest.fixture
def manager_world(sqlite_url: str) -> Iterator[tuple[World, Web]]:
    world, client = build_world(sqlite_url)
    with client:
        mgr = Web(world, "mgr_a")
        # A little data, so generated requests meet real records too.
        mgr.create("customers", {"name": "张三", "status": "intent"}, id="c-1")
        mgr.create("contacts", {"customer_id": "c-1", "name": "李四"}, id="p-1")
        yield world, mgr
    world.context.engine.dispose()


@pytest.fixture
def manager_api(manager_world: tuple[World, Web]) -> Any:
    world, _ = manager_world
    return schemathesis.openapi.from_asgi("/openapi.json", world.client.app)


schema = schemathesis.pytest.from_fixture("manager_api").include(
    path_regex=r"^/v1/(manager|admin/teams)"
)


@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_manager_api_conforms_to_its_openapi(case: Any, manager_world: tuple[World, Web]) -> None:
    _, mgr = manager_world
    case.call_and_validate(headers=mgr.headers)
