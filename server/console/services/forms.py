"""Entity forms: which fields a console form shows, how posted text becomes field
values, and how the API's validation errors come back to the fields.

Validation is the API's own: the values go to :func:`server.manager.records.write_record`
(the entity schema, scope, merge), and its ``validation_failed`` field errors are shown
beside the fields. Here only text is turned into the schema's types.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sync_protocol import CRM_SCHEMA, FieldType, ProtocolError

from ..i18n import Translator

#: Fields a manager edits in the console, per entity (others move by their own actions:
#: owner by reassignment, notes append from the phone, location from check-ins).
EDITABLE: dict[str, tuple[str, ...]] = {
    "customers": (
        "name",
        "kind",
        "gender",
        "company",
        "industry",
        "phone",
        "mobile",
        "email",
        "address",
        "city",
        "source",
        "status",
        "tier",
        "tags",
        "next_follow_up",
    ),
    "leads": ("name", "company", "title", "phone", "email", "industry", "city", "source", "status"),
}


@dataclass(frozen=True, slots=True)
class FormField:
    name: str
    type: str
    required: bool
    choices: tuple[str, ...]
    max_length: int | None


def form_fields(collection: str) -> list[FormField]:
    entity = CRM_SCHEMA[collection]
    return [
        FormField(
            name=name,
            type=entity.fields[name].type.value,
            required=entity.fields[name].required,
            choices=entity.fields[name].choices,
            max_length=entity.fields[name].max_length,
        )
        for name in EDITABLE[collection]
    ]


def display(value: Any) -> str:
    """A field value as the text a form input holds."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _convert(kind: FieldType, text: str) -> Any:
    text = text.strip()
    if text == "":
        return None
    if kind is FieldType.TAGS:
        parts = text.replace("，", ",").replace(";", ",").replace("；", ",").split(",")
        return [p.strip() for p in parts if p.strip()]
    if kind is FieldType.INTEGER:
        try:
            return int(text)
        except ValueError:
            return text  # the schema answers "must be an integer" for the field
    if kind is FieldType.NUMBER:
        try:
            return float(text) if "." in text or "e" in text.lower() else int(text)
        except ValueError:
            return text
    if kind is FieldType.BOOLEAN:
        return text.lower() in ("true", "1", "yes", "on", "是")
    return text


def posted_values(collection: str, form: Mapping[str, Any]) -> dict[str, Any]:
    """The form's editable fields converted to the schema's types (empty text → null)."""
    entity = CRM_SCHEMA[collection]
    values: dict[str, Any] = {}
    for name in EDITABLE[collection]:
        raw = form.get(name)
        if isinstance(raw, str):
            values[name] = _convert(entity.fields[name].type, raw)
    return values


def changed(current: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Only what differs: an edit is a patch, so a concurrent edit of another field on a
    phone merges instead of being overwritten."""
    return {k: v for k, v in values.items() if current.get(k) != v}


def field_errors(exc: ProtocolError, t: Translator) -> dict[str, str]:
    """``{field: message}`` from an API error's ``details.fields``, in the page's language."""
    errors: dict[str, str] = {}
    for item in exc.details.get("fields", []) if isinstance(exc.details, dict) else []:
        if isinstance(item, dict) and item.get("field"):
            message = t.error(str(item.get("code", "")), str(item.get("message", "")))
            errors.setdefault(str(item["field"]), message)
    return errors
