"""Wire messages: strict parsing, version negotiation and the error body."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from sync_protocol import (
    HTTP_STATUS,
    PROTOCOL_VERSION,
    Change,
    ConflictRecord,
    ErrorCode,
    ErrorResponse,
    FieldError,
    LoginRequest,
    Mutation,
    ProtocolError,
    ProtocolUnsupported,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
    SchemaTooOld,
    ValidationFailed,
    check_schema_version,
    negotiate,
)

HLC = "001732363212345:00000:dev-7f3a"

MUTATION: dict[str, Any] = {
    "id": "018f2b6e-8c1d-7a00-9b1e-3c5d2e1f0a01",
    "collection": "customers",
    "record_id": "018f2b6e-8c1d-7a00-9b1e-3c5d2e1f0a02",
    "op": "upsert",
    "base_version": None,
    "fields": {"name": "张三", "status": "potential"},
    "hlc": HLC,
}


def test_the_documented_push_example_parses() -> None:
    example = PushRequest.model_json_schema()["examples"][0]
    request = PushRequest.model_validate(example)
    assert request.protocol == PROTOCOL_VERSION
    assert request.mutations[0].fields["name"] == "张三"


@pytest.mark.parametrize(
    ("model", "good"),
    [
        (Mutation, MUTATION),
        (PushRequest, {"device_id": "d1", "schema_version": 1, "mutations": [MUTATION]}),
        (PullRequest, {"device_id": "d1", "schema_version": 1, "checkpoint": "v1:0"}),
        (LoginRequest, {"username": "rep1", "password": "pw", "device_id": "d1"}),
    ],
)
def test_requests_reject_unknown_fields(model: type[BaseModel], good: dict[str, Any]) -> None:
    model.model_validate(good)
    with pytest.raises(ValidationError):
        model.model_validate({**good, "surprise": 1})


@pytest.mark.parametrize(
    ("model", "good"),
    [
        (
            PullResponse,
            {"changes": [], "checkpoint": "v1:9", "has_more": False, "server_hlc": HLC},
        ),
        (PushResponse, {"results": [], "server_hlc": HLC}),
        (Change, {"collection": "customers", "record_id": "r", "version": 3, "op": "evict"}),
    ],
)
def test_responses_ignore_unknown_fields(model: type[BaseModel], good: dict[str, Any]) -> None:
    """Answers are read tolerantly: a newer server's extra field breaks no installed app."""
    assert model.model_validate({**good, "surprise": 1}) == model.model_validate(good)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"id": "has space"}, "id"),
        ({"id": "x" * 65}, "id"),
        ({"record_id": "a/b"}, "record_id"),
        ({"collection": "Drop Table"}, "collection"),
        ({"collection": ""}, "collection"),
        ({"op": "merge"}, "op"),
        ({"hlc": "2024-11-23T10:00:00Z"}, "hlc"),
        ({"hlc": "1732363212345:0:dev"}, "hlc"),
        ({"base_version": -1}, "base_version"),
        ({"resolves": ["bad id!"]}, "resolves"),
        ({"op": "delete"}, "fields"),  # a delete carries no fields
    ],
)
def test_mutation_rejects_bad_values(change: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Mutation.model_validate({**MUTATION, **change})
    assert where in str(caught.value)


def test_a_delete_without_fields_is_fine() -> None:
    m = Mutation.model_validate({**MUTATION, "op": "delete", "fields": {}, "base_version": 4})
    assert m.op == "delete" and m.fields == {}


@pytest.mark.parametrize(
    "payload",
    [
        {"device_id": "d1", "schema_version": 0},
        {"device_id": "d1", "schema_version": 1, "limit": 0},
        {"device_id": "d1", "schema_version": 1, "limit": 10_001},
        {"device_id": "bad id", "schema_version": 1},
    ],
)
def test_pull_request_bounds(payload: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PullRequest.model_validate(payload)


def test_login_totp_is_six_digits() -> None:
    base = {"username": "rep1", "password": "pw", "device_id": "d1"}
    assert LoginRequest.model_validate({**base, "totp": "123456"}).totp == "123456"
    with pytest.raises(ValidationError):
        LoginRequest.model_validate({**base, "totp": "12345a"})


def test_conflict_record_shape() -> None:
    record = ConflictRecord.model_validate(
        {
            "collection": "contracts",
            "record_id": "k1",
            "field": "amount",
            "base": 100,
            "local": 150,
            "remote": 120,
            "local_hlc": HLC,
            "remote_hlc": HLC,
            "device_id": "d1",
            "user_id": "u1",
            "status": "open",
            "resolution": None,
            "created_at": "2024-11-23T10:00:00Z",  # servers may add fields
        }
    )
    assert record.status == "open"
    with pytest.raises(ValidationError):
        ConflictRecord.model_validate(
            {"collection": "c", "record_id": "r", "field": "f", "status": "x"}
        )


# --- versions --------------------------------------------------------------------------


def test_negotiation_answers_a_supported_version() -> None:
    assert negotiate(PROTOCOL_VERSION) == PROTOCOL_VERSION


@pytest.mark.parametrize("version", [0, PROTOCOL_VERSION + 1, 99])
def test_negotiation_refuses_naming_the_supported_range(version: int) -> None:
    with pytest.raises(ProtocolUnsupported) as caught:
        negotiate(version)
    err = caught.value
    assert err.code is ErrorCode.PROTOCOL_UNSUPPORTED and err.http_status == 426
    assert err.details["supported"] == {"min": 1, "max": 1}
    assert err.details["requested"] == version
    body = ErrorResponse(error=err.to_body()).model_dump(mode="json")
    assert body["error"]["code"] == "protocol_unsupported"
    assert body["error"]["details"]["supported"] == {"min": 1, "max": 1}


def test_schema_too_old() -> None:
    check_schema_version(2, current=3, minimum=2)
    check_schema_version(3, current=3, minimum=2)
    with pytest.raises(SchemaTooOld) as caught:
        check_schema_version(1, current=3, minimum=2)
    assert caught.value.code is ErrorCode.SCHEMA_TOO_OLD
    assert caught.value.http_status == 426
    assert caught.value.details == {"client": 1, "minimum": 2, "current": 3}


# --- errors ----------------------------------------------------------------------------


def test_every_error_code_has_an_http_status() -> None:
    assert set(HTTP_STATUS) == set(ErrorCode)
    assert HTTP_STATUS[ErrorCode.RESYNC_REQUIRED] == 410
    assert HTTP_STATUS[ErrorCode.DEVICE_REVOKED] == 403
    assert HTTP_STATUS[ErrorCode.BATCH_TOO_LARGE] == 413
    assert HTTP_STATUS[ErrorCode.RATE_LIMITED] == 429


def test_validation_failed_lists_the_fields() -> None:
    err = ValidationFailed(
        "customer is invalid", errors=[FieldError(field="phone", code="invalid_phone", message="x")]
    )
    assert err.to_body().details == {
        "fields": [{"field": "phone", "code": "invalid_phone", "message": "x"}]
    }
    generic = ProtocolError("gone", code=ErrorCode.DEVICE_REVOKED, details={"wipe": True})
    assert generic.to_body().code == "device_revoked" and generic.http_status == 403
