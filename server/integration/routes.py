"""``/v1/integration/…``: API keys, webhooks with their delivery log, the change feed.

Keys and webhooks are managed by admins (a person, or a system holding an admin key);
the change feed answers any manager or admin caller — person or key — with the records
of its scope. See docs/manager-api.md, "Integration".
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from sync_protocol.errors import ValidationFailed
from sync_protocol.messages import ID_PATTERN
from sync_protocol.versions import PROTOCOL_VERSION

from ..deps import AuthContext, ContextDep, SessionDep
from ..errors import Forbidden
from ..manager.common import MANAGER_ROLES, error_responses
from ..repository import pull_page
from .auth import CallerAuth
from .events import EVENT_TYPES
from .keys import create_api_key, revoke_api_key
from .models import ApiKey, Webhook
from .webhooks import (
    InvalidWebhook,
    create_webhook,
    deactivate_webhook,
    delivery_log,
    list_webhooks,
)

router = APIRouter(prefix="/v1/integration", tags=["integration"])


def require_admin_caller(auth: CallerAuth) -> AuthContext:
    if auth.principal.role != "admin":
        raise Forbidden("only admins may manage API keys and webhooks")
    return auth


def require_manager_caller(auth: CallerAuth) -> AuthContext:
    if auth.principal.role not in MANAGER_ROLES:
        raise Forbidden("only managers, admins and their API keys may read the change feed")
    return auth


AdminCaller = Annotated[AuthContext, Depends(require_admin_caller)]
ManagerCaller = Annotated[AuthContext, Depends(require_manager_caller)]
KeyId = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]


# ---- API keys ------------------------------------------------------------------------


class CreateKey(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "ERP (Kingdee)", "role": "manager", "team_id": "team-a", "access": "write"}
            ]
        },
    )

    name: str = Field(min_length=1, max_length=128)
    role: Literal["manager", "admin"] = Field(
        description="A `manager` key acts on one team's records; an `admin` key on all."
    )
    team_id: str | None = Field(default=None, pattern=ID_PATTERN)
    access: Literal["read", "write"] = Field(
        default="read", description="`read` keys may only GET."
    )


class KeyOut(BaseModel):
    id: str
    name: str
    user_id: str = Field(description="The key's service account (owner of what it creates).")
    role: str
    team_id: str | None
    access: str
    created_by: str
    created_at_ms: int
    last_used_at_ms: int | None
    revoked_at_ms: int | None


class NewKeyOut(KeyOut):
    key: str = Field(description="The key itself: shown once, store it now.")


def _key_out(row: ApiKey, role: str, team_id: str | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "user_id": row.user_id,
        "role": role,
        "team_id": team_id,
        "access": row.access,
        "created_by": row.created_by,
        "created_at_ms": row.created_at_ms,
        "last_used_at_ms": row.last_used_at_ms,
        "revoked_at_ms": row.revoked_at_ms,
    }


@router.post("/keys", response_model=NewKeyOut, status_code=201, responses=error_responses(404))
def post_key(body: CreateKey, auth: AdminCaller, session: SessionDep) -> NewKeyOut:
    """Create an API key for a system; the answer holds the key, once."""
    made = create_api_key(
        session, auth, name=body.name, role=body.role, team_id=body.team_id, access=body.access
    )
    out = NewKeyOut(**_key_out(made.row, made.user.role, made.user.team_id), key=made.key)
    session.commit()
    return out


@router.get("/keys", response_model=list[KeyOut], responses=error_responses())
def get_keys(auth: AdminCaller, session: SessionDep) -> list[KeyOut]:
    """Every API key (never the keys themselves)."""
    from sqlalchemy import select

    from ..models import User

    rows = session.execute(
        select(ApiKey, User.role, User.team_id)
        .join(User, User.id == ApiKey.user_id)
        .order_by(ApiKey.created_at_ms, ApiKey.id)
    ).all()
    session.rollback()
    return [KeyOut(**_key_out(row, role, team)) for row, role, team in rows]


@router.delete("/keys/{key_id}", response_model=KeyOut, responses=error_responses(404))
def delete_key(key_id: KeyId, auth: AdminCaller, session: SessionDep) -> KeyOut:
    """Revoke a key: refused from its very next request on."""
    from ..models import User

    row = revoke_api_key(session, auth, key_id)
    user = session.get(User, row.user_id)
    out = KeyOut(**_key_out(row, user.role if user else "", user.team_id if user else None))
    session.commit()
    return out


# ---- webhooks ------------------------------------------------------------------------


EventType = Literal["record.changed", "lead.converted", "order.placed", "reminder.due"]
assert set(EventType.__args__) == set(EVENT_TYPES)  # type: ignore[attr-defined]


class CreateWebhook(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "ERP orders",
                    "url": "https://erp.example.com/fieldsync/hook",
                    "events": ["order.placed", "lead.converted"],
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=128)
    url: str = Field(min_length=8, max_length=2000)
    events: list[EventType] = Field(min_length=1, max_length=4)
    scope_user_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="Whose scope bounds what the webhook hears (default: you).",
    )


class WebhookOut(BaseModel):
    id: str
    name: str
    url: str
    events: list[str]
    scope_user_id: str
    active: bool
    created_by: str
    created_at_ms: int


class NewWebhookOut(WebhookOut):
    secret: str = Field(description="The HMAC signing secret: shown once, store it now.")


def _hook_out(row: Webhook) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "url": row.url,
        "events": json.loads(row.events),
        "scope_user_id": row.user_id,
        "active": row.active,
        "created_by": row.created_by,
        "created_at_ms": row.created_at_ms,
    }


@router.post(
    "/webhooks", response_model=NewWebhookOut, status_code=201, responses=error_responses(404)
)
def post_webhook(
    body: CreateWebhook, auth: AdminCaller, context: ContextDep, session: SessionDep
) -> NewWebhookOut:
    """Subscribe a URL to events; the answer holds the signing secret, once."""
    try:
        made = create_webhook(
            session,
            auth,
            context.settings,
            name=body.name,
            url=body.url,
            events=list(body.events),
            scope_user_id=body.scope_user_id,
        )
    except InvalidWebhook as bad:
        raise ValidationFailed(bad.error.message, errors=[bad.error]) from None
    out = NewWebhookOut(**_hook_out(made.row), secret=made.secret)
    session.commit()
    return out


@router.get("/webhooks", response_model=list[WebhookOut], responses=error_responses())
def get_webhooks(auth: AdminCaller, session: SessionDep) -> list[WebhookOut]:
    out = [WebhookOut(**_hook_out(r)) for r in list_webhooks(session)]
    session.rollback()
    return out


@router.delete("/webhooks/{webhook_id}", response_model=WebhookOut, responses=error_responses(404))
def delete_webhook(
    webhook_id: Annotated[str, Field(pattern=ID_PATTERN)], auth: AdminCaller, session: SessionDep
) -> WebhookOut:
    """Deactivate a webhook (its log stays readable)."""
    out = WebhookOut(**_hook_out(deactivate_webhook(session, auth, webhook_id)))
    session.commit()
    return out


class AttemptOut(BaseModel):
    attempt: int
    at_ms: int
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    delivery_id: int
    event_id: str
    event_type: str
    state: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int
    next_attempt_ms: int | None
    created_at_ms: int
    delivered_at_ms: int | None
    log: list[AttemptOut]


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=list[DeliveryOut],
    responses=error_responses(404),
)
def get_deliveries(
    webhook_id: Annotated[str, Field(pattern=ID_PATTERN)],
    auth: AdminCaller,
    session: SessionDep,
    state: Annotated[Literal["pending", "delivered", "failed", "cancelled"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryOut]:
    """The delivery log: newest deliveries first, each with every attempt."""
    out = [DeliveryOut(**d) for d in delivery_log(session, webhook_id, state=state, limit=limit)]
    session.rollback()
    return out


# ---- change feed ---------------------------------------------------------------------


@router.get("/changes", responses=error_responses())
def changes(
    auth: ManagerCaller,
    context: ContextDep,
    session: SessionDep,
    checkpoint: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> Response:
    """Every change in the caller's scope after ``checkpoint``, in pages — the body and
    the cursor semantics of ``POST /v1/sync/pull`` (evictions, tombstones, ``has_more``,
    ``checkpoint_expired`` after a purge or restore)."""
    page = pull_page(
        session.connection(),
        auth.principal,
        checkpoint,
        limit=min(limit, context.settings.max_pull_limit),
        server_hlc=context.clock.now(),
        protocol=PROTOCOL_VERSION,
    )
    session.rollback()
    return Response(page.body, media_type="application/json")


__all__ = ["router"]
