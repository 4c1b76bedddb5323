"""Responses are read tolerantly: a newer server's answers never break an installed app.

Done-when 3 of issue 13: an answer carrying an unknown field and an unknown change kind
does not break the SDK — the fields are ignored, the change is skipped, everything else
is applied as usual.
"""

from __future__ import annotations

import json
from typing import Any

from client_sdk import MockTransport, Store, SyncClient, TransportRequest, TransportResponse
from client_sdk.testing import FakeServer

from .conftest import FAST


def _newer(server: FakeServer) -> MockTransport:
    """The fake server as a newer version would answer: extra fields everywhere, and a
    change kind this SDK has never heard of in every pull page."""

    def answer(request: TransportRequest) -> TransportResponse:
        response = server.handle(request)
        body: Any = response.json()
        if not isinstance(body, dict) or response.status >= 300:
            return response
        body["served_by"] = {"region": "eu-2", "build": "2031.1"}
        if request.path == "/v1/sync/push":
            for result in body["results"]:
                result["audit_ref"] = "a-1"
                result["merge_trace"] = ["lww"]
        if request.path == "/v1/sync/pull":
            for change in body["changes"]:
                change["origin"] = "web"
            body["changes"].insert(
                0,
                {
                    "collection": "customers",
                    "record_id": "hint-1",
                    "version": 0,
                    "op": "prefetch_hint",  # a change kind from the future
                    "priority": "high",
                },
            )
        if request.path == "/v1/auth/login":
            body["user"]["avatar_url"] = "https://example.invalid/a.png"
            body["session_policy"] = {"idle_minutes": 30}
        if request.path == "/v1/sync/info":
            body["limits"]["max_photo_px"] = 4096
        return TransportResponse(response.status, json.dumps(body).encode(), response.headers)

    return MockTransport(answer)


def test_unknown_fields_and_change_kinds_are_ignored(store: Store, server: FakeServer) -> None:
    client = SyncClient(store, _newer(server), FAST)
    user = client.login("rep1", "fieldsync-demo")
    assert user.username == "rep1"
    server.put("customers", "c-remote", {"name": "From the web", "status": "potential"})
    mine = store.collection("customers").insert({"name": "Mine", "status": "potential"})
    report = client.sync()
    assert report.applied == 1 and report.pulled == 2  # the unknown change is not counted
    customers = store.collection("customers")
    assert customers["c-remote"]["name"] == "From the web"
    assert customers.get("hint-1") is None  # skipped, not stored
    assert "origin" not in customers["c-remote"].fields  # change metadata is not a field
    assert customers[mine.id].pending is False
    assert store.status().pending_total == 0 and store.dead_letters() == []
    assert client.info().limits.max_batch == 500


def test_an_unknown_mutation_status_is_not_lost(store: Store, server: FakeServer) -> None:
    """A status from the future: with an error it is a refusal (dead letter), without
    one an acknowledgement (the next pull brings the record)."""

    def future(request: TransportRequest) -> TransportResponse:
        response = server.handle(request)
        if request.path != "/v1/sync/push":
            return response
        body = response.json()
        first, second = body["results"]
        first["status"] = "deferred"
        second["status"] = "quarantined"
        second["error"] = {"code": "quarantined", "message": "held for review", "details": {}}
        return TransportResponse.of(200, body)

    client = SyncClient(store, MockTransport(future), FAST)
    client.login("rep1", "fieldsync-demo")
    customers = store.collection("customers")
    ok = customers.insert({"name": "Deferred", "status": "potential"})
    held = customers.insert({"name": "Held", "status": "potential"})
    client.sync()
    assert customers[ok.id]["name"] == "Deferred" and not customers[ok.id].pending
    (dead,) = store.dead_letters()
    assert dead.record_id == held.id and dead.code == "quarantined"
