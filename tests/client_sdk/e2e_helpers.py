"""Helpers of the SDK end-to-end tests (real server process over real HTTP)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from client_sdk import (
    FAST_KDF,
    HttpTransport,
    Store,
    SyncClient,
    SyncConfig,
    TransportRequest,
    TransportResponse,
)
from sync_protocol import CRM_SCHEMA
from tests.support.server_proc import ServerProcess


class RecordingTransport(HttpTransport):
    """An HttpTransport that remembers every request it sent."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        self.sent: list[TransportRequest] = []
        self.statuses: list[int] = []

    def send(self, request: TransportRequest) -> TransportResponse:
        self.sent.append(request)
        response = super().send(request)
        self.statuses.append(response.status)
        return response


def device(
    tmp_path: Path,
    name: str,
    server: ServerProcess,
    username: str = "rep1",
    **config: Any,
) -> tuple[Store, SyncClient]:
    store = Store.open(
        tmp_path / f"{name}.db", f"{name}-passphrase", schema=CRM_SCHEMA, kdf=FAST_KDF
    )
    client = SyncClient(store, RecordingTransport(server.url), SyncConfig(**config))
    client.login(username, "fieldsync-demo", device_name=name)
    return store, client


def revoke(server: ServerProcess, device_id: str, *, wipe: bool = True) -> None:
    """Revoke a device directly in the server's database (the manager API's job)."""
    from server.accounts import revoke_device
    from server.db import make_engine, make_session_factory

    engine = make_engine(server.db_url)
    try:
        with make_session_factory(engine)() as session:
            assert revoke_device(session, device_id, wipe=wipe) is not None
            session.commit()
    finally:
        engine.dispose()


def reassign(server: ServerProcess, customer_id: str, new_owner_id: str) -> dict[str, Any]:
    token = server.login("manager", device_id="e2e-manager")["access_token"]
    response = httpx.post(
        f"{server.url}/v1/admin/customers/reassign",
        json={"customer_ids": [customer_id], "new_owner_id": new_owner_id},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result
