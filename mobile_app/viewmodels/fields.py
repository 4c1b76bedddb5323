"""Form text ⇄ typed field values, and validation messages people can read.

Forms hold what was typed (strings); the store holds typed values (numbers, dates as ISO
text, tag lists, geo points). Conversion is driven by the schema's ``FieldSpec``, so the
customer form, the conflict inbox ("type a new value") and the rejected-write editor all
read and write every field the same way. Validation messages come from the schema's
``FieldError`` codes, worded in the current language with the field's schema label.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from mobile_app.i18n import Translator
from sync_protocol import CRM_SCHEMA, FieldError, FieldSpec, FieldType

from .base import parse_when


class NotConvertible(ValueError):
    """Typed text that cannot become a value of the field's type (carries a FieldError code)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


#: i18n choice groups whose name differs from the field's (``status`` is per entity).
CHOICE_GROUPS = {
    ("tickets", "status"): "ticket_status",
    ("contracts", "status"): "contract_status",
    ("opportunities", "status"): "opp_status",
    ("tasks", "status"): "task_status",
    ("activities", "type"): "activity",
    ("leads", "status"): "lead_status",
    ("quotes", "status"): "quote_status",
    ("quotes", "kind"): "quote_kind",
}


def choice_group(collection: str, field: str) -> str:
    """The i18n group of an enum field's labels (``choice_group("tasks", "status")``)."""
    return CHOICE_GROUPS.get((collection, field), field)


def spec_for(collection: str, field: str) -> FieldSpec | None:
    entity = CRM_SCHEMA.get(collection)
    return entity.fields.get(field) if entity else None


def to_value(spec: FieldSpec | None, text: str) -> Any:
    """The typed value for ``text`` typed into a field; blank text is ``None``.

    Raises :class:`NotConvertible` when the text cannot be read as the field's type;
    range and format checks are left to the schema's own ``validate``.
    """
    raw = text.strip()
    if raw == "":
        return None
    if spec is None:
        return raw
    t = spec.type
    if t is FieldType.INTEGER:
        try:
            return int(raw)
        except ValueError:
            raise NotConvertible("not_a_number") from None
    if t is FieldType.NUMBER:
        try:
            number = float(raw.replace(",", ""))
        except ValueError:
            raise NotConvertible("not_a_number") from None
        if not math.isfinite(number):
            raise NotConvertible("not_a_number")
        return int(number) if number.is_integer() and "." not in raw else number
    if t is FieldType.BOOLEAN:
        return raw.lower() in ("1", "true", "yes", "y", "是", "对")
    if t is FieldType.TAGS:
        parts = raw.replace("，", ",").split(",")
        return [p.strip() for p in parts if p.strip()]
    if t is FieldType.DATETIME:
        try:
            when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise NotConvertible("invalid_datetime") from None
        if when.tzinfo is None:
            when = when.astimezone()  # typed in the phone's local time
        return when.isoformat(timespec="seconds")
    if t is FieldType.GEO:
        return parse_geo(raw)
    if t is FieldType.JSON:
        try:
            value = json.loads(raw)
        except ValueError:
            raise NotConvertible("type") from None
        return value
    return raw


def parse_geo(text: str) -> dict[str, float]:
    """``"31.23, 121.47"`` → ``{"lat": 31.23, "lon": 121.47}``."""
    parts = [p for p in text.replace("，", ",").replace(" ", ",").split(",") if p]
    if len(parts) != 2:
        raise NotConvertible("invalid_geo")
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        raise NotConvertible("invalid_geo") from None
    return {"lat": lat, "lon": lon}


def to_text(spec: FieldSpec | None, value: Any) -> str:
    """How a stored value appears in a text field or a label."""
    if value is None:
        return ""
    t = spec.type if spec else None
    if t is FieldType.TAGS and isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if t is FieldType.DATETIME:
        when = parse_when(value)
        return when.astimezone().strftime("%Y-%m-%d %H:%M") if when else str(value)
    if t is FieldType.GEO and isinstance(value, Mapping):
        return f"{value.get('lat')}, {value.get('lon')}"
    if t is FieldType.BOOLEAN:
        return "✓" if value else "×"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def message_for(tr: Translator, collection: str, error: FieldError | Mapping[str, Any]) -> str:
    """A validation message in the current language, e.g. 请填写姓名 / Name is required."""
    if isinstance(error, FieldError):
        field, code, message = error.field, error.code, error.message
    else:
        field = str(error.get("field", ""))
        code = str(error.get("code", ""))
        message = str(error.get("message", ""))
    label = tr.field_label(collection, field)
    key = f"err.{code}"
    text = tr(key, label=label)
    if text == key:
        return tr("err.other", label=label, message=message)
    return text


def messages_by_field(
    tr: Translator, collection: str, errors: Iterable[FieldError | Mapping[str, Any]]
) -> dict[str, str]:
    """The first message per field (a form shows one line under each field)."""
    out: dict[str, str] = {}
    for error in errors:
        field = error.field if isinstance(error, FieldError) else str(error.get("field", ""))
        out.setdefault(field, message_for(tr, collection, error))
    return out


def convert_form(
    collection: str, texts: Mapping[str, str]
) -> tuple[dict[str, Any], list[FieldError]]:
    """Typed values for every typed field, plus conversion errors as FieldErrors."""
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    for name, text in texts.items():
        try:
            values[name] = to_value(spec_for(collection, name), text)
        except NotConvertible as exc:
            errors.append(FieldError(field=name, code=exc.code, message=exc.code))
    return values, errors
