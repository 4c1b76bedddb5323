"""The integration layer's tests: a module-scoped two-team world on SQLite and on
PostgreSQL whose webhook dispatcher runs fast (every 0.1 s, retries from 0.3 s), and a
real HTTP receiver on loopback (:class:`Receiver`) that can be down, failing or up."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import scratch_database
from tests.server.conftest import World, build_world

FAST_WEBHOOKS = {
    "webhook_interval_s": 0.1,
    "webhook_retry_base_s": 0.3,
    "webhook_retry_max_s": 1.0,
    "webhook_max_attempts": 30,
    "webhook_timeout_s": 2.0,
}


@pytest.fixture(scope="module")
def module_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with scratch_database(request.param, tmp_path_factory.mktemp("integration"), "fs_int") as url:
        yield url


@pytest.fixture(scope="module")
def world(module_db_url: str) -> Iterator[World]:
    """Two teams and an admin; the webhook dispatcher runs in the background, fast."""
    w, client = build_world(module_db_url, **FAST_WEBHOOKS)
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


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """A webhook receiver: a real HTTP server on 127.0.0.1 (stopped until :meth:`start`).

    ``fail_next`` answers that many requests with 503 before accepting again."""

    port: int = field(default_factory=lambda: free_port())
    received: list[Received] = field(default_factory=list)
    fail_next: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    failing = receiver.fail_next > 0
                    if failing:
                        receiver.fail_next -= 1
                    else:
                        receiver.received.append(
                            Received(
                                self.path, {k.lower(): v for k, v in self.headers.items()}, body
                            )
                        )
                self.send_response(503 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if path is None or r.path == path]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def wait_for(what: Callable[[], Any], timeout_s: float = 15.0, message: str = "") -> Any:
    """Poll ``what`` until it returns something truthy (the dispatcher is a thread)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting: {message or what}")
        time.sleep(0.05)
