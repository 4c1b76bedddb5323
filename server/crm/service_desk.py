"""The service desk's rules on every write path (:mod:`sync_protocol.service`):

* a ticket created open without ``sla_due_at`` gets one from its ``opened_at`` and
  priority (derived in the same unit: the phone that created it pulls the figure);
* a ticket's ``knowledge_article_ids`` name live knowledge-base articles
  (``unknown_ref`` otherwise);
* a survey's ``questions`` are well formed;
* a satisfaction response naming a survey answers its questions (required ones
  answered, no unknown keys, each value of its question's type).

Failures are ``validation_failed`` with ``details.fields[]`` naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence

from sync_protocol import ErrorCode
from sync_protocol.errors import FieldError
from sync_protocol.service import answer_errors, question_errors, sla_due_at

from ..repository.units import Batch, Rejected, UnitWrite

OPEN = ("open", "in_progress")


def _reject(mutation_id: str, collection: str, errors: list[FieldError]) -> Rejected:
    return Rejected(
        ErrorCode.VALIDATION_FAILED,
        f"{collection}: {errors[0].message}",
        {"fields": [e.model_dump() for e in errors]},
        mutation_id=mutation_id,
    )


class ServiceDeskRule:
    def check_unit(self, batch: Batch, unit: Sequence[UnitWrite]) -> None:
        for w in unit:
            m = w.mutation
            if m.op != "upsert" or w.row.record.deleted:
                continue
            if m.collection == "tickets":
                self._ticket(batch, w)
            elif m.collection == "surveys" and "questions" in m.fields:
                errors = question_errors(w.row.record.fields.get("questions"))
                if errors:
                    raise _reject(m.id, "surveys", errors)
            elif m.collection == "satisfaction_responses":
                self._response(batch, w)

    @staticmethod
    def _ticket(batch: Batch, w: UnitWrite) -> None:
        m, fields = w.mutation, w.row.record.fields
        linked = m.fields.get("knowledge_article_ids")
        if isinstance(linked, list) and linked:
            batch.load("knowledge_articles", linked)
            missing = [
                a
                for a in linked
                if (row := batch.row("knowledge_articles", a)) is None or row.record.deleted
            ]
            if missing:
                raise _reject(
                    m.id,
                    "tickets",
                    [
                        FieldError(
                            field="knowledge_article_ids",
                            code="unknown_ref",
                            message=f"no knowledge article {missing[0]!r}",
                        )
                    ],
                )
        new = w.before is None or w.before.record.deleted
        opened = fields.get("opened_at")
        if new and fields.get("status") in OPEN and not fields.get("sla_due_at") and opened:
            batch.derive(
                "tickets",
                w.row.record_id,
                {"sla_due_at": sla_due_at(opened, fields.get("priority"))},
            )

    @staticmethod
    def _response(batch: Batch, w: UnitWrite) -> None:
        m, fields = w.mutation, w.row.record.fields
        survey_id = fields.get("survey_id")
        if not survey_id or not ({"survey_id", "answers"} & set(m.fields)):
            return
        survey = batch.row("surveys", str(survey_id))
        if survey is None or survey.record.deleted:
            return  # the references rule answers unknown_ref
        questions = survey.record.fields.get("questions") or {}
        errors = answer_errors(questions, fields.get("answers") or {})
        if errors:
            raise _reject(m.id, "satisfaction_responses", errors)


__all__ = ["ServiceDeskRule"]
