"""Quote and order totals on every write: the server side of :mod:`sync_protocol.orders`.

After a unit (a mutation or a group) is applied in memory:

* a ``quote_lines`` write that **states** ``line_total`` must agree with
  :func:`~sync_protocol.orders.line_amounts` of the line as it now stands, else the
  mutation is rejected with ``total_mismatch`` (``details.mismatches``: field, sent,
  expected) and its whole group with it;
* a ``quotes`` write that states ``subtotal``/``discount_total``/``tax_total``/``total``
  must agree with :func:`~sync_protocol.orders.order_amounts` of the quote's live lines
  after the unit — when the quote has lines (a quote without lines states a lump sum);
* totals a unit does **not** state are kept true by the server: a line's ``line_total``
  and its quote's totals are recomputed whenever the unit changed the line, so a client
  that does not know these fields (schema v1) keeps working and the stored figures are
  always the function's.

A device therefore sends an order and its lines in one group with the totals it
computed with the same function; a manager API write does the same.

An order's ``status`` (``kind`` order) moves along
:data:`sync_protocol.orders.ORDER_TRANSITIONS` — draft → accepted → fulfilled, or
cancelled before fulfilment; any other change is ``validation_failed``
(``invalid_transition``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sync_protocol import ErrorCode
from sync_protocol.orders import (
    LINE_TOTAL_FIELDS,
    ORDER_TOTAL_FIELDS,
    Mismatch,
    line_fields,
    line_mismatches,
    order_fields,
    order_mismatches,
    order_status_error,
)

from ..repository.units import Batch, Rejected, UnitWrite

QUOTES = "quotes"
LINES = "quote_lines"


def _mismatch(mutation_id: str, what: str, mismatches: list[Mismatch]) -> Rejected:
    first = mismatches[0]
    return Rejected(
        ErrorCode.TOTAL_MISMATCH,
        f"{what}: {first.field} is {first.sent}, the lines give {first.expected}",
        {"mismatches": [m.as_details() for m in mismatches]},
        mutation_id=mutation_id,
    )


def _invalid(mutation_id: str, message: str) -> Rejected:
    return Rejected(
        ErrorCode.VALIDATION_FAILED,
        message,
        {"fields": [{"field": "quantity", "code": "invalid", "message": message}]},
        mutation_id=mutation_id,
    )


class OrderTotalsRule:
    """Checks stated totals, maintains unstated ones (see the module docstring)."""

    def check_unit(self, batch: Batch, unit: Sequence[UnitWrite]) -> None:
        touched: dict[str, str] = {}  # quote id -> the mutation that touched it
        stated: dict[str, tuple[str, dict[str, Any]]] = {}
        for w in unit:
            m = w.mutation
            if m.collection == LINES:
                self._line(batch, w)
                for state in (w.row, w.before):
                    qid = state.record.fields.get("quote_id") if state is not None else None
                    if isinstance(qid, str):
                        touched.setdefault(qid, m.id)
            elif m.collection == QUOTES and m.op == "upsert":
                self._status(w)
                said = {k: v for k, v in m.fields.items() if k in ORDER_TOTAL_FIELDS}
                if said:
                    _, earlier = stated.get(m.record_id, ("", {}))
                    stated[m.record_id] = (m.id, {**earlier, **said})
        for qid, (mutation_id, said) in stated.items():
            self._quote(batch, qid, said, mutation_id, line_changed=qid in touched)
        if touched:  # (a unit of customers touches no quote: no set to build)
            for qid in touched.keys() - stated.keys():
                self._quote(batch, qid, {}, touched[qid], line_changed=True)

    @staticmethod
    def _status(w: UnitWrite) -> None:
        """An order's status moves along :data:`ORDER_TRANSITIONS`."""
        after = w.row.record.fields
        if "status" not in w.mutation.fields or after.get("kind") != "order":
            return
        old = w.before.record if w.before is not None else None
        before = None
        if old is not None and not old.deleted and old.fields.get("kind") == "order":
            before = old.fields.get("status")
        problem = order_status_error(before, after.get("status"))
        if problem:
            raise Rejected(
                ErrorCode.VALIDATION_FAILED,
                f"quotes: {problem}",
                {"fields": [{"field": "status", "code": "invalid_transition", "message": problem}]},
                mutation_id=w.mutation.id,
            )

    def _line(self, batch: Batch, w: UnitWrite) -> None:
        m, record = w.mutation, w.row.record
        if m.op != "upsert" or record.deleted:
            return
        try:
            wrong = line_mismatches(m.fields, record.fields)
            derived = line_fields(record.fields)
        except ValueError as exc:
            raise _invalid(m.id, f"quote line: {exc}") from exc
        if wrong:
            raise _mismatch(m.id, "quote line", wrong)
        unstated = {k: v for k, v in derived.items() if k not in m.fields}
        if unstated:
            batch.derive(LINES, m.record_id, unstated)

    def _quote(
        self,
        batch: Batch,
        quote_id: str,
        said: dict[str, Any],
        mutation_id: str,
        *,
        line_changed: bool,
    ) -> None:
        quote = batch.row(QUOTES, quote_id)
        if quote is None or quote.record.deleted or quote.customer_id is None:
            return
        lines = [
            r.record.fields
            for r in batch.children(LINES, quote.customer_id)
            if r.record.fields.get("quote_id") == quote_id
        ]
        if not lines and not line_changed:
            return  # a quote without lines states a lump sum
        try:
            wrong = order_mismatches(said, lines)
            derived = order_fields(lines)
        except ValueError as exc:
            raise _invalid(mutation_id, f"quote {quote_id}: a line is invalid: {exc}") from exc
        if wrong:
            raise _mismatch(mutation_id, f"quote {quote_id}", wrong)
        batch.derive(QUOTES, quote_id, {k: v for k, v in derived.items() if k not in said})


__all__ = ["LINE_TOTAL_FIELDS", "OrderTotalsRule"]
