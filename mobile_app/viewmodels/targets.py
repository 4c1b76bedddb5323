"""My targets (销售目标) and how far the rep has come.

A target is an amount for a period (and optionally one product). Attainment is the
amount of the rep's deals **won** in the period (``closed_at`` within it; for a product
target, deals of that product), the figure the manager's performance report uses. The
rep also sees what remains, how many days are left and the open pipeline weighted by
probability that could still close in the period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from .base import Observable, Session, parse_date, parse_when
from .customers import money


@dataclass(frozen=True, slots=True)
class TargetRow:
    id: str
    period: str
    product: str
    target: float
    won: float
    weighted_open: float
    percent: int
    days_left: int
    current: bool


class TargetsViewModel(Observable):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.rows: list[TargetRow] = []

    def refresh(self) -> None:
        store = self.session.store
        user = self.session.user.id
        today = self.session.today()
        products = {
            r.id: str(r.fields.get("name") or "") for r in store.collection("products").all()
        }
        deals = [d.fields for d in store.collection("opportunities").all()]
        mine = [
            t
            for t in store.collection("sales_targets").query(order_by="period_start")
            if not t.fields.get("owner_id") or t.fields.get("owner_id") == user
        ]
        self.rows = []
        for t in mine:
            start = parse_date(t.fields.get("period_start"))
            end = parse_date(t.fields.get("period_end"))
            if start is None or end is None:
                continue
            product = t.fields.get("product_id")
            won = open_weighted = 0.0
            for d in deals:
                if product and d.get("product_id") != product:
                    continue
                amount = d.get("amount")
                if not isinstance(amount, int | float):
                    continue
                if d.get("status") == "won" and _within(d.get("closed_at"), start, end):
                    won += float(amount)
                elif d.get("status") == "open" and _day_within(
                    d.get("expected_close_date"), start, end
                ):
                    prob = d.get("probability")
                    open_weighted += float(amount) * (
                        float(prob) if isinstance(prob, int | float) else 0
                    )
            target = float(t.fields.get("amount") or 0)
            self.rows.append(
                TargetRow(
                    t.id,
                    f"{start.isoformat()} – {end.isoformat()}",
                    products.get(str(product), "") if product else "",
                    target,
                    won,
                    open_weighted,
                    round(won / target * 100) if target else 0,
                    max(0, (end - today).days),
                    start <= today <= end,
                )
            )
        self.rows.sort(key=lambda r: (not r.current, r.period))
        self.notify()

    def lines(self, row: TargetRow) -> tuple[str, str]:
        tr = self.session.tr
        title = f"{row.period}" + (f" · {row.product}" if row.product else "")
        detail = tr(
            "targets.line",
            won=money(row.won),
            target=money(row.target),
            pct=row.percent,
            left=money(max(0.0, row.target - row.won)),
            days=row.days_left,
            pipeline=money(row.weighted_open),
        )
        return title, detail


def _within(value: object, start: date, end: date) -> bool:
    when = parse_when(value)
    return bool(when and start <= when.astimezone().date() <= end)


def _day_within(value: object, start: date, end: date) -> bool:
    day = parse_date(value)
    return bool(day and start <= day <= end)
