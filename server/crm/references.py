"""Referential integrity: every record a write points to exists and is the writer's.

For each ``ref`` field a write sets (not null), after its unit is applied:

* a reference to a synced collection (``stage_id``, ``product_id``, ``opportunity_id``,
  ``converted_customer_id`` …) must name a live record the writer can see — a record
  created earlier in the same push or group counts;
* a customer-scoped record may only point to a customer-scoped record of the **same
  customer** (an activity's ``contact_id`` is a contact of that activity's customer);
* a reference to ``users`` (``assignee_id``, a target's ``owner_id``) must name a user.

A failure is ``validation_failed`` with ``details.fields[]`` code ``unknown_ref`` (the
record is missing, deleted or outside the writer's scope — deliberately one code, so a
rep cannot probe for records they may not see) or ``other_customer``. Only the
references a write *sets* are checked: old records with dangling references can still
be edited.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, select

from sync_protocol import ErrorCode, Scope
from sync_protocol.errors import FieldError

from ..models import User
from ..repository.units import Batch, Rejected, UnitWrite

users_t = cast(Table, User.__table__)
USERS = "users"


def _user_ids(batch: Batch) -> set[str]:
    cached = batch.scratch.get("user_ids")
    if cached is None:
        cached = set(batch.conn.execute(select(users_t.c.id)).scalars())
        batch.scratch["user_ids"] = cached
    return cast(set[str], cached)


class ReferencesRule:
    def check_unit(self, batch: Batch, unit: Sequence[UnitWrite]) -> None:
        for w in unit:
            m = w.mutation
            entity = batch.schema.get(m.collection)
            if entity is None or m.op != "upsert" or w.row.record.deleted:
                continue
            refs = entity.ref_fields
            if refs.isdisjoint(m.fields):
                continue
            errors: list[FieldError] = []
            for name, value in m.fields.items():
                if name not in refs or not isinstance(value, str):
                    continue
                spec = entity.fields[name]
                if entity.scope is Scope.CUSTOMER and name == entity.customer_field:
                    continue  # placement already checked the customer
                problem = self._problem(batch, w, spec.ref or "", value)
                if problem is not None:
                    code, message = problem
                    errors.append(FieldError(field=name, code=code, message=f"{name}: {message}"))
            if errors:
                raise Rejected(
                    ErrorCode.VALIDATION_FAILED,
                    f"{m.collection}: {errors[0].message}",
                    {"fields": [e.model_dump() for e in errors]},
                    mutation_id=m.id,
                )

    def _problem(self, batch: Batch, w: UnitWrite, ref: str, value: str) -> tuple[str, str] | None:
        if ref == USERS:
            return None if value in _user_ids(batch) else ("unknown_ref", f"no user {value}")
        target_entity = batch.schema.get(ref)
        if target_entity is None:
            return None
        target = batch.row(ref, value)
        if (
            target is None
            or target.record.deleted
            or not batch.principal.sees_owner(target.owner_id)
        ):
            return ("unknown_ref", f"no {ref} record {value} in your scope")
        source = batch.schema.get(w.mutation.collection)
        if (
            source is not None
            and source.scope is Scope.CUSTOMER
            and target_entity.scope is Scope.CUSTOMER
            and target.customer_id != w.row.customer_id
        ):
            return ("other_customer", f"{ref} record {value} belongs to another customer")
        return None
