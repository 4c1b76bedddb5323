"""``FieldSpec.accepts``: the quick yes a push asks of every field of every record
(issue 19). It must never say yes where :meth:`FieldSpec.validate` finds a problem, and
it must say yes to ordinary valid values — else every record pays the slow path."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


@settings(max_examples=400, deadline=None)
@given(
    entity_name=st.sampled_from(sorted(CRM_SCHEMA.entities)),
    picks=st.lists(
        st.tuples(st.integers(0, 40), st.sampled_from(range(len(SAMPLES)))), max_size=12
    ),
    partial=st.booleans(),
    stranger=st.booleans(),
)
def test_validate_through_its_plans_answers_as_field_by_field(
    entity_name: str, picks: list[tuple[int, int]], partial: bool, stranger: bool
) -> None:
    """:meth:`EntitySchema.validate` finds "no errors" through a cached plan per order
    of names; whatever the names, their order, the values, a missing required field or
    an unknown name, it answers exactly as :meth:`EntitySchema.errors` — the same errors
    in the same order — the first time an order is seen and every time after."""
    entity = CRM_SCHEMA[entity_name]
    names = list(entity.fields)
    values: dict[str, Any] = {}
    for index, sample in picks:
        name = names[index % len(names)] if index < 40 else "no_such_field"
        values[name] = SAMPLES[sample]
    if stranger:
        values["unknown_" + entity_name] = "x"
    for _ in range(2):
        assert entity.validate(values, partial=partial) == entity.errors(values, partial=partial)


def test_a_valid_record_is_still_refused_when_a_required_field_is_missing() -> None:
    """The plan remembers which orders of names hold every required field: a valid
    customer without ``status`` is refused once complete ones were planned, and the other
    way round."""
    customer = CRM_SCHEMA["customers"]
    full = {"name": "张三", "status": "potential", "city": "上海"}
    short = {"name": "张三", "city": "上海"}
    for _ in range(2):
        assert customer.validate(full, partial=False) == []
        assert [e.code for e in customer.validate(short, partial=False)] == ["required"]
        assert customer.validate(short, partial=True) == []
