"""The pipeline: open deals by stage, moving a deal, editing its numbers.

Moving a stage writes two things: the opportunity's ``stage_id`` (last-writer-wins) and
an append-only ``stage_changes`` event (from, to, when, who), so the funnel history the
manager reports on is complete even when two reps move the same deal offline. Entering
a won or lost stage also sets the deal's ``status`` (and ``closed_at``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sync_protocol import CRM_SCHEMA, FieldError, ValidationFailed

from .base import Observable, Session
from .customers import money
from .fields import NotConvertible, messages_by_field, spec_for, to_text, to_value
from .ports import RecordPort


@dataclass(frozen=True, slots=True)
class Stage:
    id: str
    name: str
    position: int
    probability: float | None
    is_won: bool
    is_lost: bool


@dataclass(frozen=True, slots=True)
class DealCard:
    id: str
    name: str
    customer: str
    amount: str
    probability: str
    close_date: str
    pending: bool


@dataclass(frozen=True, slots=True)
class StageColumn:
    stage: Stage
    deals: list[DealCard]
    total_text: str


class PipelineViewModel(Observable):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.stages: list[Stage] = []
        self.columns: list[StageColumn] = []
        self.message = ""
        self.errors: dict[str, str] = {}
        self.selected_id: str | None = None
        self.edit_values: dict[str, str] = {}

    def load_stages(self) -> list[Stage]:
        zh = self.session.tr.language == "zh"
        stages = []
        for r in self.session.store.collection("pipeline_stages").query():
            f = r.fields
            name = str(f.get("name") or r.id)
            stages.append(
                Stage(
                    id=r.id,
                    name=str(f.get("name_zh") or name) if zh else name,
                    position=int(f.get("position") or 0),
                    probability=f.get("probability"),
                    is_won=bool(f.get("is_won")),
                    is_lost=bool(f.get("is_lost")),
                )
            )
        stages.sort(key=lambda s: (s.position, s.name))
        return stages

    def refresh(self) -> None:
        store = self.session.store
        self.stages = self.load_stages()
        customers = {
            r.id: str(r.fields.get("name") or "") for r in store.collection("customers").query()
        }
        by_stage: dict[str, list[RecordPort]] = {s.id: [] for s in self.stages}
        for opp in store.collection("opportunities").query(order_by="expected_close_date"):
            stage_id = str(opp.fields.get("stage_id") or "")
            if stage_id in by_stage:
                by_stage[stage_id].append(opp)
        self.columns = []
        for stage in self.stages:
            deals = by_stage[stage.id]
            total = sum(
                float(d.fields.get("amount") or 0)
                for d in deals
                if isinstance(d.fields.get("amount"), int | float)
            )
            self.columns.append(
                StageColumn(
                    stage=stage,
                    deals=[self._card(d, customers) for d in deals],
                    total_text=self.session.tr("pipeline.total", n=len(deals), amount=money(total)),
                )
            )
        self.notify()

    def _card(self, opp: RecordPort, customers: dict[str, str]) -> DealCard:
        f = opp.fields
        prob = f.get("probability")
        return DealCard(
            id=opp.id,
            name=str(f.get("name") or ""),
            customer=customers.get(str(f.get("customer_id")), ""),
            amount=money(f.get("amount"), f.get("currency")),
            probability=f"{round(float(prob) * 100)}%" if isinstance(prob, int | float) else "",
            close_date=str(f.get("expected_close_date") or ""),
            pending=opp.pending,
        )

    def stage_of(self, opportunity_id: str) -> str | None:
        opp = self.session.store.collection("opportunities").get(opportunity_id)
        return str(opp.fields.get("stage_id")) if opp else None

    def closes(self, stage_id: str) -> bool:
        """Moving here closes the deal (won or lost): the screen asks first."""
        stage = next((s for s in self.stages or self.load_stages() if s.id == stage_id), None)
        return bool(stage and (stage.is_won or stage.is_lost))

    def move(
        self, opportunity_id: str, stage_id: str, *, lost_reason: str = "", undo: bool = True
    ) -> bool:
        """Move a deal to ``stage_id``: update the deal and append a stage change.

        Entering a lost stage needs a reason (``errors["lost_reason"]``). The move is
        offered for Undo, which moves the deal back (with its own stage-change event).
        """
        store = self.session.store
        tr = self.session.tr
        opp = store.collection("opportunities").get(opportunity_id)
        stage = next((s for s in self.stages or self.load_stages() if s.id == stage_id), None)
        if opp is None or stage is None:
            return False
        from_stage = opp.fields.get("stage_id")
        if from_stage == stage_id:
            return False
        reason = lost_reason.strip()
        if stage.is_lost and not reason and not opp.fields.get("lost_reason"):
            self.errors = {"lost_reason": tr("pipeline.err.reason")}
            self.notify()
            return False
        self.errors = {}
        before = {
            k: opp.fields.get(k) for k in ("status", "probability", "closed_at", "lost_reason")
        }
        now = self.session.now_iso()
        patch: dict[str, Any] = {"stage_id": stage_id}
        if stage.probability is not None:
            patch["probability"] = stage.probability
        if stage.is_won or stage.is_lost:
            patch["status"] = "won" if stage.is_won else "lost"
            patch["closed_at"] = now
            if reason:
                patch["lost_reason"] = reason
        elif opp.fields.get("status") != "open":
            patch["status"] = "open"
            patch["closed_at"] = None
        store.collection("opportunities").update(opportunity_id, patch)
        change: dict[str, Any] = {
            "customer_id": opp.fields.get("customer_id"),
            "opportunity_id": opportunity_id,
            "to_stage_id": stage_id,
            "changed_at": now,
            "changed_by": self.session.user.id,
        }
        if from_stage:
            change["from_stage_id"] = from_stage
        store.collection("stage_changes").insert(change)
        self.message = tr("pipeline.moved", stage=stage.name)
        if undo and from_stage:
            back = str(from_stage)

            def move_back() -> None:
                self.move(opportunity_id, back, undo=False)
                store.collection("opportunities").update(opportunity_id, before)

            self.session.undo.offer(tr("undo.moved", stage=stage.name), move_back)
        self.refresh()
        return True

    # -- editing a deal's numbers --------------------------------------------------
    def select(self, opportunity_id: str) -> None:
        opp = self.session.store.collection("opportunities").get(opportunity_id)
        if opp is None:
            return
        prob = opp.fields.get("probability")
        self.selected_id = opportunity_id
        self.errors = {}
        self.edit_values = {
            "amount": to_text(spec_for("opportunities", "amount"), opp.fields.get("amount")),
            "probability": (f"{float(prob) * 100:g}" if isinstance(prob, int | float) else ""),
            "expected_close_date": str(opp.fields.get("expected_close_date") or ""),
        }
        self.notify()

    def save_edit(self) -> bool:
        """Write amount, probability (typed as a percentage) and expected close date."""
        if self.selected_id is None:
            return False
        tr = self.session.tr
        self.errors = {}
        patch: dict[str, Any] = {}
        for name in ("amount", "expected_close_date"):
            try:
                patch[name] = to_value(spec_for("opportunities", name), self.edit_values[name])
            except NotConvertible:
                self.errors[name] = tr(
                    "err.not_a_number", label=tr.field_label("opportunities", name)
                )
        text = self.edit_values.get("probability", "").strip().rstrip("%")
        if text:
            try:
                percent = float(text)
            except ValueError:
                self.errors["probability"] = tr("pipeline.err.number")
            else:
                if 0 <= percent <= 100:
                    patch["probability"] = round(percent / 100, 4)
                else:
                    self.errors["probability"] = tr("pipeline.err.percent")
        else:
            patch["probability"] = None
        problems: list[FieldError] = CRM_SCHEMA["opportunities"].validate(
            {k: v for k, v in patch.items() if k not in self.errors}, partial=True
        )
        for field, message in messages_by_field(tr, "opportunities", problems).items():
            self.errors.setdefault(field, message)
        if self.errors:
            self.notify()
            return False
        opp = self.session.store.collection("opportunities").get(self.selected_id)
        if opp is None:
            return False
        changed = {k: v for k, v in patch.items() if opp.fields.get(k) != v}
        try:
            if changed:
                self.session.store.collection("opportunities").update(self.selected_id, changed)
        except ValidationFailed as exc:
            self.errors = messages_by_field(tr, "opportunities", exc.errors)
            self.notify()
            return False
        self.message = tr("customers.saved")
        self.refresh()
        return True
