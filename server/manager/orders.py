"""Quotes and orders (报价与订单): priced from the catalogue, totalled by the shared function.

* ``POST /v1/manager/quotes`` — a quote (or an order placed directly) with its lines.
  Each line's ``list_price`` is the price book's (:func:`sync_protocol.orders.
  catalogue_price`: the product's ``tier_prices`` for the customer's ``tier``, else its
  ``price``); ``unit_price`` defaults to it, ``tax_rate`` to the product's. Totals come
  from :mod:`sync_protocol.orders`, exactly as a phone computes them.
* ``POST /v1/manager/quotes/{id}/order`` — turn a quote into an order: a new ``kind``
  ``order`` record with a copy of the lines, ``quote_id`` pointing back and
  ``ordered_at``; the quote becomes ``accepted``.
* ``POST /v1/manager/orders/{id}/status`` — move an order along draft → accepted →
  fulfilled (or cancelled before that); ``fulfilled_at`` is stamped.

Every one is a single group of writes through the sync engine: all or nothing, synced
to the phones of whoever owns the customer.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Table, select

from sync_protocol import ValidationFailed
from sync_protocol.errors import FieldError
from sync_protocol.messages import ID_PATTERN
from sync_protocol.orders import (
    catalogue_price,
    line_fields,
    order_fields,
    order_status_error,
    to_number,
)

from ..accounts import Principal
from ..context import ServerContext
from ..deps import ContextDep, SessionDep
from ..models import Record
from ..repository import lock_counter
from .common import ManagerAuth, RecordOut, error_responses
from .records import (
    StoredRow,
    apply_group,
    load_row,
    make_mutation,
    new_record_id,
    visible_row,
)

router = APIRouter(prefix="/v1/manager", tags=["manager: quotes and orders"])
RecordId = Annotated[str, Path(pattern=ID_PATTERN)]
records_t = cast(Table, Record.__table__)


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(pattern=ID_PATTERN)
    quantity: float = Field(gt=0, le=1e9)
    discount: float = Field(default=0, ge=0, le=1, description="A fraction: 0.1 = 10 % off.")
    unit_price: float | None = Field(
        default=None, ge=0, le=1e12, description="Default: the catalogue price."
    )
    tax_rate: float | None = Field(
        default=None, ge=0, le=1, description="Default: the product's tax rate (or 0)."
    )


class QuoteIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "c-1",
                    "kind": "quote",
                    "valid_until": "2026-12-31",
                    "lines": [{"product_id": "p-1", "quantity": 10, "discount": 0.05}],
                }
            ]
        },
    )

    customer_id: str = Field(pattern=ID_PATTERN)
    kind: Literal["quote", "order"] = "quote"
    number: str | None = Field(default=None, max_length=64, description="Default: generated.")
    opportunity_id: str | None = Field(default=None, pattern=ID_PATTERN)
    valid_until: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    currency: str | None = Field(default=None, max_length=3)
    notes: str | None = Field(default=None, max_length=20_000)
    lines: list[LineIn] = Field(min_length=1, max_length=500)


class QuoteOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "quote": {
                        "id": "r-q1",
                        "collection": "quotes",
                        "version": 50,
                        "customer_id": "c-1",
                        "fields": {"kind": "quote", "number": "Q-20261202-1a2b", "total": 18980.5},
                    },
                    "lines": [
                        {
                            "id": "r-l1",
                            "collection": "quote_lines",
                            "version": 51,
                            "customer_id": "c-1",
                            "fields": {"product_id": "p-1", "quantity": 10, "line_total": 18980.5},
                        }
                    ],
                }
            ]
        }
    )

    quote: RecordOut
    lines: list[RecordOut]


class StatusIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"status": "fulfilled"}]}
    )

    status: Literal["draft", "accepted", "fulfilled", "cancelled"]


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _number(kind: str) -> str:
    prefix = "SO" if kind == "order" else "Q"
    return f"{prefix}-{datetime.now(UTC):%Y%m%d}-{uuid.uuid4().hex[:6]}"


def _bad(field: str, code: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[FieldError(field=field, code=code, message=message)])


def priced_line(
    line: LineIn, product: StoredRow | None, tier: str | None, index: int
) -> dict[str, Any]:
    """A line's fields priced from the catalogue (without ``customer_id``/``quote_id``)."""
    if product is None or product.deleted:
        raise _bad(f"lines.{index}.product_id", "unknown_ref", f"no product {line.product_id!r}")
    if product.fields.get("active") is False:
        raise _bad(f"lines.{index}.product_id", "inactive", "the product is no longer sold")
    listed = catalogue_price(product.fields, tier)
    if line.unit_price is not None:
        unit = line.unit_price
    elif listed is not None:
        unit = to_number(listed)
    else:
        raise _bad(f"lines.{index}.unit_price", "required", "the product has no price: give one")
    tax = line.tax_rate if line.tax_rate is not None else product.fields.get("tax_rate") or 0
    fields: dict[str, Any] = {
        "product_id": line.product_id,
        "quantity": line.quantity,
        "unit_price": unit,
        "discount": line.discount,
        "tax_rate": tax,
    }
    if listed is not None:
        fields["list_price"] = to_number(listed)
    return fields | line_fields(fields)


def _rows_out(conn: Connection, collection: str, ids: list[str]) -> list[RecordOut]:
    out = []
    for rid in ids:
        row = load_row(conn, collection, rid)
        assert row is not None
        out.append(row.out())
    return out


def create_quote(
    conn: Connection, context: ServerContext, principal: Principal, body: QuoteIn
) -> QuoteOut:
    lock_counter(conn)
    customer = visible_row(conn, principal, "customers", body.customer_id)
    tier = customer.fields.get("tier")
    lines = [
        priced_line(line, load_row(conn, "products", line.product_id), tier, i)
        for i, line in enumerate(body.lines)
    ]
    qid = new_record_id()
    quote: dict[str, Any] = {
        "customer_id": customer.id,
        "kind": body.kind,
        "number": body.number or _number(body.kind),
        "status": "draft",
    }
    for name in ("opportunity_id", "valid_until", "currency", "notes"):
        if getattr(body, name) is not None:
            quote[name] = getattr(body, name)
    if body.kind == "order":
        quote["ordered_at"] = _now_iso()
    quote |= order_fields(lines)
    line_ids = [new_record_id() for _ in lines]
    mutations = [make_mutation(context, "quotes", qid, fields=quote)]
    for lid, fields in zip(line_ids, lines, strict=True):
        fields = {"customer_id": customer.id, "quote_id": qid, **fields}
        mutations.append(make_mutation(context, "quote_lines", lid, fields=fields))
    apply_group(conn, context, principal, mutations)
    return QuoteOut(
        quote=_rows_out(conn, "quotes", [qid])[0], lines=_rows_out(conn, "quote_lines", line_ids)
    )


def _lines_of(conn: Connection, quote: StoredRow) -> list[StoredRow]:
    stmt = select(records_t.c.record_id).where(
        records_t.c.collection == "quote_lines",
        records_t.c.customer_id == quote.customer_id,
        records_t.c.deleted.is_(False),
    )
    rows = [load_row(conn, "quote_lines", rid) for rid in conn.execute(stmt).scalars()]
    return [r for r in rows if r is not None and r.fields.get("quote_id") == quote.id]


def order_from_quote(
    conn: Connection, context: ServerContext, principal: Principal, quote_id: str
) -> QuoteOut:
    lock_counter(conn)
    quote = visible_row(conn, principal, "quotes", quote_id)
    if quote.fields.get("kind") != "quote":
        raise _bad("kind", "not_a_quote", "only a quote becomes an order")
    if quote.fields.get("status") in ("rejected", "cancelled"):
        raise _bad(
            "status", "invalid_transition", "a rejected or cancelled quote cannot be ordered"
        )
    copied = ("product_id", "quantity", "unit_price", "discount", "tax_rate", "list_price")
    lines = [{k: r.fields[k] for k in copied if k in r.fields} for r in _lines_of(conn, quote)]
    lines = [line | line_fields(line) for line in lines]
    oid = new_record_id()
    order: dict[str, Any] = {
        "customer_id": quote.customer_id,
        "kind": "order",
        "number": _number("order"),
        "status": "accepted",
        "quote_id": quote.id,
        "ordered_at": _now_iso(),
    }
    for name in ("opportunity_id", "currency"):
        if quote.fields.get(name) is not None:
            order[name] = quote.fields[name]
    order |= order_fields(lines) if lines else {"total": quote.fields.get("total") or 0}
    line_ids = [new_record_id() for _ in lines]
    mutations = [
        make_mutation(context, "quotes", oid, fields=order),
        make_mutation(context, "quotes", quote.id, fields={"status": "accepted"}, current=quote),
    ]
    for lid, fields in zip(line_ids, lines, strict=True):
        fields = {"customer_id": quote.customer_id, "quote_id": oid, **fields}
        mutations.append(make_mutation(context, "quote_lines", lid, fields=fields))
    apply_group(conn, context, principal, mutations)
    return QuoteOut(
        quote=_rows_out(conn, "quotes", [oid])[0], lines=_rows_out(conn, "quote_lines", line_ids)
    )


def set_order_status(
    conn: Connection, context: ServerContext, principal: Principal, order_id: str, status: str
) -> RecordOut:
    lock_counter(conn)
    order = visible_row(conn, principal, "quotes", order_id)
    if order.fields.get("kind") != "order":
        raise _bad("kind", "not_an_order", "this record is a quote, not an order")
    problem = order_status_error(order.fields.get("status"), status)
    if problem:
        raise _bad("status", "invalid_transition", problem)
    fields: dict[str, Any] = {"status": status}
    if status == "fulfilled":
        fields["fulfilled_at"] = _now_iso()
    apply_group(
        conn,
        context,
        principal,
        [make_mutation(context, "quotes", order.id, fields=fields, current=order)],
    )
    row = load_row(conn, "quotes", order.id)
    assert row is not None
    return row.out()


@router.post(
    "/quotes", response_model=QuoteOut, status_code=201, responses=error_responses(404, 409)
)
def post_quote(
    body: QuoteIn, auth: ManagerAuth, context: ContextDep, session: SessionDep
) -> QuoteOut:
    """A quote (or an order) with lines priced from the catalogue; totals computed."""
    out = create_quote(session.connection(), context, auth.principal, body)
    session.commit()
    return out


@router.post(
    "/quotes/{quote_id}/order",
    response_model=QuoteOut,
    status_code=201,
    responses=error_responses(404, 409),
)
def post_order(
    quote_id: RecordId, auth: ManagerAuth, context: ContextDep, session: SessionDep
) -> QuoteOut:
    """Turn a quote into an order (lines copied, the quote accepted)."""
    out = order_from_quote(session.connection(), context, auth.principal, quote_id)
    session.commit()
    return out


@router.post(
    "/orders/{order_id}/status", response_model=RecordOut, responses=error_responses(404, 409)
)
def post_status(
    order_id: RecordId, body: StatusIn, auth: ManagerAuth, context: ContextDep, session: SessionDep
) -> RecordOut:
    """Move an order: draft → accepted → fulfilled, or cancelled before fulfilment."""
    out = set_order_status(session.connection(), context, auth.principal, order_id, body.status)
    session.commit()
    return out
