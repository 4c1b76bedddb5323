"""Typed custom fields: declared per entity by managers, validated on device and server.

A CRM's customers, leads, contacts, opportunities and tickets carry a ``custom`` object
(a ``json`` field). Managers declare its keys as records of the reference collection
``custom_field_defs`` — entity, key, type, English and Chinese label, options, required,
active — which reach every device like products do. Both sides validate with the same
functions:

* :func:`definition_errors` — a declaration itself (key shape, options for choices);
* :func:`custom_errors` — a record's ``custom`` value against the declarations of its
  entity: every key must be declared, every value must have its declared type, and on
  create every *active* required key must be present. An entity without any
  declaration keeps a free-form ``custom`` object (older data keeps working), and a
  deactivated declaration still accepts its key (old values stay valid) but is no
  longer required.

Errors are :class:`~sync_protocol.errors.FieldError` with ``field = "custom.<key>"``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from .errors import FieldError

#: The collection the declarations are records of.
DEFINITIONS_COLLECTION = "custom_field_defs"
#: Entities whose ``custom`` field is typed by declarations.
CUSTOM_ENTITIES = ("customers", "leads", "contacts", "opportunities", "tickets")
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class CustomType(StrEnum):
    STRING = "string"  # one line, ≤ 500 characters
    TEXT = "text"  # ≤ 5,000 characters
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"  # YYYY-MM-DD
    CHOICE = "choice"  # one of ``options``
    CHOICES = "choices"  # a list of distinct ``options``


@dataclass(frozen=True, slots=True)
class CustomFieldDef:
    """One declared key of an entity's ``custom`` object."""

    entity: str
    key: str
    type: CustomType
    label: str = ""
    label_zh: str = ""
    options: tuple[str, ...] = ()
    required: bool = False
    active: bool = True
    position: int = 0

    @classmethod
    def from_record(cls, fields: Mapping[str, Any]) -> CustomFieldDef | None:
        """The declaration a ``custom_field_defs`` record holds (``None`` if malformed)."""
        if definition_errors(fields):
            return None
        return cls(
            entity=str(fields["entity"]),
            key=str(fields["key"]),
            type=CustomType(fields["type"]),
            label=str(fields.get("label") or ""),
            label_zh=str(fields.get("label_zh") or ""),
            options=tuple(fields.get("options") or ()),
            required=bool(fields.get("required")),
            active=fields.get("active") is not False,
            position=int(fields.get("position") or 0),
        )

    def value_error(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable for this key (``None``: it is)."""
        if value is None:
            return None
        return _CHECKS[self.type](self, value)


def _text(limit: int) -> Callable[[CustomFieldDef, Any], str | None]:
    def check(d: CustomFieldDef, v: Any) -> str | None:
        if not isinstance(v, str):
            return "must be text"
        return f"is longer than {limit} characters" if len(v) > limit else None

    return check


def _integer(_d: CustomFieldDef, v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) else "must be a whole number"


def _number(_d: CustomFieldDef, v: Any) -> str | None:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    return None if ok else "must be a number"


def _boolean(_d: CustomFieldDef, v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _date(_d: CustomFieldDef, v: Any) -> str | None:
    if isinstance(v, str) and _ISO_DATE.match(v):
        try:
            date.fromisoformat(v)
            return None
        except ValueError:
            pass
    return "must be a date (YYYY-MM-DD)"


def _choice(d: CustomFieldDef, v: Any) -> str | None:
    return None if v in d.options else f"must be one of {', '.join(d.options)}"


def _choices(d: CustomFieldDef, v: Any) -> str | None:
    if not isinstance(v, list) or len(set(map(str, v))) != len(v):
        return "must be a list of distinct options"
    wrong = [x for x in v if x not in d.options]
    return f"has unknown options {wrong}" if wrong else None


_CHECKS: dict[CustomType, Callable[[CustomFieldDef, Any], str | None]] = {
    CustomType.STRING: _text(500),
    CustomType.TEXT: _text(5_000),
    CustomType.INTEGER: _integer,
    CustomType.NUMBER: _number,
    CustomType.BOOLEAN: _boolean,
    CustomType.DATE: _date,
    CustomType.CHOICE: _choice,
    CustomType.CHOICES: _choices,
}


def definition_errors(fields: Mapping[str, Any]) -> list[FieldError]:
    """Problems of a ``custom_field_defs`` record beyond its entity schema."""
    errors: list[FieldError] = []
    key = fields.get("key")
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        errors.append(
            _err("key", "invalid_key", "key must be a-z, 0-9 and _ (≤ 40, a letter first)")
        )
    if fields.get("entity") not in CUSTOM_ENTITIES:
        errors.append(_err("entity", "invalid_choice", f"entity must be one of {CUSTOM_ENTITIES}"))
    kind = fields.get("type")
    if kind not in {t.value for t in CustomType}:
        errors.append(_err("type", "invalid_choice", "type is not a custom field type"))
    options = fields.get("options") or []
    if kind in (CustomType.CHOICE, CustomType.CHOICES) and not options:
        errors.append(_err("options", "required", "a choice field needs options"))
    return errors


def definitions_for(entity: str, records: Iterable[Mapping[str, Any]]) -> dict[str, CustomFieldDef]:
    """The declarations of ``entity`` among ``custom_field_defs`` records' fields."""
    out: dict[str, CustomFieldDef] = {}
    for fields in records:
        d = CustomFieldDef.from_record(fields)
        if d is not None and d.entity == entity:
            out[d.key] = d
    return out


def custom_errors(
    definitions: Mapping[str, CustomFieldDef], custom: Any, *, creating: bool
) -> list[FieldError]:
    """Errors of a record's ``custom`` value (see the module docstring)."""
    if not definitions:
        return []
    values: Mapping[str, Any] = custom if isinstance(custom, Mapping) else {}
    errors: list[FieldError] = []
    for key, value in values.items():
        d = definitions.get(key)
        if d is None:
            errors.append(
                _err(f"custom.{key}", "unknown_field", f"custom field {key} is not declared")
            )
            continue
        problem = d.value_error(value)
        if problem:
            errors.append(_err(f"custom.{key}", "type", f"{d.label or key} {problem}"))
    if creating:
        for key, d in definitions.items():
            if d.active and d.required and values.get(key) in (None, "", []):
                errors.append(_err(f"custom.{key}", "required", f"{d.label or key} is required"))
    return errors


def _err(field: str, code: str, message: str) -> FieldError:
    return FieldError(field=field, code=code, message=message)


__all__ = [
    "CUSTOM_ENTITIES",
    "DEFINITIONS_COLLECTION",
    "CustomFieldDef",
    "CustomType",
    "custom_errors",
    "definition_errors",
    "definitions_for",
]
