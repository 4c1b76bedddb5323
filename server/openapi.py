"""The OpenAPI document tells the truth: the bearer scheme, and every status a route answers.

* :data:`BEARER` — the HTTP bearer security scheme (``bearerAuth``). The one dependency
  that reads the access token (:func:`server.deps.get_auth`) goes through it, so every
  signed-in route declares ``security: [{bearerAuth: []}]`` and ``/docs`` "Authorize"
  works.
* :func:`error_responses` — the documented error answers (the one error envelope,
  ``{"error": {code, message, details}}``) a route declares for its own statuses.
* :func:`document_errors` — run over the generated document by :func:`install`: it adds
  the statuses that come from the layers *around* a route rather than the route itself,
  so no route can forget them:

  ====================  ==========================================================
  every operation       ``503`` — the database is busy or a restore is running
  with parameters       ``422`` — a parameter fails its declaration
  POST, PUT, PATCH,     ``413`` (too large), ``415`` (encoding), ``422`` (not JSON,
  DELETE                unsafe values): :mod:`server.middleware` reads every body
  signed in             ``401`` (no, expired or revoked token), ``403`` (device
                        revoked, or the role may not)
  ====================  ==========================================================

``tests/server/test_openapi_all_routes.py`` runs schemathesis over every route as a
rep, a manager and an admin: an answer with an undocumented status fails it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPBearer

from sync_protocol.errors import ErrorResponse

BEARER_NAME = "bearerAuth"

BEARER = HTTPBearer(
    scheme_name=BEARER_NAME,
    auto_error=False,  # a missing token is answered by the server's own 401 body
    description="The `access_token` from `POST /v1/auth/login` (15 minutes by default; "
    "renew with `POST /v1/auth/refresh`), or an API key (`fsk_…`) on the routes that "
    "take one (docs/manager-api.md).",
)

#: status -> (the usual error code, an example message)
ERROR_EXAMPLES: dict[int, tuple[str, str]] = {
    400: ("validation_failed", "the request cannot be processed"),
    401: ("unauthorized", "missing bearer access token"),
    403: ("forbidden", "not allowed for this account"),
    404: ("not_found", "no such record"),
    409: ("conflict", "the operation conflicts with the current state"),
    410: ("resync_required", "this checkpoint can no longer be served; sync from scratch"),
    412: ("precondition_failed", "the record changed since version 12"),
    413: ("payload_too_large", "the request body is larger than 16777216 bytes"),
    415: ("unsupported_media_type", "Content-Encoding must be gzip or identity"),
    422: ("validation_failed", "the request is malformed"),
    426: ("protocol_unsupported", "protocol version 9 is not supported"),
    429: ("rate_limited", "too many failed sign-ins for this account; try again later"),
    503: ("service_unavailable", "the database is busy; nothing was changed, retry shortly"),
}

_REF = "#/components/schemas/ErrorResponse"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _response(status: int, *, model: bool) -> dict[str, Any]:
    code, message = ERROR_EXAMPLES[status]
    example = {"error": {"code": code, "message": message, "details": {}}}
    content: dict[str, Any] = {"example": example}
    if not model:
        content["schema"] = {"$ref": _REF}
    answer: dict[str, Any] = {"description": code, "content": {"application/json": content}}
    if model:
        answer["model"] = ErrorResponse
    return answer


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route's own error statuses (``model``: the error envelope)."""
    return {status: _response(status, model=True) for status in sorted(set(statuses))}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the statuses of the layers around the routes to every operation (in place)."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    if "ErrorResponse" not in schemas:
        generated = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(generated.pop("$defs", {}))
        schemas["ErrorResponse"] = generated
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = {503}
            if operation.get("parameters"):
                statuses.add(422)
            if method.upper() in _BODY_METHODS:
                statuses |= {413, 415, 422}
            operation.setdefault("security", [])  # explicit: this one needs no token
            if operation["security"]:
                statuses |= {401, 403}
            responses = operation["responses"]
            for status in sorted(statuses):
                responses.setdefault(str(status), _response(status, model=False))
    return schema


def install(app: FastAPI) -> None:
    """Serve the completed document at ``/openapi.json`` (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
