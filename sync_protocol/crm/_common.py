"""Shared pieces of the CRM schema modules: field shorthand and common choices."""

from __future__ import annotations

from ..schema import FieldSpec, FieldType, MergePolicy

T = FieldType
M = MergePolicy

MANAGERS = frozenset({"manager", "admin"})

CUSTOMER_STATUSES = ("potential", "intent", "closed")
TIERS = ("high", "mid", "low")
SOURCES = ("referral", "web", "event", "cold_call", "advertisement", "partner", "campaign", "other")


def f(t: FieldType, label: str = "", zh: str = "", **kw: object) -> FieldSpec:
    return FieldSpec(type=t, label=label, label_zh=zh, **kw)  # type: ignore[arg-type]


def notes() -> FieldSpec:
    return f(T.TEXT, "Notes", "备注", merge=M.APPEND)


def custom() -> FieldSpec:
    """Typed custom fields (v2; declared in ``custom_field_defs``, see
    :mod:`sync_protocol.custom_fields`)."""
    return f(T.JSON, "Custom fields", "自定义字段", added_in=2)


def customer_ref() -> FieldSpec:
    return f(T.REF, "Customer", "客户", required=True, ref="customers", read_only=False)


__all__ = [
    "CUSTOMER_STATUSES",
    "MANAGERS",
    "SOURCES",
    "TIERS",
    "M",
    "T",
    "custom",
    "customer_ref",
    "f",
    "notes",
]
