"""``FieldSpec.accepts``: the quick yes a push asks of every field of every record
(issue 19). It must never say yes where :meth:`FieldSpec.validate` finds a problem, and
it must say yes to ordinary valid values — else every record pays the slow path."""

from __future__ import annotations

from typing import Any

import pytest

from sync_protocol import CRM_SCHEMA, FieldSpec, FieldType

SAMPLES: list[Any] = [
    None,
    "",
    " ",
    "张三",
    "x" * 64,
    "x" * 65,
    "x" * 500,
    "x" * 501,
    "x" * 20_000,
    "x" * 20_001,
    "a@b.cn",
    "not an email",
    "+86 138-0000-0000",
    "12",
    "phone: 12345",
    "2026-12-01",
    "2026-02-30",
    "2026-1-01",
    "2026-12-01T08:00:00Z",
    "potential",
    "c-0001",
    "bad id with spaces",
    0,
    7,
    -3,
    2.5,
    float("nan"),
    True,
    False,
    [],
    ["a"],
    ["a", "a"],
    ["a", ""],
    ["x" * 65],
    ["t"] * 101,
    [f"t{i}" for i in range(100)],
    [1],
    {},
    {"lat": 31.2, "lon": 121.5},
    {"k": "v"},
]

SPECS = [
    FieldSpec(FieldType.STRING),
    FieldSpec(FieldType.STRING, required=True),
    FieldSpec(FieldType.STRING, max_length=64),
    FieldSpec(FieldType.TEXT),
    FieldSpec(FieldType.EMAIL),
    FieldSpec(FieldType.PHONE, required=True),
    FieldSpec(FieldType.ENUM, choices=("potential", "active")),
    FieldSpec(FieldType.ENUM, choices=("potential",), required=True),
    FieldSpec(FieldType.DATE),
    FieldSpec(FieldType.DATETIME),
    FieldSpec(FieldType.TAGS),
    FieldSpec(FieldType.REF, ref="customers"),
    FieldSpec(FieldType.REF, ref="customers", required=True),
    FieldSpec(FieldType.INTEGER, minimum=0, maximum=5),
    FieldSpec(FieldType.NUMBER),
    FieldSpec(FieldType.BOOLEAN),
    FieldSpec(FieldType.JSON),
    FieldSpec(FieldType.GEO),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.type.value}{'!' if s.required else ''}")
def test_accepts_never_says_yes_where_validate_finds_a_problem(spec: FieldSpec) -> None:
    for value in SAMPLES:
        if spec.accepts(value):
            assert spec.validate("f", value) is None, (spec.type, value)


def test_every_crm_field_spec_agrees_with_validate() -> None:
    for entity in CRM_SCHEMA.entities.values():
        for name, spec in entity.fields.items():
            for value in SAMPLES:
                if spec.accepts(value):
                    assert spec.validate(name, value) is None, (entity.name, name, value)


def test_ordinary_valid_values_take_the_quick_path() -> None:
    """A valid customer is validated without the slow per-type dispatch."""
    customer = CRM_SCHEMA["customers"]
    fields = {
        "name": "客户 Customer 000001",
        "company": "上海浦东物流有限公司",
        "phone": "+86 21 5000 1000",
        "mobile": "+86 138 1000 2000",
        "email": "customer1@example.com",
        "address": "上海市浦东新区张江路 1 号",
        "city": "上海",
        "source": "referral",
        "status": "potential",
        "tier": "mid",
        "tags": ["重点客户", "logistics"],
        "next_follow_up": "2026-12-01",
        "notes": "First contact at the Shanghai expo; wants a quote.",
        "owner_id": "u-rep0",
    }
    slow = [n for n, v in fields.items() if not customer.fields[n].accepts(v)]
    assert slow == []
    assert customer.validate(fields, partial=False) == []
