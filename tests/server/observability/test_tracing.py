"""Issue 18, Build: optional OpenTelemetry traces when configured. A real server process
(uvicorn, SQLite) with ``FIELDSYNC_TRACING_ENDPOINT`` pointing at an OTLP/HTTP collector
on loopback (a real HTTP server in this test) exports spans of a real SDK sync: the
request spans name the route, the SQL spans are there, and nothing in what was exported
holds a password, a token, a customer's name or a query string."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from client_sdk import FAST_KDF, HttpTransport, Store, SyncClient, SyncConfig
from sync_protocol import CRM_SCHEMA
from tests.support.server_proc import ServerProcess, create_user_direct

PASSWORD = "Tr0ub4dor&3-trace-staple"
CUSTOMER = "Zhou Tracewell Qxz"


class Collector:
    """An OTLP/HTTP trace receiver: keeps every body POSTed to /v1/traces."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path == "/v1/traces":
                    collector.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def spans(self) -> list[Any]:
        found = []
        for body in self.bodies:
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    found.extend(scope.spans)
        return found

    def service_names(self) -> set[str]:
        names = set()
        for body in self.bodies:
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            for resource in request.resource_spans:
                for attr in resource.resource.attributes:
                    if attr.key == "service.name":
                        names.add(attr.value.string_value)
        return names


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.httpd.shutdown()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, collector: Collector
) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("tracing")
    url = f"sqlite:///{folder / 'fieldsync.db'}"
    env = {
        "FIELDSYNC_TRACING_ENDPOINT": collector.url,
        "FIELDSYNC_TRACING_SERVICE_NAME": "fieldsync-test",
    }
    proc = ServerProcess(url, env=env)
    proc.prepare()
    create_user_direct(url, "tina", PASSWORD, role="manager", user_id="u-tina")
    with proc:
        yield proc


def test_a_sync_is_traced_without_secrets(
    server: ServerProcess, collector: Collector, tmp_path: Path
) -> None:
    store = Store.open(tmp_path / "tina.db", "device-pass", schema=CRM_SCHEMA, kdf=FAST_KDF)
    client = SyncClient(store, HttpTransport(server.url), SyncConfig())
    client.login("tina", PASSWORD, device_name="Tina's phone")
    store.collection("customers").insert({"name": CUSTOMER, "status": "potential"})
    assert client.sync().applied == 1
    tokens = server.login("tina", PASSWORD, device_id="dev-trace-browser")
    found = httpx.get(
        f"{server.url}/v1/manager/records/customers",
        params={"q": CUSTOMER},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert found.status_code == 200 and found.json()["total"] == 1
    httpx.get(f"{server.url}/healthz")
    store.close()

    server.stop()  # the tracer provider flushes on shutdown
    deadline = time.monotonic() + 10
    while not collector.bodies and time.monotonic() < deadline:
        time.sleep(0.1)
    spans = collector.spans()
    assert collector.service_names() == {"fieldsync-test"}
    names = {span.name for span in spans}
    assert any(name.startswith("POST /v1/sync/push") for name in names), names
    assert any(name.startswith("POST /v1/sync/pull") for name in names), names
    assert any(name.startswith("GET /v1/manager/records/{collection}") for name in names)
    assert not any("/healthz" in name for name in names), "probes are not traced"

    sql = [s for s in spans if any(a.key == "db.system" for a in s.attributes)]
    assert sql, "SQLAlchemy statements are traced"
    statements = [
        a.value.string_value for s in sql for a in s.attributes if a.key == "db.statement"
    ]
    assert any("INSERT" in st.upper() for st in statements)

    raw = b"".join(collector.bodies)
    secrets = {
        "password": PASSWORD,
        "access token": tokens["access_token"],
        "refresh token": tokens["refresh_token"],
        "customer name": CUSTOMER,
        "customer name in a query string": CUSTOMER.replace(" ", "+"),
        "customer name url-encoded": CUSTOMER.replace(" ", "%20"),
    }
    leaked = [what for what, value in secrets.items() if value.encode() in raw]
    assert not leaked, f"the exported traces hold: {leaked}"
    server.start()
