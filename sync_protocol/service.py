"""Service-desk rules both sides apply (pure: no I/O): ticket SLA and survey answers.

**SLA** — a ticket opened without a stated ``sla_due_at`` is due ``SLA_HOURS[priority]``
after ``opened_at`` (``normal`` when no priority is given). The server fills it in on
creation; a phone may show the same figure offline.

**Surveys** — a ``surveys`` record holds its questions as ``{"items": [question, …]}``,
each question ``{"key", "label", "label_zh"?, "type", "options"?, "required"?}`` with
``type`` ``score`` (an integer 1–5), ``choice`` (one of ``options``) or ``text``. A
``satisfaction_responses`` record naming the survey carries ``answers``: ``{key:
value}``, checked against the questions by :func:`answer_errors` (required answered,
no unknown keys, each value of its question's type).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from .errors import FieldError

SLA_HOURS: Mapping[str, int] = {"urgent": 4, "high": 8, "normal": 24, "low": 72}
QUESTION_TYPES = ("score", "choice", "text")
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_QUESTIONS = 50


def sla_due_at(opened_at: str, priority: str | None) -> str:
    """``opened_at`` (ISO 8601) plus the priority's SLA hours, in ISO 8601."""
    opened = datetime.fromisoformat(opened_at.replace("Z", "+00:00"))
    due = opened + timedelta(hours=SLA_HOURS.get(priority or "normal", SLA_HOURS["normal"]))
    return due.isoformat().replace("+00:00", "Z")


def _err(field: str, code: str, message: str) -> FieldError:
    return FieldError(field=field, code=code, message=message)


def question_errors(questions: Any) -> list[FieldError]:
    """What is wrong with a survey's ``questions`` (empty: nothing)."""
    items = questions.get("items") if isinstance(questions, dict) else None
    if not isinstance(items, list) or not items or len(items) > MAX_QUESTIONS:
        return [
            _err(
                "questions",
                "invalid",
                f'questions must be {{"items": [1–{MAX_QUESTIONS} questions]}}',
            )
        ]
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, q in enumerate(items):
        where = f"questions.items.{i}"
        if not isinstance(q, dict):
            errors.append(_err(where, "invalid", "a question must be an object"))
            continue
        key, kind = q.get("key"), q.get("type")
        if not isinstance(key, str) or not _KEY.match(key) or key in seen:
            errors.append(
                _err(f"{where}.key", "invalid", "each question needs its own key (a-z0-9_)")
            )
        else:
            seen.add(key)
        if not isinstance(q.get("label"), str) or not q["label"].strip():
            errors.append(_err(f"{where}.label", "required", "a question needs a label"))
        if kind not in QUESTION_TYPES:
            errors.append(
                _err(
                    f"{where}.type",
                    "invalid_choice",
                    f"type must be one of {', '.join(QUESTION_TYPES)}",
                )
            )
        options = q.get("options")
        if kind == "choice" and (
            not isinstance(options, list)
            or not options
            or not all(isinstance(o, str) and o for o in options)
        ):
            errors.append(_err(f"{where}.options", "required", "a choice question needs options"))
    return errors


def answer_errors(questions: Mapping[str, Any], answers: Any) -> list[FieldError]:
    """What is wrong with ``answers`` to a survey with these (valid) ``questions``."""
    if not isinstance(answers, dict):
        return [_err("answers", "type", "answers must be an object {question key: answer}")]
    items = {q["key"]: q for q in questions.get("items", [])}
    errors = [
        _err(f"answers.{k}", "unknown_question", f"the survey has no question {k!r}")
        for k in answers
        if k not in items
    ]
    for key, q in items.items():
        value = answers.get(key)
        field = f"answers.{key}"
        if value is None:
            if q.get("required"):
                errors.append(_err(field, "required", f"{q['label']} must be answered"))
            continue
        kind = q["type"]
        if kind == "score" and (
            isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5
        ):
            errors.append(_err(field, "invalid", "a score is a whole number from 1 to 5"))
        elif kind == "choice" and value not in q.get("options", []):
            errors.append(
                _err(field, "invalid_choice", f"must be one of {', '.join(q['options'])}")
            )
        elif kind == "text" and (not isinstance(value, str) or len(value) > 5000):
            errors.append(_err(field, "invalid", "a text answer is at most 5000 characters"))
    return errors


__all__ = ["QUESTION_TYPES", "SLA_HOURS", "answer_errors", "question_errors", "sla_due_at"]
