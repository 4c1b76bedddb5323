"""A signed-in console browser over FastAPI's TestClient, for in-process console tests.

``Browser(world, "mgr_a")`` signs in through the sign-in form (double-submit token),
keeps the session cookie and reads each page's CSRF token, like a real browser would.
Browser tests against a real Chromium live in ``tests/console/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.server.conftest import World, build_world, password_of

_TOKEN = re.compile(r'name="login_token" value="([^"]+)"')
_CSRF = re.compile(r'data-csrf="([^"]+)"')


class Browser:
    """One browser (its own cookie jar) signed in to the console as ``name``."""

    def __init__(self, world: World, name: str, *, password: str | None = None) -> None:
        self.world = world
        self.client = TestClient(world.client.app, client=("10.0.0.2", 50001))
        self.csrf = ""
        response = self.sign_in(name, password or password_of(name))
        assert response.status_code == 200 and "/console/login" not in str(response.url), (
            response.text[:500]
        )

    def sign_in(self, username: str, password: str) -> httpx.Response:
        page = self.client.get("/console/login")
        token = _TOKEN.search(page.text)
        assert token is not None
        response = self.client.post(
            "/console/login",
            data={"username": username, "password": password, "login_token": token.group(1)},
        )
        self.remember(response)
        return response

    def remember(self, response: httpx.Response) -> None:
        found = _CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        response = self.client.get(path, **kw)
        self.remember(response)
        return response

    def post(
        self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kw: Any
    ) -> httpx.Response:
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", self.csrf)
        return self.client.post(path, data=form, follow_redirects=False, **kw)


@pytest.fixture
def memory_world(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("FIELDSYNC_ATTACHMENTS_BACKEND", "memory")
    world, client = build_world(sqlite_url)
    with client:
        yield world
    world.context.engine.dispose()
