"""Tables of the integration layer (migration ``0007_integration``).

* ``api_keys`` — a system's key: only its SHA-256 is stored; it speaks for a
  *service-account* user (``users`` row, role manager or admin, a team), so every scope
  rule of the manager API applies to it unchanged.
* ``webhooks`` — a subscription: URL, signing secret, the event types it wants, and the
  user whose scope bounds what it hears.
* ``integration_events`` — the outbox: written in the same transaction as the change it
  announces, so an event exists exactly when its change committed.
* ``webhook_deliveries`` — one event to one webhook: state, attempts, next try.
* ``webhook_attempts`` — the delivery log: every HTTP attempt with its outcome.

Declared on :class:`server.models.Base`, so ``Base.metadata`` knows them once this
module is imported.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..models import Base, BigId


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    #: SHA-256 (hex) of the whole key; the key itself is shown once, at creation.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The service-account user the key speaks for (its role and team are the key's).
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    #: ``read`` (GET only) or ``write``.
    access: Mapped[str] = mapped_column(String(8))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    last_used_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    revoked_at_ms: Mapped[int | None] = mapped_column(BigInteger)


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(String(2000))
    #: HMAC-SHA256 signing secret (the receiver holds the same one).
    secret: Mapped[str] = mapped_column(String(128))
    #: JSON list of event types.
    events: Mapped[str] = mapped_column(Text)
    #: Whose scope bounds the events it hears (a manager's team, an admin: all).
    user_id: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class IntegrationEvent(Base):
    __tablename__ = "integration_events"
    __table_args__ = (Index("ix_integration_events_pending", "fanned_out", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: Public id sent to receivers (``X-Fieldsync-Event-Id``), stable across retries.
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    collection: Mapped[str | None] = mapped_column(String(64))
    record_id: Mapped[str | None] = mapped_column(String(64))
    #: Who may hear it: the record's owner (NULL: reference data, everyone).
    owner_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    #: Set once the dispatcher made its deliveries (claimed by one process only).
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "state", "next_attempt_ms"),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[int] = mapped_column(BigInteger)
    #: ``pending`` (to be tried at ``next_attempt_ms``), ``delivered`` or ``failed``.
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_ms: Mapped[int] = mapped_column(BigInteger)
    #: A dispatcher holds it until then (another process leaves it alone).
    locked_until_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    delivered_at_ms: Mapped[int | None] = mapped_column(BigInteger)


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "attempt"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(BigInteger)
    attempt: Mapped[int] = mapped_column(Integer)
    at_ms: Mapped[int] = mapped_column(BigInteger)
    #: The receiver's HTTP status, NULL when no answer came (refused, timed out).
    status_code: Mapped[int | None] = mapped_column(Integer)
    #: Why it failed (``connection refused``, ``HTTP 503``); NULL on success.
    error: Mapped[str | None] = mapped_column(String(300))
    duration_ms: Mapped[int] = mapped_column(Integer)


class IntegrationCursor(Base):
    """A named position of the dispatcher (``reminders``: the end of the last window
    scanned for ``reminder.due``), shared by every server process."""

    __tablename__ = "integration_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
