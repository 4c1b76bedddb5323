"""Lead conversion on the server: a lead becomes ``converted`` only with its links.

The writes themselves are ordinary (see :mod:`sync_protocol.leads` for the group a
device or the manager API sends); this rule checks the group as a whole, after it is
applied in memory:

* a lead turning ``converted`` must name ``converted_customer_id``: a live customer the
  writer sees (created in the same group, or existing); ``converted_contact_id`` and
  ``converted_opportunity_id``, when set, must be live records **of that customer**;
* ``converted_at`` defaults to the server's time;
* a converted lead stays converted: changing its status or links is refused
  (``already_converted``) — except when the server re-points the link in a customer
  merge.

Failures are ``validation_failed`` (``details.fields[]``) and take the group down.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sync_protocol import ErrorCode
from sync_protocol.errors import FieldError
from sync_protocol.leads import CONVERSION_LINKS, CONVERTED

from ..repository.units import Batch, Rejected, UnitWrite

LEADS = "leads"
_LINKED = {"converted_contact_id": "contacts", "converted_opportunity_id": "opportunities"}


def _reject(mutation_id: str, name: str, code: str, message: str) -> Rejected:
    return Rejected(
        ErrorCode.VALIDATION_FAILED,
        f"leads: {message}",
        {"fields": [FieldError(field=name, code=code, message=message).model_dump()]},
        mutation_id=mutation_id,
    )


class ConversionRule:
    def check_unit(self, batch: Batch, unit: Sequence[UnitWrite]) -> None:
        if batch.repointing:
            return  # a merge moves a converted lead's link to the surviving customer
        for w in unit:
            m = w.mutation
            if m.collection != LEADS or m.op != "upsert" or w.row.record.deleted:
                continue
            if "status" not in m.fields and not any(k in m.fields for k in CONVERSION_LINKS):
                continue
            after = w.row.record.fields
            before: dict[str, Any] = {}
            if w.before is not None and not w.before.record.deleted:
                before = w.before.record.fields
            if before.get("status") == CONVERTED:
                for name in ("status", *CONVERSION_LINKS):
                    if after.get(name) != before.get(name):
                        raise _reject(m.id, name, "already_converted", "the lead is converted")
            elif after.get("status") == CONVERTED:
                self._check_links(batch, w, after)

    @staticmethod
    def _check_links(batch: Batch, w: UnitWrite, after: dict[str, Any]) -> None:
        m = w.mutation
        customer_id = after.get("converted_customer_id")
        customer = batch.row("customers", customer_id) if isinstance(customer_id, str) else None
        if customer is None or customer.record.deleted:
            raise _reject(
                m.id,
                "converted_customer_id",
                "required" if customer_id is None else "unknown_ref",
                "a converted lead names the customer it became",
            )
        if not batch.principal.sees_owner(customer.owner_id):
            raise _reject(m.id, "converted_customer_id", "unknown_ref", "customer not in scope")
        for name, collection in _LINKED.items():
            rid = after.get(name)
            if rid is None:
                continue
            row = batch.row(collection, str(rid))
            if row is None or row.record.deleted or row.customer_id != customer_id:
                raise _reject(m.id, name, "unknown_ref", f"{name} is not a record of the customer")
        if not after.get("converted_at"):
            now = datetime.fromtimestamp(batch.now_ms / 1000, UTC).isoformat(timespec="seconds")
            batch.derive(LEADS, m.record_id, {"converted_at": now.replace("+00:00", "Z")})
