"""The fake server's HTTP face: routes, accounts, tokens and the knobs tests turn."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from sync_protocol import (
    CRM_SCHEMA,
    HTTP_STATUS,
    ErrorCode,
    LoginRequest,
    ProtocolError,
    PullRequest,
    PushRequest,
    RefreshRequest,
    SchemaRegistry,
    check_schema_name,
    check_schema_version,
)

from .._transports import MockTransport, TransportRequest, TransportResponse
from ._ledger import Ledger


@dataclass
class _Token:
    username: str
    device_id: str
    expires_at: float

    @property
    def user_id(self) -> str:
        return f"u-{self.username}"


class FakeServer(Ledger):
    """A protocol-faithful server living in memory; ``transport()`` connects a client.

    One team in which everybody sees every record (scope is the real server's, tested
    against it). Knobs for the unhappy paths: :meth:`expire_tokens`, :meth:`revoke`
    (with or without a wipe), :meth:`evict`, :meth:`require_resync`, ``fail_next``
    (statuses to answer the next requests with), ``offline_lease_days``.
    """

    def __init__(
        self,
        schema: SchemaRegistry = CRM_SCHEMA,
        users: dict[str, str] | None = None,
        *,
        access_ttl_s: float = 3600.0,
        offline_lease_days: int = 0,
    ) -> None:
        super().__init__(schema)
        self.users = dict(users) if users is not None else {"rep1": "fieldsync-demo"}
        self.access_ttl_s = access_ttl_s
        self.offline_lease_days = offline_lease_days
        self.revoked: dict[str, bool] = {}
        self.devices: dict[str, str] = {}
        self.requests = 0
        self.fail_next: list[int] = []
        self._access: dict[str, _Token] = {}
        self._refresh: dict[str, _Token] = {}

    # -- knobs ------------------------------------------------------------------------------
    def transport(self) -> MockTransport:
        return MockTransport(self.handle)

    def expire_tokens(self) -> None:
        for token in self._access.values():
            token.expires_at = 0.0

    def revoke(self, device_id: str, *, wipe: bool = False) -> None:
        """Revoke a device: it stops syncing; ``wipe=True`` also tells it to erase."""
        self.revoked[device_id] = wipe

    def evict(self, collection: str, record_id: str) -> None:
        """The record leaves everybody's scope (as after a reassignment)."""
        self.version += 1
        self.evicted[(collection, record_id)] = self.version

    def require_resync(self) -> None:
        """Every checkpoint issued so far becomes too old (purged tombstones)."""
        self.resync_before = self.version + 1

    def fields(self, collection: str, record_id: str) -> dict[str, Any] | None:
        row = self.rows.get((collection, record_id))
        return None if row is None or row.record.deleted else dict(row.record.fields)

    # -- HTTP -------------------------------------------------------------------------------
    def handle(self, request: TransportRequest) -> TransportResponse:
        self.requests += 1
        if self.fail_next:
            return _error(ErrorCode.INTERNAL, "injected failure", status=self.fail_next.pop(0))
        try:
            return self._route(request)
        except ProtocolError as exc:
            return _error(ErrorCode(exc.code), exc.message, exc.details)
        except ValidationError as exc:
            return _error(
                ErrorCode.VALIDATION_FAILED,
                "the request is not valid",
                {"errors": exc.errors(include_url=False, include_context=False)},
            )

    def _route(self, request: TransportRequest) -> TransportResponse:
        # Through JSON, as on the wire: the messages are strict (a tuple is no list).
        path, body = request.path, json.loads(json.dumps(request.body))
        if path == "/v1/auth/login":
            return self._login(LoginRequest.model_validate(body))
        if path == "/v1/auth/refresh":
            return self._renew(RefreshRequest.model_validate(body))
        if path == "/v1/auth/logout":
            return TransportResponse.of(204, None)
        token = self._authenticate(request)
        if isinstance(token, TransportResponse):
            return token
        if path == "/v1/sync/push":
            request_ = PushRequest.model_validate(body)
            self._check_schema(request_.schema_name, request_.schema_version)
            return TransportResponse.of(200, self.push(request_, token.user_id, token.device_id))
        if path == "/v1/sync/pull":
            pull = PullRequest.model_validate(body)
            self._check_schema(pull.schema_name, pull.schema_version)
            page = self.pull(pull)
            if page is None:
                return _error(ErrorCode.RESYNC_REQUIRED, "checkpoint too old")
            return TransportResponse.of(200, page)
        if path == "/v1/sync/info":
            return TransportResponse.of(200, self.info())
        return _error(ErrorCode.NOT_FOUND, f"no route {path}")

    def _check_schema(self, name: str | None, version: int) -> None:
        """The server's checks, from the protocol's own functions (a ProtocolError)."""
        check_schema_name(name, served=self.schema.name)
        check_schema_version(
            version, current=self.schema.version, minimum=self.schema.min_client_version
        )

    def info(self) -> dict[str, Any]:
        return {
            "protocol": {"min": 1, "max": 1},
            "schema_version": self.schema.version,
            "min_schema_version": self.schema.min_client_version,
            "limits": {
                "max_batch": 500,
                "max_pull_limit": 10_000,
                "max_drift_ms": 300_000,
                "tombstone_retention_days": 90,
                "max_body_bytes": 10_000_000,
                "offline_lease_days": self.offline_lease_days,
            },
            "server_time_ms": int(time.time() * 1000),
        }

    def _issue(self, username: str, device_id: str) -> TransportResponse:
        access, refresh = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        self._access[access] = _Token(username, device_id, time.time() + self.access_ttl_s)
        self._refresh[refresh] = _Token(username, device_id, time.time() + 30 * 86400)
        user = {"id": f"u-{username}", "username": username, "display_name": username}
        return TransportResponse.of(
            200,
            {
                "access_token": access,
                "refresh_token": refresh,
                "token_type": "bearer",
                "expires_in": int(self.access_ttl_s),
                "user": {**user, "role": "rep"},
            },
        )

    def _login(self, body: LoginRequest) -> TransportResponse:
        if self.users.get(body.username) != body.password:
            return _error(ErrorCode.UNAUTHORIZED, "wrong username or password")
        if self.devices.setdefault(body.device_id, body.username) != body.username:
            return _error(ErrorCode.DEVICE_ID_TAKEN, "this device id belongs to another user")
        if body.device_id in self.revoked:
            return _revoked(self.revoked[body.device_id])
        return self._issue(body.username, body.device_id)

    def _renew(self, body: RefreshRequest) -> TransportResponse:
        token = self._refresh.pop(body.refresh_token, None)
        if token is None:
            return _error(ErrorCode.UNAUTHORIZED, "refresh token not recognised")
        if token.device_id in self.revoked:
            return _revoked(self.revoked[token.device_id])
        return self._issue(token.username, token.device_id)

    def _authenticate(self, request: TransportRequest) -> _Token | TransportResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        header = headers.get("authorization", "")
        token = self._access.get(header.removeprefix("Bearer "))
        if token is None:
            return _error(ErrorCode.UNAUTHORIZED, "not logged in")
        if token.device_id in self.revoked:
            return _revoked(self.revoked[token.device_id])
        if token.expires_at < time.time():
            return _error(ErrorCode.TOKEN_EXPIRED, "access token expired")
        return token


def _revoked(wipe: bool) -> TransportResponse:
    return _error(ErrorCode.DEVICE_REVOKED, "this device was revoked", {"wipe": wipe})


def _error(
    code: ErrorCode,
    message: str,
    details: dict[str, Any] | None = None,
    *,
    status: int | None = None,
) -> TransportResponse:
    body = {"error": {"code": code.value, "message": message, "details": details or {}}}
    return TransportResponse.of(status or HTTP_STATUS[code], body)
