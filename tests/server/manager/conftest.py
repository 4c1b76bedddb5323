"""Fixtures for the manager API tests: the two-team world of ``tests/server/conftest.py``
plus a signed-in manager (``mgr_a``), admin and rep speaking to ``/v1/manager``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.conftest import Phone, World


class Web:
    """A manager's browser session: JSON calls with the bearer token."""

    def __init__(self, world: World, name: str) -> None:
        self.world = world
        self.phone: Phone = world.phone(name)
        self.user_id = world.users[name]

    @property
    def headers(self) -> dict[str, str]:
        return self.phone.headers

    def get(self, path: str, **kw: Any) -> Any:
        return self.world.client.get(path, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.world.client.post(path, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.world.client.patch(
            path, headers={**self.headers, **kw.pop("headers", {})}, **kw
        )

    def delete(self, path: str, **kw: Any) -> Any:
        return self.world.client.delete(
            path, headers={**self.headers, **kw.pop("headers", {})}, **kw
        )

    def create(self, collection: str, fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
        response = self.post(f"/v1/manager/records/{collection}", json={"fields": fields, **extra})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def mgr(world: World) -> Web:
    return Web(world, "mgr_a")


@pytest.fixture
def admin(world: World) -> Web:
    return Web(world, "admin")
