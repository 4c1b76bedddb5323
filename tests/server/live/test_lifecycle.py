"""The live machinery follows the app's lifespan, however many times it runs (a test
client may enter it repeatedly): hooks installed while it runs, removed after, and a
second run neither fails nor runs without them."""

from __future__ import annotations

from fastapi.testclient import TestClient

from server.app import create_app
from server.live import Live
from server.migrate import upgrade
from server.settings import Settings
from tests.support.server_proc import TEST_SECRET


def test_lifespan_twice_installs_and_removes_the_hooks(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    app = create_app(Settings(env="test", database_url=sqlite_url, secret_key=TEST_SECRET))
    live: Live = app.state.fieldsync_live_runtime
    try:
        for _ in range(2):
            with TestClient(app) as client:
                assert live.hooked and live.hub.loop is not None
                assert client.get("/healthz").status_code == 200
            assert not live.hooked
    finally:
        app.state.fieldsync.engine.dispose()
