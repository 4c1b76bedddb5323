"""schemathesis over the whole OpenAPI document — sync, auth, attachments, manager, admin,
fleet, backups, live — signed in as a rep, a manager and an admin (issue 12, defect 11).

For every operation a few generated requests (valid and invalid data) are sent in
process; each answer must be:

* not a server error (no 5xx: a 503 is documented, a 500 never is),
* a documented status (``status_code_conformance``: a route that answers 409 must say so),
* of the documented schema and content type (errors included: the one error envelope).

The document must also declare the bearer scheme and ask it of every signed-in route.
Examples are bounded (Hypothesis, derandomized) so the file runs in well under a minute.
Operations are driven one by one with ``APIOperation.as_strategy`` (schemathesis' lazy
``from_fixture`` loader does not run under pytest 9 yet).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server.conftest import World, build_world, customer_fields
from tests.server.manager.conftest import Web

#: Generated requests per operation, role and mode.
EXAMPLES = 3
ROLES = {"rep": "rep_a1", "manager": "mgr_a", "admin": "admin"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]
#: Routes that sign the caller out run last, so the others see a live token.
LAST = ("/v1/auth/logout",)
#: Routes that need no sign-in.
PUBLIC = (
    "/healthz",
    "/readyz",
    "/metrics",
    "/v1/auth/login",
    "/v1/auth/refresh",
    "/v1/sync/info",
    "/v1/sync/schema",
    "/v1/attachments/limits",
)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, Any]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('openapi') / 'openapi.db'}"
    # Event streams send a heartbeat at once: schemathesis reads a few events and stops.
    world, client = build_world(url, live_heartbeat_s=0.05)
    with client:
        mgr = Web(world, "mgr_a")
        # A little data, so generated requests meet real records too.
        mgr.create("customers", {"name": "张三", "status": "intent"}, id="c-1")
        mgr.create("contacts", {"customer_id": "c-1", "name": "李四"}, id="p-1")
        rep = world.phone("rep_a1")
        assert rep.push_one("customers", "c-rep", customer_fields())["status"] == "applied"
        schema = schemathesis.openapi.from_asgi(
            "/openapi.json", _without_lifespan(world.client.app)
        )
        yield world, schema
    world.context.engine.dispose()


def _without_lifespan(app: Any) -> Any:
    """``app`` for schemathesis, whose ASGI transport opens a client (and so runs the
    lifespan: startup, shutdown) around every single request. The app's lifespan runs
    once, around the whole module (``with client`` above); here it is acknowledged only."""

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    return asgi


def _runner(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> Any:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    return run


def test_the_document_declares_bearer_auth_on_every_signed_in_route(
    api: tuple[World, Any],
) -> None:
    world, _ = api
    document = world.client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearerAuth"]["description"],
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = set(operation["responses"])
            if path.startswith(PUBLIC):
                assert not operation.get("security"), (method, path)
                continue
            assert operation.get("security") == [{"bearerAuth": []}], (method, path)
            assert {"401", "403", "503"} <= responses, (method, path)
            if method in ("post", "put", "patch", "delete"):
                assert {"413", "415", "422"} <= responses, (method, path)
    sync = document["paths"]["/v1/sync/push"]["post"]["responses"]
    assert {"200", "401", "403", "409", "413", "415", "422", "426", "503"} <= set(sync)
    assert sync["413"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorResponse"
    }
    login = document["paths"]["/v1/auth/login"]["post"]["responses"]
    assert {"401", "409", "429"} <= set(login)
    assert {"410", "426"} <= set(document["paths"]["/v1/sync/pull"]["post"]["responses"])


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_route_conforms_to_the_document(api: tuple[World, Any], role: str) -> None:
    world, schema = api
    phone = world.phone(ROLES[role])  # a fresh sign-in: an earlier role's logout is not ours
    operations = sorted(
        (result.ok() for result in schema.get_all_operations()),
        key=lambda op: (op.path in LAST, op.path, op.method),
    )
    paths = {op.path for op in operations}
    for wanted in ("/v1/sync/push", "/v1/auth/login", "/v1/attachments", "/v1/admin/backups"):
        assert wanted in paths
    assert len(operations) >= 60
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _runner(operation, mode, phone.headers)()
            except Unsatisfiable:
                continue  # no invalid request exists for an operation without inputs
            except (Exception, BaseExceptionGroup) as exc:  # collect all, then report
                failures.append(f"{operation.label} [{mode.value}] as {role}: {exc}")
    assert not failures, f"{len(failures)} failing:\n\n" + "\n\n".join(failures)
