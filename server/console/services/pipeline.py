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

from sqlalchemy import case, false, func, select
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
from ...reports import sql
from ...reports.kinds import EPOCH, NUMBER, TEXT, F
from ...repository import lock_counter
from ..session import ConsoleUser
from .records import names_of, rows_by_id

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
    the most recently closed in won/lost stages). The deals are picked from the typed
    reporting table; only the cards shown are read whole."""
    ordered = stages(session, me)
    sql.prepare(session)
    deals = sql.view(
        "opportunities",
        {"stage_id": TEXT, "status": TEXT, "amount": NUMBER, "closed": F("closed_at", EPOCH)},
        me.principal,
        name="board",
    )
    closed_ids = [s.id for s in ordered if s.fields.get("is_won") or s.fields.get("is_lost")]
    in_closed = deals.c.stage_id.in_(closed_ids) if closed_ids else false()
    shown = (
        select(deals)
        .where(deals.c.stage_id.in_([s.id for s in ordered]))
        .where(in_closed | (func.coalesce(deals.c.status, "open") == "open"))
        .subquery("shown")
    )
    totals = {
        r.stage_id: (int(r.n), float(r.amount or 0))
        for r in session.execute(
            select(
                shown.c.stage_id,
                func.count().label("n"),
                func.sum(func.coalesce(shown.c.amount, 0)).label("amount"),
            ).group_by(shown.c.stage_id)
        )
    }
    # The largest open deals of an open stage; the latest closed of a won/lost stage.
    key = case(
        (
            shown.c.stage_id.in_(closed_ids) if closed_ids else false(),
            -func.coalesce(shown.c.closed, 0),
        ),
        else_=-func.coalesce(shown.c.amount, 0),
    )
    ranked = select(
        shown.c.id,
        shown.c.stage_id,
        func.row_number()
        .over(partition_by=shown.c.stage_id, order_by=(key, shown.c.id))
        .label("rank"),
    ).subquery("ranked")
    top: dict[str, list[str]] = {s.id: [] for s in ordered}
    for r in session.execute(
        select(ranked.c.id, ranked.c.stage_id)
        .where(ranked.c.rank <= CARDS_PER_COLUMN)
        .order_by(ranked.c.stage_id, ranked.c.rank)
    ):
        top[r.stage_id].append(r.id)
    picked: dict[str, tuple[list[str], int, float]] = {
        s.id: (top[s.id], *totals.get(s.id, (0, 0.0))) for s in ordered
    }
    wanted = [i for ids, _, _ in picked.values() for i in ids]
    cards = {r.id: r for r in rows_by_id(session.connection(), "opportunities", wanted)}
    columns = [
        Column(
            s.id,
            s.fields,
            [cards[i] for i in picked[s.id][0] if i in cards],
            picked[s.id][1],
            picked[s.id][2],
        )
        for s in ordered
    ]
    names = sorted({d.customer_id for c in columns for d in c.cards if d.customer_id})
    customers = names_of(session.connection(), "customers", names)
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
