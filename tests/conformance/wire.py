"""A device speaking the wire protocol by hand: raw JSON through a transport.

The conformance tests talk through this and nothing of the SDK's sync logic, so what
they check is the server's answer — the fake's or the real one's — not the client's
interpretation of it.
"""

from __future__ import annotations

import uuid
from typing import Any

from client_sdk import Transport, TransportRequest, TransportResponse
from sync_protocol import HybridLogicalClock

PASSWORD = "fieldsync-demo"


def uid(prefix: str = "r") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


class Device:
    def __init__(self, transport: Transport, username: str = "rep1") -> None:
        self.transport = transport
        self.id = uid("dev")
        self.clock = HybridLogicalClock(self.id)
        self.username = username
        answer = self.send("POST", "/v1/auth/login", self.credentials(), auth=False)
        assert answer.status == 200, answer.content
        self.tokens: dict[str, Any] = answer.json()

    def credentials(self, password: str = PASSWORD) -> dict[str, Any]:
        return {"username": self.username, "password": password, "device_id": self.id}

    def send(
        self, method: str, path: str, body: Any = None, *, auth: bool = True
    ) -> TransportResponse:
        headers = {"Authorization": f"Bearer {self.tokens['access_token']}"} if auth else {}
        return self.transport.send(TransportRequest(method, path, body, headers))

    def mutation(
        self,
        collection: str,
        record_id: str,
        fields: dict[str, Any] | None = None,
        *,
        op: str = "upsert",
        base_version: int | None = None,
        base: dict[str, Any] | None = None,
        group: str | None = None,
        resolves: list[str] | None = None,
    ) -> dict[str, Any]:
        m: dict[str, Any] = {
            "id": uid("m"),
            "collection": collection,
            "record_id": record_id,
            "op": op,
            "base_version": base_version,
            "fields": fields or {},
            "hlc": self.clock.now().encode(),
        }
        for key, value in (("base", base), ("group", group), ("resolves", resolves)):
            if value is not None:
                m[key] = value
        return m

    def push_raw(self, *mutations: dict[str, Any]) -> TransportResponse:
        body = {"protocol": 1, "device_id": self.id, "schema_version": 1, "mutations": mutations}
        return self.send("POST", "/v1/sync/push", body)

    def push(self, *mutations: dict[str, Any]) -> list[dict[str, Any]]:
        answer = self.push_raw(*mutations)
        assert answer.status == 200, answer.content
        results: list[dict[str, Any]] = answer.json()["results"]
        assert [r["mutation_id"] for r in results] == [m["id"] for m in mutations]
        return results

    def pull(self, checkpoint: str | None = None, limit: int = 1000) -> dict[str, Any]:
        body = {
            "protocol": 1,
            "device_id": self.id,
            "schema_version": 1,
            "checkpoint": checkpoint,
            "limit": limit,
        }
        answer = self.send("POST", "/v1/sync/pull", body)
        assert answer.status == 200, answer.content
        page: dict[str, Any] = answer.json()
        return page

    def pull_all(self, checkpoint: str | None = None) -> tuple[dict[tuple[str, str], Any], str]:
        """Every change after ``checkpoint`` (the latest per record) and the new checkpoint."""
        seen: dict[tuple[str, str], Any] = {}
        while True:
            page = self.pull(checkpoint)
            for change in page["changes"]:
                seen[(change["collection"], change["record_id"])] = change
            checkpoint = page["checkpoint"]
            if not page["has_more"]:
                return seen, checkpoint

    def customer(self, **fields: Any) -> tuple[str, int]:
        """A new customer of this device's user; (id, version)."""
        rid = uid("cust")
        values = {"name": f"Customer {rid}", "status": "potential", **fields}
        (result,) = self.push(self.mutation("customers", rid, values))
        assert result["status"] == "applied", result
        return rid, int(result["version"])
