"""Webhook subscriptions and their delivery log (the service behind the routes).

A webhook names a URL, the event types it wants (:data:`.events.EVENT_TYPES`) and the
user whose scope bounds what it hears — by default its creator (an admin hears
everything); naming a manager or an API key's service account limits it to that team.
The signing secret is generated here and shown once, at creation.

URLs are ``http(s)://host…`` without credentials; in production (``FIELDSYNC_ENV=
production``) only ``https`` is accepted, so a signed payload never crosses a network
in clear text.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from sync_protocol import FieldError
from sync_protocol.hlc import wall_clock_ms

from ..accounts import audit
from ..deps import AuthContext
from ..errors import NotFound
from ..models import User
from ..settings import Settings
from .events import EVENT_TYPES
from .models import Webhook, WebhookAttempt, WebhookDelivery

attempts_t = cast(Table, WebhookAttempt.__table__)
deliveries_t = cast(Table, WebhookDelivery.__table__)


class InvalidWebhook(Exception):
    """Raised as :class:`server.errors.ValidationFailed` by the route."""

    def __init__(self, error: FieldError) -> None:
        super().__init__(error.message)
        self.error = error


def check_url(url: str, settings: Settings) -> None:
    parts = urlsplit(url)
    allowed = ("https",) if settings.is_production else ("http", "https")
    if parts.scheme not in allowed or not parts.hostname:
        raise InvalidWebhook(
            FieldError(
                field="url",
                code="invalid_url",
                message=f"url must be an absolute {' or '.join(allowed)} URL",
            )
        )
    if parts.username or parts.password:
        raise InvalidWebhook(
            FieldError(field="url", code="invalid_url", message="url must not carry credentials")
        )


def check_events(events: list[str]) -> None:
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown or not events:
        raise InvalidWebhook(
            FieldError(
                field="events",
                code="invalid_choice",
                message=f"events must be some of {', '.join(EVENT_TYPES)}",
            )
        )


@dataclass(frozen=True, slots=True)
class NewWebhook:
    row: Webhook
    secret: str


def create_webhook(
    session: Session,
    creator: AuthContext,
    settings: Settings,
    *,
    name: str,
    url: str,
    events: list[str],
    scope_user_id: str | None,
) -> NewWebhook:
    check_url(url, settings)
    check_events(events)
    listener = scope_user_id or creator.user.id
    if session.get(User, listener) is None:
        raise NotFound(f"no user {listener!r}", details={"scope_user_id": listener})
    secret = f"whsec_{secrets.token_urlsafe(32)}"
    row = Webhook(
        id=f"wh-{secrets.token_hex(8)}",
        name=name,
        url=url,
        secret=secret,
        events=json.dumps(sorted(set(events))),
        user_id=listener,
        active=True,
        created_by=creator.user.id,
        created_at_ms=wall_clock_ms(),
    )
    session.add(row)
    audit(
        session,
        "webhook.create",
        user_id=creator.user.id,
        device_id=creator.device.id,
        target=row.id,
        details={"name": name, "events": sorted(set(events)), "scope_user_id": listener},
    )
    session.flush()
    return NewWebhook(row, secret)


def get_webhook(session: Session, webhook_id: str) -> Webhook:
    row = session.get(Webhook, webhook_id)
    if row is None:
        raise NotFound(f"no webhook {webhook_id!r}", details={"webhook_id": webhook_id})
    return row


def deactivate_webhook(session: Session, creator: AuthContext, webhook_id: str) -> Webhook:
    """Stop a webhook: no new deliveries; pending ones are cancelled when due."""
    row = get_webhook(session, webhook_id)
    if row.active:
        row.active = False
        audit(
            session,
            "webhook.deactivate",
            user_id=creator.user.id,
            device_id=creator.device.id,
            target=row.id,
        )
    session.flush()
    return row


def list_webhooks(session: Session) -> list[Webhook]:
    return list(session.scalars(select(Webhook).order_by(Webhook.created_at_ms, Webhook.id)))


def delivery_log(
    session: Session, webhook_id: str, *, state: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The newest deliveries of a webhook, each with every attempt (oldest first)."""
    from .models import IntegrationEvent

    get_webhook(session, webhook_id)
    stmt = (
        select(WebhookDelivery, IntegrationEvent.event_id, IntegrationEvent.type)
        .join(IntegrationEvent, IntegrationEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.webhook_id == webhook_id)
    )
    if state is not None:
        stmt = stmt.where(WebhookDelivery.state == state)
    found = session.execute(stmt.order_by(WebhookDelivery.id.desc()).limit(limit)).all()
    ids = [d.id for d, _, _ in found]
    attempts: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        for a in session.execute(
            select(attempts_t)
            .where(attempts_t.c.delivery_id.in_(ids))
            .order_by(attempts_t.c.delivery_id, attempts_t.c.attempt)
        ):
            attempts[a.delivery_id].append(
                {
                    "attempt": a.attempt,
                    "at_ms": a.at_ms,
                    "status_code": a.status_code,
                    "error": a.error,
                    "duration_ms": a.duration_ms,
                }
            )
    return [
        {
            "delivery_id": d.id,
            "event_id": event_id,
            "event_type": kind,
            "state": d.state,
            "attempts": d.attempts,
            "next_attempt_ms": d.next_attempt_ms if d.state == "pending" else None,
            "created_at_ms": d.created_at_ms,
            "delivered_at_ms": d.delivered_at_ms,
            "log": attempts[d.id],
        }
        for d, event_id, kind in found
    ]


__all__ = [
    "InvalidWebhook",
    "NewWebhook",
    "check_events",
    "check_url",
    "create_webhook",
    "deactivate_webhook",
    "delivery_log",
    "get_webhook",
    "list_webhooks",
]
