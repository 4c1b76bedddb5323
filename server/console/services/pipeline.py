"""The pipeline board, and moving a deal to another stage.

A move is what the phone app does (``mobile_app/viewmodels/pipeline.py``): the deal's
``stage_id`` (plus ``status`` and ``closed_at`` when the stage is a won or lost one) and an
append-only ``stage_changes`` event, applied through the sync engine together in one
transaction, so the funnel history and every device see the same move.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from sync_protocol import MutationStatus

from ...context import ServerContext
from ...errors import NotFound
from ...manager.records import (
    StoredRow,
    apply_mutations,
    load_row,
    load_rows,
    make_mutation,
    raise_rejection,
    visible_row,
)
from ...repository import lock_counter
from ..session import ConsoleUser
from .records import names_of

CARDS_PER_COLUMN = 20


@dataclass(slots=True)
class Column:
    stage_id: str
    stage: dict[str, Any]
    cards: list[StoredRow]
    count: int
    amount: float


def stages(session: Session, me: ConsoleUser) -> list[StoredRow]:
    rows = load_rows(session.connection(), me.principal, "pipeline_stages")
    return sorted(rows, key=lambda s: (int(s.fields.get("position", 10**6)), s.id))


def board(session: Session, me: ConsoleUser) -> tuple[list[Column], dict[str, str]]:
    """Columns in stage order; each holds its largest deals (open ones in open stages,
    the most recently closed in won/lost stages)."""
    ordered = stages(session, me)
    deals = load_rows(session.connection(), me.principal, "opportunities")
    by_stage: dict[str, list[StoredRow]] = {s.id: [] for s in ordered}
    for deal in deals:
        stage_id = str(deal.fields.get("stage_id"))
        if stage_id in by_stage:
            by_stage[stage_id].append(deal)
    columns = []
    for s in ordered:
        closing = bool(s.fields.get("is_won") or s.fields.get("is_lost"))
        cards = by_stage[s.id]
        if closing:
            cards.sort(key=lambda d: str(d.fields.get("closed_at") or ""), reverse=True)
        else:
            cards = [d for d in cards if d.fields.get("status", "open") == "open"]
            cards.sort(key=lambda d: -float(d.fields.get("amount") or 0))
        amount = sum(float(d.fields.get("amount") or 0) for d in cards)
        columns.append(Column(s.id, s.fields, cards[:CARDS_PER_COLUMN], len(cards), amount))
    wanted = sorted({d.customer_id for c in columns for d in c.cards if d.customer_id})
    customers = names_of(session.connection(), "customers", wanted)
    session.rollback()
    return columns, customers


def move(
    session: Session, context: ServerContext, me: ConsoleUser, deal_id: str, stage_id: str
) -> None:
    conn = session.connection()
    lock_counter(conn)
    deal = visible_row(conn, me.principal, "opportunities", deal_id)
    stage = load_row(conn, "pipeline_stages", stage_id)
    if stage is None or stage.deleted:
        raise NotFound(f"no stage {stage_id!r}")
    if deal.fields.get("stage_id") == stage_id:
        session.rollback()
        return
    now = datetime.now(UTC).isoformat(timespec="seconds")
    patch: dict[str, Any] = {"stage_id": stage_id, "status": "open"}
    if stage.fields.get("is_won") or stage.fields.get("is_lost"):
        patch["status"] = "won" if stage.fields.get("is_won") else "lost"
        patch["closed_at"] = now
    change = {
        "customer_id": deal.customer_id or deal.fields.get("customer_id"),
        "opportunity_id": deal.id,
        "from_stage_id": deal.fields.get("stage_id"),
        "to_stage_id": stage_id,
        "changed_at": now,
        "changed_by": me.user.id,
    }
    mutations = [
        make_mutation(context, "opportunities", deal.id, fields=patch, current=deal),
        make_mutation(context, "stage_changes", f"sc-{uuid.uuid4().hex}", fields=change),
    ]
    for result in apply_mutations(conn, context, me.principal, mutations):
        if result.status is MutationStatus.REJECTED:
            session.rollback()
            raise_rejection(result)
    session.commit()
