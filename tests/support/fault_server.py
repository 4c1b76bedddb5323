"""``python -m tests.support.fault_server serve …``: the real Fieldsync server with
fault-injection points — it SIGKILLs itself (a power cut, as far as the database can
tell) exactly when a request reaches a chosen point, instead of a test guessing a
moment with a timer.

``FIELDSYNC_TEST_FAULTS="push.before_commit=2,push.after_commit=3"`` kills the process
the 2nd time (counted from this start) a push is about to commit, or the 3rd time a
committed push is about to answer. Points:

* ``push.before_commit`` — the push's rows are written and the change counter locked;
  the transaction has not committed (``ServerContext.hooks.before_push_commit``);
* ``push.after_commit`` — the push has committed; its answer has not left the server;
* ``pull.before_answer`` — a pull page is read; it has not left the server.

A request may also carry ``X-Fieldsync-Test-Fault: <point>``: that request kills the
process when it reaches ``<point>`` (a client-side test picks *which* request, the server
picks the exact moment).

Everything else is the unchanged server (``server.app.create_app``).
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from contextvars import ContextVar
from typing import Any

import server.app as app_module
from server.cli import main

ENV = "FIELDSYNC_TEST_FAULTS"
HEADER = "X-Fieldsync-Test-Fault"
_HEADER_KEY = HEADER.lower().encode()
#: The point the current request asked to die at (its header), if any.
_armed: ContextVar[str | None] = ContextVar("fieldsync_test_fault", default=None)
_real_create_app = app_module.create_app
_ANSWER_POINTS = {"/v1/sync/push": "push.after_commit", "/v1/sync/pull": "pull.before_answer"}


def parse(spec: str) -> dict[str, set[int]]:
    """``"a=2,a=5,b=1"`` → ``{"a": {2, 5}, "b": {1}}``."""
    faults: dict[str, set[int]] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        point, _, n = item.partition("=")
        faults.setdefault(point, set()).add(int(n))
    return faults


class Faults:
    def __init__(self, spec: str) -> None:
        self.wanted = parse(spec)
        self.seen: Counter[str] = Counter()

    def hit(self, point: str) -> None:
        self.seen[point] += 1
        if self.seen[point] in self.wanted.get(point, ()) or _armed.get() == point:
            os.kill(os.getpid(), signal.SIGKILL)


def create_app(settings: Any = None) -> Any:
    app = _real_create_app(settings)
    faults = Faults(os.environ.get(ENV, ""))
    app.state.fieldsync.hooks.before_push_commit = lambda: faults.hit("push.before_commit")

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        point = _ANSWER_POINTS.get(scope.get("path", "")) if scope["type"] == "http" else None
        if scope["type"] == "http":
            asked = dict(scope.get("headers", [])).get(_HEADER_KEY)
            # Copied into the request's worker thread, where the push hook runs.
            _armed.set(asked.decode() if asked else None)
        if point is None:
            await app(scope, receive, send)
            return

        async def answer(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                faults.hit(point)
            await send(message)

        await app(scope, receive, answer)

    return asgi


if __name__ == "__main__":
    # Only in the server process: uvicorn imports "server.app:create_app" after this.
    # (Tests import this module for ENV and HEADER; their apps stay unchanged.)
    app_module.create_app = create_app
    raise SystemExit(main())
