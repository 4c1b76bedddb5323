"""The product catalogue, and quotes/orders with lines — priced and totalled offline.

Totals come from ``sync_protocol.orders``, the one function the server also runs: each
line is quantity × unit price, less its discount, plus tax, rounded per line; the order
is the sum of its lines. The device writes the totals it computed; the server recomputes
and refuses a mismatch (``total_mismatch``), so what the rep showed the customer is what
the office sees. A line's price comes from the catalogue (the product's price, or its
price for the customer's tier) and may be changed. The order and its lines are written
as one mutation group: the server stores all of them or none.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import sync_protocol.orders as totals
from sync_protocol import CRM_SCHEMA

from .base import Observable, Session
from .customers import money
from .leads import write_group

QUOTE_STATUSES = CRM_SCHEMA["quotes"].fields["status"].choices


def _has(collection: str, name: str) -> bool:
    return name in CRM_SCHEMA[collection].fields


@dataclass(frozen=True, slots=True)
class ProductRow:
    id: str
    name: str
    subtitle: str
    price: str


class CatalogueViewModel(Observable):
    """Products, searched by name, SKU and pinyin; only those on sale by default."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.query = ""
        self.rows: list[ProductRow] = []

    def set_query(self, text: str) -> None:
        self.query = text
        self.refresh()

    def refresh(self) -> None:
        records = self.session.store.collection("products").query(
            where=lambda r: r.fields.get("active") is not False,
            search=self.query.strip() or None,
            order_by="name",
        )
        self.rows = [
            ProductRow(
                r.id,
                str(r.fields.get("name") or ""),
                " · ".join(str(r.fields[k]) for k in ("sku", "category") if r.fields.get(k)),
                money(r.fields.get("price"))
                + (f" / {r.fields['unit']}" if r.fields.get("unit") else ""),
            )
            for r in records
        ]
        self.notify()


@dataclass(frozen=True, slots=True)
class OrderRow:
    id: str
    title: str
    subtitle: str
    pending: bool


class OrderListViewModel(Observable):
    def __init__(self, session: Session, customer_id: str | None = None) -> None:
        super().__init__()
        self.session = session
        self.customer_id = customer_id
        self.rows: list[OrderRow] = []

    def refresh(self) -> None:
        tr = self.session.tr
        names = {
            r.id: str(r.fields.get("name") or "")
            for r in self.session.store.collection("customers").all()
        }
        where = {"customer_id": self.customer_id} if self.customer_id else None
        records = self.session.store.collection("quotes").query(
            where=where, order_by="number", descending=True
        )
        self.rows = [
            OrderRow(
                r.id,
                f"{r.fields.get('number', '')} · {names.get(str(r.fields.get('customer_id')), '')}",
                " · ".join(
                    b
                    for b in (
                        tr.choice("quote_kind", r.fields.get("kind")),
                        tr.choice("quote_status", r.fields.get("status")),
                        money(r.fields.get("total"), r.fields.get("currency")),
                    )
                    if b
                ),
                r.pending,
            )
            for r in records
        ]
        self.notify()


@dataclass
class LineDraft:
    """One line as typed: product, quantity, unit price, discount in percent."""

    product_id: str
    product_name: str
    quantity: str = "1"
    unit_price: str = ""
    discount_pct: str = ""
    tax_rate: Any = None
    id: str | None = None
    list_price: float | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def values(self) -> dict[str, Any]:
        """The line's typed values as numbers (``ValueError`` names the bad field)."""
        out: dict[str, Any] = {
            "quantity": _number(self.quantity, "quantity"),
            "unit_price": _number(self.unit_price, "unit_price"),
        }
        pct = _number(self.discount_pct, "discount") if self.discount_pct.strip() else 0
        out["discount"] = round(pct / 100, 6) if pct else 0
        if self.tax_rate is not None:
            out["tax_rate"] = self.tax_rate
        return out


def _number(text: str, name: str) -> float | int:
    raw = text.strip().replace(",", "")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(name) from None
    if value < 0:
        raise ValueError(name)
    return int(value) if value.is_integer() else value


class OrderBuilderViewModel(Observable):
    """Build a quote or an order: customer, lines from the catalogue, live totals."""

    def __init__(
        self, session: Session, quote_id: str | None = None, customer_id: str = ""
    ) -> None:
        super().__init__()
        self.session = session
        self.quote_id = quote_id
        self.customer_id = customer_id
        self.kind = "order"
        self.status = "draft"
        self.number = ""
        self.notes = ""
        self.lines: list[LineDraft] = []
        self.removed: list[str] = []
        self.extra_header: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self.message = ""
        if quote_id:
            self._load(quote_id)
        if not self.number:
            self.number = self._new_number()

    def _load(self, quote_id: str) -> None:
        store = self.session.store
        quote = store.collection("quotes").get(quote_id)
        if quote is None:
            self.quote_id = None
            return
        f = quote.fields
        self.customer_id = str(f.get("customer_id") or "")
        self.kind = str(f.get("kind") or "order")
        self.status = str(f.get("status") or "draft")
        self.number = str(f.get("number") or "")
        self.notes = str(f.get("notes") or "")
        products = store.collection("products")
        for line in store.collection("quote_lines").query(where={"quote_id": quote_id}):
            lf = line.fields
            product = products.get(str(lf.get("product_id")))
            discount = lf.get("discount")
            self.lines.append(
                LineDraft(
                    str(lf.get("product_id")),
                    str(product.fields.get("name")) if product else str(lf.get("product_id")),
                    _text(lf.get("quantity")),
                    _text(lf.get("unit_price")),
                    _text(round(float(discount) * 100, 4)) if discount else "",
                    lf.get("tax_rate"),
                    line.id,
                )
            )

    def _new_number(self) -> str:
        stamp = self.session.now().astimezone().strftime("%Y%m%d-%H%M")
        prefix = "SO" if self.kind == "order" else "QT"
        return f"{prefix}-{stamp}-{self.session.user.username[:6].upper()}"

    @property
    def editable(self) -> bool:
        return self.status == "draft"

    def _tier(self) -> str | None:
        customer = self.session.store.collection("customers").get(self.customer_id)
        tier = customer.fields.get("tier") if customer else None
        return str(tier) if tier else None

    def add_line(self, product_id: str) -> bool:
        product = self.session.store.collection("products").get(product_id)
        if product is None or not self.editable:
            return False
        price = totals.catalogue_price(dict(product.fields), self._tier())
        tax = product.fields.get("tax_rate") if _has("quote_lines", "tax_rate") else None
        self.lines.append(
            LineDraft(
                product_id,
                str(product.fields.get("name") or ""),
                "1",
                _text(price) if price is not None else "",
                "",
                tax,
                list_price=float(price) if price is not None else None,
            )
        )
        self.notify()
        return True

    def set_line(self, index: int, name: str, text: str) -> None:
        line = self.lines[index]
        if name not in ("quantity", "unit_price", "discount_pct"):
            raise KeyError(name)
        setattr(line, name, text)
        line.errors.pop(name, None)
        self.notify()

    def remove_line(self, index: int) -> None:
        line = self.lines.pop(index)
        if line.id:
            self.removed.append(line.id)
        self.notify()

    # -- totals ------------------------------------------------------------------------
    def line_amounts(self, index: int) -> totals.LineAmounts | None:
        try:
            return totals.line_amounts_of(self.lines[index].values())
        except ValueError:
            return None

    def amounts(self) -> totals.OrderAmounts | None:
        try:
            return totals.order_amounts([line.values() for line in self.lines])
        except ValueError:
            return None

    def line_total_text(self, index: int) -> str:
        amounts = self.line_amounts(index)
        return money(_num(amounts.total)) if amounts else "—"

    @property
    def totals_text(self) -> str:
        tr = self.session.tr
        amounts = self.amounts()
        if amounts is None:
            return tr("orders.fix_lines")
        return tr(
            "orders.totals",
            gross=money(_num(amounts.gross)),
            discount=money(_num(amounts.discount)),
            tax=money(_num(amounts.tax)),
            total=money(_num(amounts.total)),
        )

    # -- saving ------------------------------------------------------------------------
    def _check(self) -> bool:
        tr = self.session.tr
        self.errors = {}
        if not self.customer_id:
            self.errors["customer_id"] = tr("tickets.pick_customer")
        if not self.lines:
            self.errors["lines"] = tr("orders.no_lines")
        for line in self.lines:
            line.errors = {}
            try:
                values = line.values()
                totals.line_amounts_of(values)
            except ValueError as exc:
                name = (
                    str(exc) if str(exc) in ("quantity", "unit_price", "discount") else "quantity"
                )
                key = "discount_pct" if name == "discount" else name
                line.errors[key] = tr("orders.bad_number")
            else:
                if values["discount"] > 1:
                    line.errors["discount_pct"] = tr("orders.bad_number")
        bad = self.errors or any(line.errors for line in self.lines)
        if bad:
            self.message = tr("customers.fix")
            self.notify()
        return not bad

    def save(self) -> bool:
        """Write the quote/order and its lines as one group, totals from the shared function."""
        if not self.editable or not self._check():
            return False
        with write_group(self.session):
            self._write()
        self.message = self.session.tr("customers.saved")
        self.notify()
        return True

    def _write(self) -> None:
        store = self.session.store
        line_values = [line.values() for line in self.lines]
        header: dict[str, Any] = {
            "customer_id": self.customer_id,
            "kind": self.kind,
            "number": self.number,
            "status": self.status,
            "currency": "CNY",
            "notes": self.notes.strip() or None,
        }
        header |= {k: v for k, v in totals.order_fields(line_values).items() if _has("quotes", k)}
        header |= {k: v for k, v in self.extra_header.items() if _has("quotes", k)}
        header = {k: v for k, v in header.items() if v is not None}
        quotes = store.collection("quotes")
        if self.quote_id and quotes.get(self.quote_id) is not None:
            quotes.update(self.quote_id, header)
        else:
            self.quote_id = quotes.insert(header).id
        lines = store.collection("quote_lines")
        for line_id in self.removed:
            if lines.get(line_id) is not None:
                lines.delete(line_id)
        self.removed = []
        for line, values in zip(self.lines, line_values, strict=True):
            record = {
                "customer_id": self.customer_id,
                "quote_id": self.quote_id,
                "product_id": line.product_id,
                **values,
            }
            record |= {
                k: v for k, v in totals.line_fields(values).items() if _has("quote_lines", k)
            }
            if line.list_price is not None and _has("quote_lines", "list_price"):
                record["list_price"] = line.list_price
            if line.id and lines.get(line.id) is not None:
                lines.update(line.id, record)
            else:
                line.id = lines.insert(record).id

    def place(self) -> bool:
        """Place the order: a draft order becomes ``accepted`` (``ordered_at`` now); a
        saved quote is marked accepted and a new order is made from it (``quote_id``),
        with the same lines — all in one group."""
        if not self.editable or not self._check():
            return False
        source = self.quote_id if self.kind == "quote" and self.quote_id else None
        self.extra_header = {"ordered_at": self.session.now_iso()}
        if source is not None:
            self.extra_header["quote_id"] = source
            self.quote_id = None
            self.lines = [replace(line, id=None) for line in self.lines]
            self.removed = []
        self.kind, self.status = "order", "accepted"
        if source is not None:
            self.number = self._new_number()
        with write_group(self.session):
            if source is not None:
                self.session.store.collection("quotes").update(source, {"status": "accepted"})
            self._write()
        self.message = self.session.tr("orders.placed")
        self.notify()
        return True


def _num(value: Decimal) -> float:
    return float(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
