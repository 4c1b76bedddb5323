"""Quote and order arithmetic: the one totals function the server and every device use.

A line is ``quantity × unit_price``, less a ``discount`` (a fraction, 0.1 = 10 % off),
plus ``tax_rate`` (a fraction of the discounted amount, 0.13 = 13 % VAT; prices are
tax-exclusive). Amounts are :class:`~decimal.Decimal`, never binary floats: a JSON
number is read through its shortest decimal text (``0.1`` is exactly one tenth).

Rounding (documented in ``docs/protocol.md``, "Quotes and orders"): every *line* amount
is rounded to the currency's minor unit (:data:`MONEY_PLACES`, two places) half away
from zero (``ROUND_HALF_UP``, 四舍五入) in this order —

1. ``gross = round(quantity × unit_price)``
2. ``discount = round(gross × discount_rate)``
3. ``net = gross − discount``
4. ``tax = round(net × tax_rate)``
5. ``total = net + tax``

— and the order's amounts are the plain sums of its lines' rounded amounts, so an
order's total always equals the sum of the totals printed on its lines.

The server refuses a write whose stated totals differ from this computation with
``total_mismatch`` (:func:`line_mismatches`, :func:`order_mismatches` say which), and an
order status change :data:`ORDER_TRANSITIONS` does not allow (:func:`order_status_error`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

#: The minor unit amounts are rounded to (yuan/dollars with two decimals).
MONEY_PLACES = Decimal("0.01")
ROUNDING = ROUND_HALF_UP
ZERO = Decimal(0)

#: Line fields (inputs) and the derived amount each stated total field must equal.
LINE_TOTAL_FIELDS: Mapping[str, str] = {"line_total": "total"}
#: Order (quote) fields and the derived order amount each must equal.
ORDER_TOTAL_FIELDS: Mapping[str, str] = {
    "subtotal": "gross",
    "discount_total": "discount",
    "tax_total": "tax",
    "total": "total",
}


def to_decimal(value: Any, *, name: str = "value") -> Decimal:
    """A JSON number (or Decimal, or numeric text) as an exact Decimal.

    Floats go through ``repr`` (their shortest round-trip text), so ``0.1`` becomes
    ``Decimal("0.1")``, not 0.1000000000000000055….
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} must be a number")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number")
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation as exc:
            raise ValueError(f"{name} must be a number") from exc
    else:
        raise ValueError(f"{name} must be a number")
    if not result.is_finite():
        raise ValueError(f"{name} must be a finite number")
    return result


def round_money(amount: Decimal) -> Decimal:
    """``amount`` rounded to :data:`MONEY_PLACES`, half away from zero."""
    return amount.quantize(MONEY_PLACES, rounding=ROUNDING)


def to_number(amount: Decimal) -> float:
    """A rounded amount as a JSON number (``8.33`` → ``8.33``; exact for two places)."""
    return float(amount)


@dataclass(frozen=True, slots=True)
class LineAmounts:
    """One line's rounded amounts (see the module docstring for the order of rounding)."""

    gross: Decimal
    discount: Decimal
    net: Decimal
    tax: Decimal
    total: Decimal


@dataclass(frozen=True, slots=True)
class OrderAmounts:
    """An order's amounts: sums of its lines' rounded amounts."""

    lines: tuple[LineAmounts, ...]
    gross: Decimal
    discount: Decimal
    net: Decimal
    tax: Decimal
    total: Decimal


def line_amounts(
    quantity: Any, unit_price: Any, discount: Any = 0, tax_rate: Any = 0
) -> LineAmounts:
    """The amounts of one line. ``discount`` and ``tax_rate`` are fractions (None = 0).

    Raises ``ValueError`` for a missing or negative quantity or price, or a discount
    outside 0..1.
    """
    qty = to_decimal(quantity, name="quantity")
    price = to_decimal(unit_price, name="unit_price")
    rate = to_decimal(discount if discount is not None else 0, name="discount")
    tax_rate_d = to_decimal(tax_rate if tax_rate is not None else 0, name="tax_rate")
    if qty < 0 or price < 0:
        raise ValueError("quantity and unit_price must not be negative")
    if not ZERO <= rate <= 1:
        raise ValueError("discount must be a fraction between 0 and 1")
    if tax_rate_d < 0:
        raise ValueError("tax_rate must not be negative")
    gross = round_money(qty * price)
    off = round_money(gross * rate)
    net = gross - off
    tax = round_money(net * tax_rate_d)
    return LineAmounts(gross=gross, discount=off, net=net, tax=tax, total=net + tax)


def line_amounts_of(fields: Mapping[str, Any]) -> LineAmounts:
    """:func:`line_amounts` of a ``quote_lines`` record's fields."""
    return line_amounts(
        fields.get("quantity"),
        fields.get("unit_price"),
        fields.get("discount"),
        fields.get("tax_rate"),
    )


def order_amounts(lines: Iterable[Mapping[str, Any] | LineAmounts]) -> OrderAmounts:
    """The totals of an order from its lines (records' fields, or computed amounts)."""
    computed = tuple(
        line if isinstance(line, LineAmounts) else line_amounts_of(line) for line in lines
    )
    return OrderAmounts(
        lines=computed,
        gross=sum((a.gross for a in computed), ZERO),
        discount=sum((a.discount for a in computed), ZERO),
        net=sum((a.net for a in computed), ZERO),
        tax=sum((a.tax for a in computed), ZERO),
        total=sum((a.total for a in computed), ZERO),
    )


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A stated total that disagrees with the computation."""

    field: str
    sent: Any
    expected: Decimal

    def as_details(self) -> dict[str, Any]:
        return {"field": self.field, "sent": self.sent, "expected": to_number(self.expected)}


def _differs(sent: Any, expected: Decimal) -> bool:
    try:
        return to_decimal(sent) != expected
    except ValueError:
        return True


def line_mismatches(stated: Mapping[str, Any], line: Mapping[str, Any]) -> list[Mismatch]:
    """Stated line totals (the subset of :data:`LINE_TOTAL_FIELDS` present and not null
    in ``stated``) that differ from the amounts computed from ``line``'s fields."""
    wanted = [n for n in LINE_TOTAL_FIELDS if stated.get(n) is not None]
    if not wanted:
        return []
    amounts = line_amounts_of(line)
    return [
        Mismatch(n, stated[n], getattr(amounts, LINE_TOTAL_FIELDS[n]))
        for n in wanted
        if _differs(stated[n], getattr(amounts, LINE_TOTAL_FIELDS[n]))
    ]


def order_mismatches(
    stated: Mapping[str, Any], lines: Iterable[Mapping[str, Any]]
) -> list[Mismatch]:
    """Stated order totals (:data:`ORDER_TOTAL_FIELDS` present and not null) that differ
    from :func:`order_amounts` of ``lines``."""
    wanted = [n for n in ORDER_TOTAL_FIELDS if stated.get(n) is not None]
    if not wanted:
        return []
    amounts = order_amounts(lines)
    return [
        Mismatch(n, stated[n], getattr(amounts, ORDER_TOTAL_FIELDS[n]))
        for n in wanted
        if _differs(stated[n], getattr(amounts, ORDER_TOTAL_FIELDS[n]))
    ]


def order_fields(lines: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """The total fields a client writes on the order (``subtotal``, ``discount_total``,
    ``tax_total``, ``total``) for these lines, as JSON numbers."""
    amounts = order_amounts(lines)
    return {n: to_number(getattr(amounts, attr)) for n, attr in ORDER_TOTAL_FIELDS.items()}


def line_fields(line: Mapping[str, Any]) -> dict[str, float]:
    """The total fields a client writes on a line (``line_total``), as JSON numbers."""
    amounts = line_amounts_of(line)
    return {n: to_number(getattr(amounts, attr)) for n, attr in LINE_TOTAL_FIELDS.items()}


#: How an order's ``status`` may move (a quote's is free): placed as ``draft`` or
#: ``accepted`` (confirmed), ``fulfilled`` when delivered, ``cancelled`` before that.
ORDER_STATUSES = ("draft", "accepted", "fulfilled", "cancelled")
ORDER_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "draft": frozenset({"accepted", "cancelled"}),
    "accepted": frozenset({"fulfilled", "cancelled"}),
    "fulfilled": frozenset(),
    "cancelled": frozenset(),
}


def order_status_error(before: str | None, after: Any) -> str | None:
    """Why an order may not go from ``before`` (``None``: a new order) to ``after``."""
    if after not in ORDER_STATUSES:
        return f"an order's status is one of {', '.join(ORDER_STATUSES)}"
    if before is None or before == after:
        return None
    if before not in ORDER_TRANSITIONS:
        return None  # an order stored before the rules (e.g. "sent"): any valid status
    if after not in ORDER_TRANSITIONS[before]:
        return f"an order cannot go from {before} to {after}"
    return None


def catalogue_price(product: Mapping[str, Any], tier: str | None = None) -> Decimal | None:
    """A product's unit price for a customer of ``tier`` (``high``/``mid``/``low``).

    The price book is the product's ``price``, overridden per customer tier by
    ``tier_prices`` (``{"high": 90.0}``). ``None`` when the product has no price.
    """
    tiers = product.get("tier_prices")
    if tier and isinstance(tiers, Mapping) and tiers.get(tier) is not None:
        return to_decimal(tiers[tier], name="tier price")
    price = product.get("price")
    return None if price is None else to_decimal(price, name="price")


__all__ = [
    "LINE_TOTAL_FIELDS",
    "MONEY_PLACES",
    "ORDER_STATUSES",
    "ORDER_TOTAL_FIELDS",
    "ORDER_TRANSITIONS",
    "ROUNDING",
    "LineAmounts",
    "Mismatch",
    "OrderAmounts",
    "catalogue_price",
    "line_amounts",
    "line_amounts_of",
    "line_fields",
    "line_mismatches",
    "order_amounts",
    "order_fields",
    "order_mismatches",
    "order_status_error",
    "round_money",
    "to_decimal",
    "to_number",
]
