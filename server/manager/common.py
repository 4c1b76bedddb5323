"""What every manager route shares: the role gate, the documented error answers, and
the page/record models.

The caller is a person's access token or a system's API key
(:mod:`server.integration.keys`: a key acts as its service account). A manager acts on
their own team (the :class:`~server.accounts.Principal` the sync
engine already computes: ``team_member_ids``); an admin on everything. A rep is refused
with ``403 forbidden`` before any work is done. Every route documents its error answers
with the one error envelope (``{"error": {code, message, details}}``), so OpenAPI
clients (and schemathesis) know every status the route can answer.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, overload

from fastapi import Depends
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from sync_protocol.errors import ErrorResponse

from ..deps import AuthContext, CurrentAuth
from ..errors import Forbidden
from ..integration.auth import CallerAuth

MANAGER_ROLES = frozenset({"manager", "admin"})

_ERROR_EXAMPLES: dict[int, tuple[str, str]] = {
    400: ("validation_failed", "the request cannot be processed"),
    401: ("unauthorized", "missing bearer access token"),
    403: ("forbidden", "only managers and admins may use the manager API"),
    404: ("not_found", "no such record"),
    409: ("conflict", "the operation conflicts with the current state"),
    412: ("precondition_failed", "the record changed since version 12"),
    422: ("validation_failed", "the request is malformed"),
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route answers (400/401/403/422 always:
    a body that is not JSON is a 400)."""
    wanted = sorted({400, 401, 403, 422, *statuses})
    responses: dict[int | str, dict[str, Any]] = {}
    for status in wanted:
        code, message = _ERROR_EXAMPLES[status]
        responses[status] = {
            "model": ErrorResponse,
            "description": code,
            "content": {
                "application/json": {
                    "example": {"error": {"code": code, "message": message, "details": {}}}
                }
            },
        }
    return responses


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_text(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, str) and not pattern.match(value):
            raise ValueError(f"must be an ISO 8601 {what}")
        return value

    return BeforeValidator(check)


#: Query-string dates and times as their OpenAPI formats say: ISO 8601 text only
#: (pydantic would also take a number of seconds, which the documented format does not).
IsoDate = Annotated[date, _iso_text(_ISO_DATE, "date (YYYY-MM-DD)")]
IsoDateTime = Annotated[datetime, _iso_text(_ISO_DATETIME, "date and time")]


@overload
def aware(value: datetime) -> datetime: ...


@overload
def aware(value: datetime | None) -> datetime | None: ...
def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes (stored as UTC): give them their zone, so the
    API always answers RFC 3339 date-times."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def require_manager(auth: CallerAuth) -> AuthContext:
    """A manager or admin: a person's access token or a system's API key."""
    if auth.principal.role not in MANAGER_ROLES:
        raise Forbidden("only managers and admins may use the manager API")
    return auth


def require_admin(auth: CurrentAuth) -> AuthContext:
    if auth.principal.role != "admin":
        raise Forbidden("only admins may do this")
    return auth


ManagerAuth = Annotated[AuthContext, Depends(require_manager)]
AdminAuth = Annotated[AuthContext, Depends(require_admin)]

#: One ``field:value`` equality term of a list or export filter.
FilterTerm = Annotated[str, Field(pattern=r"^[^:]+:", max_length=500)]


class Page(BaseModel):
    """Offset pagination: ``total`` counts every match, ``items`` is the requested slice."""

    total: int = Field(ge=0)
    offset: int = Field(ge=0)
    limit: int = Field(ge=1)


class RecordOut(BaseModel):
    """One CRM record as the manager API shows it: its fields plus the sync metadata."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "c-018f2b6e8c1d",
                    "collection": "customers",
                    "version": 42,
                    "owner_id": "u-rep1",
                    "customer_id": "c-018f2b6e8c1d",
                    "deleted": False,
                    "updated_at_ms": 1732363212345,
                    "updated_by": "u-manager",
                    "fields": {"name": "张三", "status": "intent", "owner_id": "u-rep1"},
                }
            ]
        }
    )

    id: str
    collection: str
    version: int = Field(description="Server version of the record's last change (for If-Match).")
    owner_id: str | None = None
    customer_id: str | None = None
    deleted: bool = False
    updated_at_ms: int | None = None
    updated_by: str | None = None
    fields: dict[str, Any]


class RecordPage(Page):
    items: list[RecordOut]
