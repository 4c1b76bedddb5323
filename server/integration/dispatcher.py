"""The webhook dispatcher: outbox → deliveries → signed HTTP POSTs, retried with backoff.

Runs as a background task of every server process (:mod:`server.operations`, every
``webhook_interval_s``); each tick (:meth:`Dispatcher.run_once`):

1. **fan-out** — claims unsent outbox events (``UPDATE … SET fanned_out = true WHERE
   fanned_out = false``: one process wins each event) and, in the same transaction,
   makes one delivery per active webhook that wants the event type and whose scope user
   may see the record's owner;
2. **reminders** — announces the reminders that became due since the last scan
   (:func:`server.crm.reminders.due_between` over ``(cursor, now]``, never earlier than
   the oldest active webhook; the cursor moves by compare-and-set, so two processes
   never announce one window twice; nothing is written while no webhook is active);
3. **delivery** — claims due deliveries (``locked_until_ms``), POSTs each outside any
   transaction, then records the attempt in ``webhook_attempts`` and either marks the
   delivery ``delivered`` (a 2xx answer), schedules the next try
   (``base × 2^(attempt−1)``, capped at ``webhook_retry_max_s``) or, after
   ``webhook_max_attempts``, marks it ``failed``.

Delivery is at least once (a crash between the POST and its record repeats it), in no
guaranteed order: receivers de-duplicate by ``X-Fieldsync-Event-Id`` and keep the
highest ``version`` of a record. Logs carry ids, types and status codes — never bodies.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import httpx
from sqlalchemy import Engine, Table, func, insert, select, update
from sqlalchemy.orm import Session

from sync_protocol.hlc import wall_clock_ms

from ..accounts import Principal, principal_for
from ..models import User
from ..settings import Settings
from .events import REMINDER_DUE, add_event
from .models import IntegrationCursor, IntegrationEvent, Webhook, WebhookAttempt, WebhookDelivery
from .signing import HEADER, sign

log = logging.getLogger("fieldsync.webhooks")

events_t = cast(Table, IntegrationEvent.__table__)
deliveries_t = cast(Table, WebhookDelivery.__table__)
attempts_t = cast(Table, WebhookAttempt.__table__)
cursors_t = cast(Table, IntegrationCursor.__table__)
webhooks_t = cast(Table, Webhook.__table__)

PENDING, DELIVERED, FAILED, CANCELLED = "pending", "delivered", "failed", "cancelled"
REMINDER_CURSOR = "reminders"


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    retry_base_s: float = 5.0
    retry_max_s: float = 3600.0
    max_attempts: int = 12
    timeout_s: float = 10.0
    batch: int = 200

    @classmethod
    def of(cls, settings: Settings) -> DispatchConfig:
        return cls(
            retry_base_s=settings.webhook_retry_base_s,
            retry_max_s=settings.webhook_retry_max_s,
            max_attempts=settings.webhook_max_attempts,
            timeout_s=settings.webhook_timeout_s,
        )

    def backoff_ms(self, attempt: int) -> int:
        """Wait after failed attempt number ``attempt`` (1-based)."""
        return int(min(self.retry_base_s * 2 ** (attempt - 1), self.retry_max_s) * 1000)


@dataclass(slots=True)
class TickResult:
    fanned_out: int = 0
    reminders: int = 0
    attempted: int = 0
    delivered: int = 0


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        config: DispatchConfig,
        client: httpx.Client | None = None,
        *,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.engine = engine
        self.config = config
        self._client = client
        #: Epoch milliseconds (a test passes its own).
        self.clock = clock

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                timeout=self.config.timeout_s,
                follow_redirects=False,
                headers={"User-Agent": "Fieldsync-Webhooks/1"},
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def run_once(self, now_ms: int | None = None) -> TickResult:
        result = TickResult()
        now = self.clock() if now_ms is None else now_ms
        result.reminders = self.scan_reminders(now)
        result.fanned_out = self.fan_out(now)
        self.deliver_due(now, result)
        return result

    # ---- 1. fan-out -------------------------------------------------------------------

    def fan_out(self, now_ms: int) -> int:
        made = 0
        with Session(self.engine) as session:
            pending = session.execute(
                select(events_t.c.id, events_t.c.type, events_t.c.owner_id)
                .where(events_t.c.fanned_out.is_(False))
                .order_by(events_t.c.id)
                .limit(self.config.batch)
            ).all()
            if not pending:
                return 0
            listeners = self._listeners(session)
            conn = session.connection()
            for event in pending:
                claimed = conn.execute(
                    update(events_t)
                    .where(events_t.c.id == event.id, events_t.c.fanned_out.is_(False))
                    .values(fanned_out=True)
                ).rowcount
                if not claimed:
                    continue
                rows = [
                    {
                        "webhook_id": webhook_id,
                        "event_id": event.id,
                        "state": PENDING,
                        "attempts": 0,
                        "next_attempt_ms": now_ms,
                        "locked_until_ms": 0,
                        "created_at_ms": now_ms,
                    }
                    for webhook_id, wanted, principal in listeners
                    if event.type in wanted and principal.sees_owner(event.owner_id)
                ]
                if rows:
                    conn.execute(insert(deliveries_t), rows)
                    made += len(rows)
            session.commit()
        return made

    @staticmethod
    def _listeners(session: Session) -> list[tuple[str, set[str], Principal]]:
        out = []
        for hook in session.scalars(select(Webhook).where(Webhook.active)):
            user = session.get(User, hook.user_id)
            if user is None or not user.active:
                continue  # its scope is gone: it hears nothing
            out.append((hook.id, set(json.loads(hook.events)), principal_for(session, user)))
        return out

    # ---- 2. reminders -----------------------------------------------------------------

    def scan_reminders(self, now_ms: int) -> int:
        """Announce reminders due in ``(cursor, now]`` — never before the oldest active
        webhook existed (nobody was listening), and writing nothing while none is."""
        from ..crm.reminders import due_between

        with self.engine.begin() as conn:
            since = conn.execute(
                select(func.min(webhooks_t.c.created_at_ms)).where(webhooks_t.c.active)
            ).scalar()
            if since is None:
                return 0
            cursor = conn.execute(
                select(cursors_t.c.value).where(cursors_t.c.name == REMINDER_CURSOR)
            ).scalar()
            if cursor is None:
                conn.execute(insert(cursors_t), [{"name": REMINDER_CURSOR, "value": now_ms}])
                start = since
            else:
                if now_ms <= cursor:
                    return 0
                moved = conn.execute(
                    update(cursors_t)
                    .where(cursors_t.c.name == REMINDER_CURSOR, cursors_t.c.value == cursor)
                    .values(value=now_ms)
                ).rowcount
                if not moved:
                    return 0  # another process took this window
                start = max(cursor, since)
            due = due_between(conn, start, now_ms) if start < now_ms else []
            for r in due:
                add_event(
                    conn,
                    REMINDER_DUE,
                    r.as_json(),
                    now_ms=now_ms,
                    collection=r.collection,
                    record_id=r.record_id,
                    owner_id=r.owner_id,
                )
            return len(due)

    # ---- 3. delivery ------------------------------------------------------------------

    def deliver_due(self, now_ms: int, result: TickResult) -> None:
        lease = now_ms + int(self.config.timeout_s * 1000) * 2 + 1000
        with self.engine.begin() as conn:
            due = conn.execute(
                select(deliveries_t.c.id, deliveries_t.c.locked_until_ms)
                .where(
                    deliveries_t.c.state == PENDING,
                    deliveries_t.c.next_attempt_ms <= now_ms,
                    deliveries_t.c.locked_until_ms < now_ms,
                )
                .order_by(deliveries_t.c.next_attempt_ms, deliveries_t.c.id)
                .limit(self.config.batch)
            ).all()
            mine = [
                d.id
                for d in due
                if conn.execute(
                    update(deliveries_t)
                    .where(
                        deliveries_t.c.id == d.id,
                        deliveries_t.c.locked_until_ms == d.locked_until_ms,
                    )
                    .values(locked_until_ms=lease)
                ).rowcount
            ]
        for delivery_id in mine:
            result.attempted += 1
            if self._attempt(delivery_id):
                result.delivered += 1

    def _attempt(self, delivery_id: int) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    deliveries_t.c.attempts,
                    webhooks_t.c.id.label("webhook_id"),
                    webhooks_t.c.url,
                    webhooks_t.c.secret,
                    webhooks_t.c.active,
                    events_t.c.event_id,
                    events_t.c.type,
                    events_t.c.payload,
                    events_t.c.created_at_ms,
                )
                .join(webhooks_t, webhooks_t.c.id == deliveries_t.c.webhook_id)
                .join(events_t, events_t.c.id == deliveries_t.c.event_id)
                .where(deliveries_t.c.id == delivery_id)
            ).one()
        if not row.active:
            self._finish(delivery_id, CANCELLED, None, 0, None, "webhook deactivated", 0)
            return False
        attempt = int(row.attempts) + 1
        body = _envelope(row.event_id, row.type, row.payload, row.created_at_ms)
        headers = {
            "Content-Type": "application/json",
            "X-Fieldsync-Event": row.type,
            "X-Fieldsync-Event-Id": row.event_id,
            "X-Fieldsync-Delivery": str(delivery_id),
            "X-Fieldsync-Attempt": str(attempt),
            HEADER: sign(row.secret, body, int(time.time())),
        }
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            response = self.client.post(row.url, content=body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.TimeoutException:
            error = "timed out"
        except httpx.HTTPError as exc:
            error = _short(exc)
        duration_ms = int((time.perf_counter() - started) * 1000)
        now = self.clock()
        if error is None:
            state, next_ms = DELIVERED, None
        elif attempt >= self.config.max_attempts:
            state, next_ms = FAILED, None
        else:
            state, next_ms = PENDING, now + self.config.backoff_ms(attempt)
        self._finish(delivery_id, state, status, attempt, next_ms, error, duration_ms)
        log.info(
            "webhook %s event %s (%s) attempt %d: %s",
            row.webhook_id,
            row.event_id,
            row.type,
            attempt,
            "delivered" if error is None else f"{error}; {state}",
        )
        return error is None

    def _finish(
        self,
        delivery_id: int,
        state: str,
        status: int | None,
        attempt: int,
        next_ms: int | None,
        error: str | None,
        duration_ms: int,
    ) -> None:
        now = self.clock()
        values: dict[str, Any] = {"state": state, "locked_until_ms": 0}
        if attempt:
            values["attempts"] = attempt
        if next_ms is not None:
            values["next_attempt_ms"] = next_ms
        if state == DELIVERED:
            values["delivered_at_ms"] = now
        with self.engine.begin() as conn:
            conn.execute(
                update(deliveries_t).where(deliveries_t.c.id == delivery_id).values(values)
            )
            if attempt:
                conn.execute(
                    insert(attempts_t),
                    [
                        {
                            "delivery_id": delivery_id,
                            "attempt": attempt,
                            "at_ms": now,
                            "status_code": status,
                            "error": error[:300] if error else None,
                            "duration_ms": duration_ms,
                        }
                    ],
                )


def _envelope(event_id: str, kind: str, payload: str, created_at_ms: int) -> bytes:
    created = datetime.fromtimestamp(created_at_ms / 1000, UTC).isoformat()
    return (
        f'{{"id":{json.dumps(event_id)},"type":{json.dumps(kind)},'
        f'"created_at":{json.dumps(created.replace("+00:00", "Z"))},"data":{payload}}}'
    ).encode()


def _short(exc: Exception) -> str:
    """A transport failure in a few words (no URL query, no body)."""
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or unreachable"
    return type(exc).__name__


__all__ = ["DispatchConfig", "Dispatcher", "TickResult"]
