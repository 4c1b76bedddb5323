"""The one totals function (sync_protocol.orders): rounding, exactness, checks."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_protocol.orders import (
    catalogue_price,
    line_amounts,
    line_fields,
    line_mismatches,
    order_amounts,
    order_fields,
    order_mismatches,
    to_decimal,
)


def test_line_rounds_each_step_half_up_in_the_documented_order() -> None:
    a = line_amounts(3, 33.335, 0.1, 0.13)
    assert (a.gross, a.discount, a.net, a.tax, a.total) == (
        Decimal("100.01"),  # 100.005 rounds up, not to even
        Decimal("10.00"),
        Decimal("90.01"),
        Decimal("11.70"),  # 11.7013
        Decimal("101.71"),
    )


def test_floats_are_read_as_their_decimal_text() -> None:
    assert to_decimal(0.1) == Decimal("0.1")
    # 1.005 as a binary float is 1.00499999…; read as text it is 1.005 and rounds up.
    assert line_amounts(1, 1.005).total == Decimal("1.01")
    assert line_amounts("2", "0.1").total == Decimal("0.20")


def test_missing_discount_and_tax_are_zero() -> None:
    assert line_amounts(2, 50, None, None).total == Decimal("100.00")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((None, 1), "quantity"),
        ((1, True), "unit_price"),
        ((-1, 1), "negative"),
        ((1, 1, 1.5), "discount"),
        ((1, 1, 0, -0.1), "tax_rate"),
        ((1, float("nan")), "finite"),
        ((1, "abc"), "unit_price"),
    ],
)
def test_bad_inputs_are_refused(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        line_amounts(*args)


def test_order_is_the_sum_of_its_rounded_lines() -> None:
    lines = [
        {"quantity": 1, "unit_price": 0.005},  # 0.01 after rounding, per line
        {"quantity": 1, "unit_price": 0.005},
        {"quantity": 2, "unit_price": 99.99, "discount": 0.05, "tax_rate": 0.13},
    ]
    o = order_amounts(lines)
    assert o.total == sum(line.total for line in o.lines)
    assert o.gross == Decimal("0.01") * 2 + Decimal("199.98")
    assert order_fields(lines) == {
        "subtotal": 200.0,
        "discount_total": 10.0,
        "tax_total": 24.7,  # 189.98 × 0.13 = 24.6974
        "total": 214.7,
    }
    assert order_amounts([]).total == Decimal(0)


def test_mismatches_name_the_stated_fields_only() -> None:
    line = {"quantity": 2, "unit_price": 45, "discount": 0, "tax_rate": 0}
    assert line_mismatches({"quantity": 2}, line) == []
    assert line_mismatches({"line_total": 90}, line) == []
    assert line_mismatches({"line_total": 90.0}, line) == []
    (wrong,) = line_mismatches({"line_total": 100}, line)
    assert wrong.as_details() == {"field": "line_total", "sent": 100, "expected": 90.0}
    assert line_fields(line) == {"line_total": 90.0}
    stated = {"total": 90, "tax_total": 1, "subtotal": None}
    assert [m.field for m in order_mismatches(stated, [line])] == ["tax_total"]
    assert [m.field for m in order_mismatches({"total": "x"}, [line])] == ["total"]


def test_catalogue_price_uses_the_customers_tier_when_priced() -> None:
    product = {"price": 100, "tier_prices": {"high": 90}}
    assert catalogue_price(product, "high") == Decimal(90)
    assert catalogue_price(product, "low") == Decimal(100)
    assert catalogue_price(product) == Decimal(100)
    assert catalogue_price({"name": "x"}) is None


money = st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False)
rates = st.decimals(min_value=0, max_value=1, places=2, allow_nan=False)


@given(st.lists(st.tuples(money, money, rates, rates), max_size=20))
def test_order_total_is_exactly_the_sum_of_line_totals(
    rows: list[tuple[Decimal, Decimal, Decimal, Decimal]],
) -> None:
    lines = [{"quantity": q, "unit_price": p, "discount": d, "tax_rate": t} for q, p, d, t in rows]
    o = order_amounts(lines)
    assert o.total == sum((line_amounts(q, p, d, t).total for q, p, d, t in rows), Decimal(0))
    assert o.total == o.gross - o.discount + o.tax
    assert all(a.total.as_tuple().exponent == -2 for a in o.lines)
