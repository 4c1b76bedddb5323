"""``/v1/manager/leads/{id}/convert``: convert a lead in one atomic operation.

The conversion is the same group of writes a device sends offline
(:func:`sync_protocol.leads.plan_conversion`): a customer (unless converting into an
existing one), a contact, optionally an opportunity, and the lead marked ``converted``
with links to all of them — applied through the sync engine as one group, so every
phone in scope pulls the result and nothing is half done. The new customer belongs to
the lead's owner. A new customer that looks like an existing one answers 409
``possible_duplicate`` (``details.matches``); send ``override: ["possible_duplicate"]``
to create it anyway, or ``existing_customer_id`` to convert into the match.

Creating leads for a rep (``owner_id`` on ``POST /v1/manager/records/leads``) and the
CSV import (``POST /v1/manager/import/leads``) are the generic record routes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from sync_protocol import ValidationFailed
from sync_protocol.errors import FieldError
from sync_protocol.leads import CONVERTED, plan_conversion
from sync_protocol.messages import ID_PATTERN

from ..deps import ContextDep, SessionDep
from ..repository import lock_counter
from .common import ManagerAuth, RecordOut, error_responses
from .records import apply_group, load_row, make_mutation, new_record_id, visible_row

router = APIRouter(prefix="/v1/manager/leads", tags=["manager: leads"])

LeadId = Annotated[str, Path(pattern=ID_PATTERN, description="The lead's id.")]


class ConvertLead(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer": {"status": "intent", "tier": "mid"},
                    "opportunity": {
                        "name": "扫地机器人 200 台",
                        "stage_id": "stage-lead",
                        "amount": 380000,
                    },
                }
            ]
        },
    )

    customer: dict[str, Any] = Field(
        default_factory=dict,
        description="Fields of the new customer overriding those copied from the lead.",
    )
    existing_customer_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="Convert into this existing customer instead of creating one.",
    )
    contact: bool = Field(default=True, description="Create a contact from the lead's person.")
    opportunity: dict[str, Any] | None = Field(
        default=None,
        description="Create an opportunity with these fields (at least `stage_id`).",
    )
    override: list[Literal["possible_duplicate"]] = Field(
        default_factory=list,
        description="`possible_duplicate`: create the customer even if it matches another.",
    )


class ConversionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lead": {
                        "id": "l-1",
                        "collection": "leads",
                        "version": 120,
                        "owner_id": "u-rep1",
                        "fields": {"name": "王五", "status": "converted"},
                    },
                    "customer_id": "r-9f1c",
                    "contact_id": "r-9f1d",
                    "opportunity_id": "r-9f1e",
                    "existing_customer": False,
                }
            ]
        }
    )

    lead: RecordOut
    customer_id: str
    contact_id: str | None
    opportunity_id: str | None
    existing_customer: bool


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@router.post(
    "/{lead_id}/convert",
    response_model=ConversionOut,
    responses=error_responses(404, 409),
)
def convert_lead(
    lead_id: LeadId,
    body: ConvertLead,
    auth: ManagerAuth,
    context: ContextDep,
    session: SessionDep,
) -> ConversionOut:
    """Convert a lead: customer + contact (+ opportunity) created, the lead linked back —
    all or nothing. 409 ``possible_duplicate`` when the customer looks like another."""
    conn = session.connection()
    lock_counter(conn)
    lead = visible_row(conn, auth.principal, "leads", lead_id)
    if lead.fields.get("status") == CONVERTED:
        raise ValidationFailed(
            "the lead is already converted",
            errors=[FieldError(field="status", code="already_converted", message="converted")],
        )
    existing = body.existing_customer_id is not None
    customer_id = body.existing_customer_id or new_record_id()
    if existing:
        visible_row(conn, auth.principal, "customers", customer_id)
    try:
        plan = plan_conversion(
            lead_id,
            lead.fields,
            customer_id=customer_id,
            converted_at=_now_iso(),
            contact_id=new_record_id() if body.contact else None,
            opportunity_id=new_record_id() if body.opportunity is not None else None,
            customer={**body.customer, "owner_id": lead.owner_id},
            opportunity=body.opportunity,
            existing_customer=existing,
        )
    except ValueError as exc:
        raise ValidationFailed(
            str(exc), errors=[FieldError(field="opportunity", code="invalid", message=str(exc))]
        ) from exc
    mutations = [
        make_mutation(
            context,
            w.collection,
            w.record_id,
            fields=w.fields,
            current=lead if w.collection == "leads" else None,
            override=body.override if w.collection == "customers" else (),
        )
        for w in plan.writes
    ]
    apply_group(conn, context, auth.principal, mutations)
    row = load_row(conn, "leads", lead_id)
    session.commit()
    assert row is not None
    return ConversionOut(
        lead=row.out(),
        customer_id=plan.customer_id,
        contact_id=plan.contact_id,
        opportunity_id=plan.opportunity_id,
        existing_customer=plan.existing_customer,
    )
