"""``python -m tests.support.hold_server serve …``: the real Fieldsync server with one
fault-injection point for the "a checkpoint never skips a late commit" tests.

A push sent with ``X-Fieldsync-Test-Hold: <key>`` stops at ``push.before_commit`` — its
versions taken, its rows written, its transaction open — until the test releases the
PostgreSQL advisory lock ``<key>`` it holds: the server waits for a shared lock on that
key on a connection of its own. The test sees the push arrive at the point as a lock
wait in ``pg_locks`` (no timers either way). Everything else is the unchanged server.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import psycopg

import server.app as app_module
from server.cli import main

HEADER = "X-Fieldsync-Test-Hold"
_HEADER_KEY = HEADER.lower().encode()
_hold: ContextVar[int | None] = ContextVar("fieldsync_test_hold", default=None)
_real_create_app = app_module.create_app


def create_app(settings: Any = None) -> Any:
    app = _real_create_app(settings)
    url = app.state.fieldsync.settings.database_url.replace("postgresql+psycopg", "postgresql")

    def hold() -> None:
        key = _hold.get()
        if key is None:
            return
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock_shared(%s)", (key,))  # waits for the test
            conn.execute("SELECT pg_advisory_unlock_shared(%s)", (key,))

    app.state.fieldsync.hooks.before_push_commit = hold

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            asked = dict(scope.get("headers", [])).get(_HEADER_KEY)
            # Copied into the request's worker thread, where the push hook runs.
            _hold.set(int(asked) if asked else None)
        await app(scope, receive, send)

    return asgi


if __name__ == "__main__":
    app_module.create_app = create_app
    raise SystemExit(main())
