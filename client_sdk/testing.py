"""An in-process fake Fieldsync server for tests, demos and trying the SDK offline.

:class:`FakeServer` speaks the sync protocol (login/refresh, push with the real
:func:`sync_protocol.merge_record`, paged pull with checkpoints, ``_conflicts``
records) over a :class:`MockTransport`, with knobs for the unhappy paths: expire tokens,
revoke a device, evict a record, demand a resync, drop the network.

It is deliberately small: one team, everybody sees every record (except evicted ones);
it is *not* the real server (``server/``), whose end-to-end tests run the SDK against a
real process.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from sync_protocol import (
    CRM_SCHEMA,
    ErrorCode,
    HybridLogicalClock,
    LocalEdit,
    MergeStatus,
    MutationResult,
    MutationStatus,
    PullRequest,
    PushRequest,
    SchemaRegistry,
    StoredRecord,
    merge_record,
)
from sync_protocol.errors import ErrorBody

from ._transports import MockTransport, TransportRequest, TransportResponse

CONFLICTS = "_conflicts"


@dataclass
class _Row:
    record: StoredRecord
    version: int


@dataclass
class _Token:
    user_id: str
    device_id: str
    expires_at: float


@dataclass
class FakeServer:
    """A protocol-faithful server living in memory. ``transport()`` connects a client."""

    schema: SchemaRegistry = CRM_SCHEMA
    users: dict[str, str] = field(default_factory=lambda: {"rep1": "fieldsync-demo"})
    access_ttl_s: float = 3600.0
    rows: dict[tuple[str, str], _Row] = field(default_factory=dict)
    evicted: dict[tuple[str, str], int] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    resync_before: int = 0
    requests: int = 0

    def __post_init__(self) -> None:
        self._version = 0
        self._seen: dict[str, MutationResult] = {}
        self._access: dict[str, _Token] = {}
        self._refresh: dict[str, _Token] = {}
        self._hlc = HybridLogicalClock("server")
        self._ids = itertools.count(1)
        self.fail_next: list[int] = []

    # -- knobs ----------------------------------------------------------------------------
    def transport(self) -> MockTransport:
        return MockTransport(self.handle)

    def expire_tokens(self) -> None:
        for token in self._access.values():
            token.expires_at = 0.0

    def revoke(self, device_id: str) -> None:
        self.revoked.add(device_id)

    def evict(self, collection: str, record_id: str) -> None:
        self._version += 1
        self.evicted[(collection, record_id)] = self._version

    def require_resync(self) -> None:
        """Every checkpoint issued so far becomes too old (purged tombstones)."""
        self.resync_before = self._version + 1

    def put(self, collection: str, record_id: str, fields: dict[str, Any]) -> int:
        """Write a record directly (as another user or the web API would)."""
        edit = LocalEdit("upsert", fields, self._hlc.now().encode())
        return self._apply(collection, record_id, edit, None).version or 0

    def fields(self, collection: str, record_id: str) -> dict[str, Any] | None:
        row = self.rows.get((collection, record_id))
        return None if row is None or row.record.deleted else dict(row.record.fields)

    # -- HTTP -----------------------------------------------------------------------------
    def handle(self, request: TransportRequest) -> TransportResponse:
        self.requests += 1
        if self.fail_next:
            status = self.fail_next.pop(0)
            return _error(status, ErrorCode.INTERNAL, "injected failure")
        path = request.path
        if path == "/v1/auth/login":
            return self._login(request.body)
        if path == "/v1/auth/refresh":
            return self._do_refresh(request.body)
        if path == "/v1/auth/logout":
            return TransportResponse.of(204, None)
        token = self._authenticate(request)
        if isinstance(token, TransportResponse):
            return token
        if path == "/v1/sync/push":
            return self._push(PushRequest.model_validate(request.body))
        if path == "/v1/sync/pull":
            return self._pull(PullRequest.model_validate(request.body))
        if path == "/v1/sync/info":
            return TransportResponse.of(
                200,
                {
                    "protocol": {"min": 1, "max": 1},
                    "schema_version": self.schema.version,
                    "min_schema_version": self.schema.min_client_version,
                    "limits": {
                        "max_batch": 500,
                        "max_pull_limit": 10_000,
                        "max_drift_ms": 300_000,
                        "tombstone_retention_days": 90,
                        "max_body_bytes": 10_000_000,
                    },
                    "server_time_ms": int(time.time() * 1000),
                },
            )
        return _error(404, ErrorCode.NOT_FOUND, f"no route {path}")

    def _issue(self, username: str, device_id: str) -> TransportResponse:
        access, refresh = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        self._access[access] = _Token(username, device_id, time.time() + self.access_ttl_s)
        self._refresh[refresh] = _Token(username, device_id, time.time() + 30 * 86400)
        return TransportResponse.of(
            200,
            {
                "access_token": access,
                "refresh_token": refresh,
                "token_type": "bearer",
                "expires_in": int(self.access_ttl_s),
                "user": {
                    "id": f"u-{username}",
                    "username": username,
                    "display_name": username,
                    "role": "rep",
                },
            },
        )

    def _login(self, body: dict[str, Any]) -> TransportResponse:
        if self.users.get(body.get("username", "")) != body.get("password"):
            return _error(401, ErrorCode.UNAUTHORIZED, "wrong username or password")
        if body["device_id"] in self.revoked:
            return _error(403, ErrorCode.DEVICE_REVOKED, "device revoked", {"wipe": True})
        return self._issue(body["username"], body["device_id"])

    def _do_refresh(self, body: dict[str, Any]) -> TransportResponse:
        token = self._refresh.pop(body.get("refresh_token", ""), None)
        if token is None:
            return _error(401, ErrorCode.UNAUTHORIZED, "refresh token not recognised")
        if token.device_id in self.revoked:
            return _error(403, ErrorCode.DEVICE_REVOKED, "device revoked", {"wipe": True})
        return self._issue(token.user_id, token.device_id)

    def _authenticate(self, request: TransportRequest) -> _Token | TransportResponse:
        header = request.headers.get("Authorization", "")
        token = self._access.get(header.removeprefix("Bearer "))
        if token is None:
            return _error(401, ErrorCode.UNAUTHORIZED, "not logged in")
        if token.device_id in self.revoked:
            return _error(403, ErrorCode.DEVICE_REVOKED, "device revoked", {"wipe": True})
        if token.expires_at < time.time():
            return _error(401, ErrorCode.TOKEN_EXPIRED, "access token expired")
        return token

    # -- sync -----------------------------------------------------------------------------
    def _push(self, req: PushRequest) -> TransportResponse:
        results = []
        for m in req.mutations:
            if m.id in self._seen:
                dup = self._seen[m.id].model_copy(update={"status": MutationStatus.DUPLICATE})
                results.append(dup)
                continue
            self._hlc.receive(m.hlc)
            result = self._push_one(m.id, m.collection, m.record_id, m)
            self._seen[m.id] = result
            results.append(result)
        body = {
            "protocol": 1,
            "results": [r.model_dump(mode="json") for r in results],
            "server_hlc": self._hlc.now().encode(),
            "warnings": [],
        }
        return TransportResponse.of(200, body)

    def _push_one(self, mid: str, collection: str, record_id: str, m: Any) -> MutationResult:
        entity = self.schema.get(collection)
        if entity is None:
            return _rejected(mid, ErrorCode.UNKNOWN_COLLECTION, f"no collection {collection}")
        if (collection, record_id) in self.evicted:
            return _rejected(mid, ErrorCode.FORBIDDEN, "not yours")
        errors = entity.validate(m.fields, partial=True) if m.op == "upsert" else []
        if errors:
            return _rejected(
                mid,
                ErrorCode.VALIDATION_FAILED,
                "invalid",
                {"fields": [e.model_dump() for e in errors]},
            )
        existing = self.rows.get((collection, record_id))
        if entity.append_only and existing is not None:
            return _rejected(mid, ErrorCode.APPEND_ONLY, f"{collection} is append-only")
        edit = LocalEdit(m.op, m.fields, m.hlc, m.base_version, m.base)
        result = self._apply(collection, record_id, edit, m.base)
        for cid in m.resolves or []:
            conflict = self.rows.get((CONFLICTS, cid))
            if conflict is not None:
                self._version += 1
                conflict.record.fields["status"] = "resolved"
                conflict.version = self._version
        return result.model_copy(update={"mutation_id": mid})

    def _apply(
        self, collection: str, record_id: str, edit: LocalEdit, base: dict[str, Any] | None
    ) -> MutationResult:
        entity = self.schema.get(collection)
        row = self.rows.get((collection, record_id))
        new_version = self._version + 1
        assert entity is not None
        merged = merge_record(
            entity, base, edit, row.record if row else None, new_version=new_version
        )
        changed = merged.status is not MergeStatus.UNCHANGED or merged.conflicts
        version = row.version if row else None
        if changed:
            self._version = new_version
            version = new_version
            self.rows[(collection, record_id)] = _Row(merged.record, new_version)
        conflict_ids = []
        for c in merged.conflicts:
            self._version += 1
            cid = f"c{next(self._ids)}"
            conflict_ids.append(cid)
            self.rows[(CONFLICTS, cid)] = _Row(
                StoredRecord(
                    fields={
                        "collection": collection,
                        "record_id": record_id,
                        "field": c.field,
                        "base": c.base,
                        "local": c.local,
                        "remote": c.remote,
                        "local_hlc": c.local_hlc,
                        "remote_hlc": c.remote_hlc,
                        "status": "open",
                        "resolution": None,
                    },
                    clocks={},
                ),
                self._version,
            )
        status = {
            MergeStatus.APPLIED: MutationStatus.APPLIED,
            MergeStatus.MERGED: MutationStatus.MERGED,
            MergeStatus.CONFLICT: MutationStatus.CONFLICT,
            MergeStatus.UNCHANGED: MutationStatus.MERGED,
        }[merged.status]
        record = (
            copy.deepcopy(merged.record.fields)
            if status is not MutationStatus.APPLIED and not merged.record.deleted
            else None
        )
        return MutationResult(
            mutation_id="-",
            status=status,
            version=version,
            conflict_ids=conflict_ids,
            record=record,
        )

    def _pull(self, req: PullRequest) -> TransportResponse:
        since = int(req.checkpoint.split(":")[1]) if req.checkpoint else 0
        if req.checkpoint is not None and since < self.resync_before:
            return _error(410, ErrorCode.RESYNC_REQUIRED, "checkpoint too old")
        changes: list[tuple[int, dict[str, Any]]] = []
        for (collection, rid), row in self.rows.items():
            if row.version <= since or (collection, rid) in self.evicted:
                continue
            rec = row.record
            change: dict[str, Any] = {
                "collection": collection,
                "record_id": rid,
                "version": row.version,
                "op": "delete" if rec.deleted else "upsert",
            }
            if not rec.deleted:
                change["fields"] = copy.deepcopy(rec.fields)
            changes.append((row.version, change))
        for (collection, rid), version in self.evicted.items():
            if version > since:
                changes.append(
                    (
                        version,
                        {
                            "collection": collection,
                            "record_id": rid,
                            "version": version,
                            "op": "evict",
                        },
                    )
                )
        changes.sort(key=lambda c: c[0])
        page = changes[: req.limit]
        checkpoint = page[-1][0] if page else since
        body = {
            "protocol": 1,
            "changes": [c for _, c in page],
            "checkpoint": f"v1:{checkpoint}",
            "has_more": len(changes) > len(page),
            "server_hlc": self._hlc.now().encode(),
            "remaining": len(changes) - len(page),
        }
        return TransportResponse.of(200, body)


def _rejected(
    mid: str, code: ErrorCode, message: str, details: dict[str, Any] | None = None
) -> MutationResult:
    return MutationResult(
        mutation_id=mid,
        status=MutationStatus.REJECTED,
        error=ErrorBody(code=code, message=message, details=details or {}),
    )


def _error(
    status: int, code: ErrorCode, message: str, details: dict[str, Any] | None = None
) -> TransportResponse:
    return TransportResponse.of(
        status, {"error": {"code": code.value, "message": message, "details": details or {}}}
    )
