"""Create and edit a deal (opportunity); closing one as lost needs a reason.

A new deal starts at the first open stage with that stage's probability; its customer
comes from the customer picker. Closing as lost (the Lost stage, from the pipeline or
this form) asks why — "price", "went with a competitor" — because a lost deal with no
reason teaches the team nothing; the reason is ``lost_reason`` on the deal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sync_protocol import FieldError

from .base import Session
from .forms import RecordForm


def stage_records(session: Session) -> list[Any]:
    return list(session.store.collection("pipeline_stages").query(order_by="position"))


def stage_label(session: Session, record: Any) -> str:
    f = record.fields
    name = str(f.get("name") or record.id)
    return str(f.get("name_zh") or name) if session.tr.language == "zh" else name


class DealFormViewModel(RecordForm):
    collection = "opportunities"
    FIELDS = (
        "name",
        "customer_id",
        "stage_id",
        "amount",
        "expected_close_date",
        "lost_reason",
        "notes",
    )
    CHOICE_FIELDS = ("stage_id",)

    def __init__(
        self, session: Session, opportunity_id: str | None = None, **defaults: str
    ) -> None:
        stages = stage_records(session)
        first = next((s.id for s in stages if not _closed(s)), "")
        super().__init__(session, opportunity_id, **({"stage_id": first} | defaults))
        self._stages = {s.id: s for s in stages}

    def kind(self, name: str) -> str:
        if name == "customer_id":
            return "customer"
        return super().kind(name)

    def choices(self, name: str) -> list[tuple[str, str]]:
        if name == "stage_id":
            return [(s.id, stage_label(self.session, s)) for s in self._stages.values()]
        return super().choices(name)

    @property
    def needs_reason(self) -> bool:
        stage = self._stages.get(self.values.get("stage_id", ""))
        return bool(stage and stage.fields.get("is_lost"))

    def _stage_fields(self, stage_id: Any) -> dict[str, Any]:
        stage = self._stages.get(str(stage_id))
        if stage is None:
            return {}
        f = stage.fields
        out: dict[str, Any] = {}
        if f.get("probability") is not None:
            out["probability"] = f["probability"]
        if f.get("is_won") or f.get("is_lost"):
            out["status"] = "won" if f.get("is_won") else "lost"
            out["closed_at"] = self.session.now_iso()
        else:
            out["status"] = "open"
        return out

    def extra(self) -> dict[str, Any]:
        return {"currency": "CNY", **self._stage_fields(self.values.get("stage_id"))}

    def patch(self) -> tuple[dict[str, Any], list[FieldError]]:
        patch, errors = super().patch()
        if not self.is_new and "stage_id" in patch:
            patch |= {
                k: v for k, v in self._stage_fields(patch["stage_id"]).items() if k not in patch
            }
        return patch, errors

    def check(self, patch: Mapping[str, Any]) -> list[FieldError]:
        if self.needs_reason and not self.values.get("lost_reason", "").strip():
            return [FieldError(field="lost_reason", code="required", message="required")]
        return []

    def write(self, patch: dict[str, Any]) -> Any:
        before = self.current()
        record = super().write(patch)
        if "stage_id" in patch:
            change: dict[str, Any] = {
                "customer_id": record.fields.get("customer_id"),
                "opportunity_id": record.id,
                "to_stage_id": patch["stage_id"],
                "changed_at": self.session.now_iso(),
                "changed_by": self.session.user.id,
            }
            if before is not None and before.fields.get("stage_id"):
                change["from_stage_id"] = before.fields["stage_id"]
            self.session.store.collection("stage_changes").insert(change)
        return record


def _closed(stage: Any) -> bool:
    return bool(stage.fields.get("is_won") or stage.fields.get("is_lost"))
