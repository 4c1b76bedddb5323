"""Fixtures of the SDK tests: stores on real SQLite files with cheap Argon2id parameters,
and the in-process :class:`~client_sdk.testing.FakeServer` for logic tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from client_sdk import FAST_KDF, Store, SyncClient, SyncConfig
from client_sdk._engine import responses
from client_sdk._local import batches
from client_sdk._rows import Pending
from client_sdk._transports import Transport, TransportRequest, TransportResponse
from client_sdk.testing import FakeServer
from sync_protocol import CRM_SCHEMA, SchemaRegistry

PASSPHRASE = "correct horse battery staple"

MakeStore = Callable[..., Store]


@pytest.fixture
def make_store(tmp_path: Path) -> Iterator[MakeStore]:
    opened: list[Store] = []

    def make(
        name: str = "device.db",
        *,
        schema: SchemaRegistry = CRM_SCHEMA,
        passphrase: str = PASSPHRASE,
        **kw: Any,
    ) -> Store:
        store = Store.open(tmp_path / name, passphrase, schema=schema, kdf=FAST_KDF, **kw)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: MakeStore) -> Store:
    return make_store()


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


def take_batch(store: Store, limit: int) -> list[Pending]:
    """The outbox entries a push would send now, marked sent (white box)."""
    local = store._core.local
    return batches.take_batch(local, limit, local.outbox.summary().last_seq or 0).batch


def no_sleep(_: float) -> None:
    return None


FAST = SyncConfig(sleep=no_sleep, push_batch=50, pull_limit=50)


@pytest.fixture
def client(store: Store, server: FakeServer) -> SyncClient:
    c = SyncClient(store, server.transport(), FAST)
    c.login("rep1", "fieldsync-demo")
    return c


class ServerLayout:
    """Answers pulls of a FakeServer in the server's layout (compact, its key order), so
    the device reads them on the fast path; the FakeServer's own answers have spaces."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner

    def send(self, request: TransportRequest) -> TransportResponse:
        response = self.inner.send(request)
        if request.path == "/v1/sync/pull" and response.status == 200:
            body = json.loads(response.content)
            compact = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            assert responses._read_canonical(compact) is not None
            return TransportResponse(response.status, compact, response.headers)
        return response

    def close(self) -> None:
        self.inner.close()
