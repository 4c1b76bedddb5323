"""Field validation for every FieldType, entity validation and the CRM schema's coverage."""

from __future__ import annotations

from typing import Any

import pytest

from sync_protocol import (
    CRM_SCHEMA,
    DeletePolicy,
    EntitySchema,
    FieldSpec,
    FieldType,
    MergePolicy,
    Scope,
)

GOOD_AND_BAD: dict[FieldType, tuple[FieldSpec, list[Any], list[tuple[Any, str]]]] = {
    FieldType.STRING: (
        FieldSpec(FieldType.STRING, max_length=5),
        ["abc", "张三", ""],
        [(5, "type"), ("toolong", "too_long")],
    ),
    FieldType.TEXT: (
        FieldSpec(FieldType.TEXT),
        ["line\nline", "x" * 20_000],
        [("x" * 20_001, "too_long"), (["a"], "type")],
    ),
    FieldType.INTEGER: (
        FieldSpec(FieldType.INTEGER, minimum=1, maximum=5),
        [1, 5],
        [(0, "too_small"), (6, "too_large"), (2.5, "type"), (True, "type"), ("3", "type")],
    ),
    FieldType.NUMBER: (
        FieldSpec(FieldType.NUMBER, minimum=0),
        [0, 1.5, 10**6],
        [(-0.1, "too_small"), (float("nan"), "type"), (float("inf"), "type"), (False, "type")],
    ),
    FieldType.BOOLEAN: (
        FieldSpec(FieldType.BOOLEAN),
        [True, False],
        [(1, "type"), ("true", "type")],
    ),
    FieldType.DATE: (
        FieldSpec(FieldType.DATE),
        ["2024-02-29"],
        [
            ("2023-02-29", "invalid_date"),
            ("20240229", "invalid_date"),
            ("2024-W09-4", "invalid_date"),
            ("2024-02-29T10:00:00", "invalid_date"),
            (20240229, "invalid_date"),
        ],
    ),
    FieldType.DATETIME: (
        FieldSpec(FieldType.DATETIME),
        ["2024-11-23T10:00:00+08:00", "2024-11-23T02:00:00Z", "2024-11-23T02:00:00.123Z"],
        [
            ("2024-11-23", "invalid_datetime"),
            ("yesterday", "invalid_datetime"),
            (0, "invalid_datetime"),
        ],
    ),
    FieldType.ENUM: (
        FieldSpec(FieldType.ENUM, choices=("potential", "intent", "closed")),
        ["intent"],
        [("lost", "invalid_choice"), (1, "invalid_choice"), (["intent"], "invalid_choice")],
    ),
    FieldType.TAGS: (
        FieldSpec(FieldType.TAGS),
        [[], ["vip", "北京"]],
        [
            ("vip", "type"),
            ([""], "type"),
            (["x" * 65], "type"),
            ([1], "type"),
            (["a", "a"], "duplicate"),
            ([f"t{i}" for i in range(101)], "too_long"),
        ],
    ),
    FieldType.JSON: (
        FieldSpec(FieldType.JSON),
        [{}, {"birthday": "1990-01-01", "nested": {"a": [1, 2.5, None, True]}}],
        [([1], "type"), ("{}", "type"), ({"x": float("nan")}, "type"), ({"x": {1, 2}}, "type")],
    ),
    FieldType.REF: (
        FieldSpec(FieldType.REF, ref="customers"),
        ["018f2b6e-8c1d-7a00-9b1e-3c5d2e1f0a02", "c_1"],
        [("has space", "invalid_ref"), ("x" * 65, "invalid_ref"), (12, "invalid_ref")],
    ),
    FieldType.EMAIL: (
        FieldSpec(FieldType.EMAIL),
        ["zhang.san@example.cn", ""],
        [("zhang.san", "invalid_email"), ("a@b", "invalid_email")],
    ),
    FieldType.PHONE: (
        FieldSpec(FieldType.PHONE),
        ["+86 138 0000 0000", "(010) 6552-1234"],
        [("call me", "invalid_phone"), ("12", "invalid_phone")],
    ),
    FieldType.GEO: (
        FieldSpec(FieldType.GEO),
        [
            {"lat": 39.9, "lon": 116.4},
            {"lat": 31.2, "lon": 121.5, "accuracy_m": 8.5, "at": "2024-11-23T10:00:00+08:00"},
        ],
        [
            ([39.9, 116.4], "invalid_geo"),
            ({"lat": 91, "lon": 0}, "invalid_geo"),
            ({"lat": 0, "lon": 181}, "invalid_geo"),
            ({"lat": True, "lon": 0}, "invalid_geo"),
            ({"lat": 0, "lon": False}, "invalid_geo"),
            ({"lat": 0, "lon": 0, "accuracy_m": -1}, "invalid_geo"),
            ({"lat": 0, "lon": 0, "accuracy_m": float("nan")}, "invalid_geo"),
            ({"lat": 0, "lon": 0, "at": "noon"}, "invalid_geo"),
        ],
    ),
}


def test_every_field_type_has_a_table() -> None:
    assert set(GOOD_AND_BAD) == set(FieldType)


@pytest.mark.parametrize("field_type", list(FieldType))
def test_field_type_validation(field_type: FieldType) -> None:
    spec, good, bad = GOOD_AND_BAD[field_type]
    for value in good:
        assert spec.validate("f", value) is None, value
    assert spec.validate("f", None) is None  # optional fields accept null
    for value, code in bad:
        error = spec.validate("f", value)
        assert error is not None and error.code == code and error.field == "f", value


def test_required_fields() -> None:
    spec = FieldSpec(FieldType.STRING, required=True)
    assert spec.validate("name", None).code == "required"  # type: ignore[union-attr]
    assert spec.validate("name", "   ").code == "required"  # type: ignore[union-attr]
    entity = EntitySchema(name="e", fields={"name": spec, "note": FieldSpec(FieldType.TEXT)})
    assert [e.code for e in entity.validate({}, partial=False)] == ["required"]
    assert entity.validate({}, partial=True) == []  # a patch needs only what it changes
    errors = entity.validate({"nope": 1, "note": 5}, partial=True)
    assert sorted(e.code for e in errors) == ["type", "unknown_field"]


# --- the CRM schema -------------------------------------------------------------------

REQUIRED_ENTITIES = {
    "customers",
    "contacts",
    "leads",
    "pipeline_stages",
    "opportunities",
    "stage_changes",
    "activities",
    "tasks",
    "contracts",
    "products",
    "quotes",
    "quote_lines",
    "campaigns",
    "campaign_members",
    "tickets",
    "ticket_comments",
    "knowledge_articles",
    "satisfaction_responses",
    "sales_targets",
}


def test_crm_schema_covers_every_entity_of_the_requirements() -> None:
    assert set(CRM_SCHEMA.entities) >= REQUIRED_ENTITIES
    customers = CRM_SCHEMA["customers"].fields
    assert customers["status"].choices == ("potential", "intent", "closed")
    assert customers["tier"].choices == ("high", "mid", "low")
    assert customers["source"].type is FieldType.ENUM
    assert customers["tags"].merge is MergePolicy.UNION
    assert customers["custom"].type is FieldType.JSON
    assert customers["notes"].merge is MergePolicy.APPEND
    assert customers["owner_id"].read_only
    leads = CRM_SCHEMA["leads"].fields
    assert "converted" in leads["status"].choices and "converted_customer_id" in leads
    assert CRM_SCHEMA["activities"].fields["check_in"].type is FieldType.GEO
    assert CRM_SCHEMA["activities"].fields["type"].choices[:3] == ("call", "email", "visit")
    assert "remind_at" in CRM_SCHEMA["tasks"].fields
    assert {"ends_on", "remind_days_before"} <= set(CRM_SCHEMA["contracts"].fields)
    assert CRM_SCHEMA["quote_lines"].fields["quote_id"].ref == "quotes"
    assert CRM_SCHEMA["campaign_members"].fields["campaign_id"].ref == "campaigns"
    assert CRM_SCHEMA["ticket_comments"].fields["ticket_id"].ref == "tickets"
    assert CRM_SCHEMA["satisfaction_responses"].fields["score"].maximum == 5
    assert CRM_SCHEMA["sales_targets"].fields["amount"].required


def test_events_are_append_only() -> None:
    append_only = {name for name, e in CRM_SCHEMA.entities.items() if e.append_only}
    assert {"activities", "stage_changes", "ticket_comments", "satisfaction_responses"} <= (
        append_only
    )


def test_crm_schema_is_internally_consistent() -> None:
    for name, entity in CRM_SCHEMA.entities.items():
        assert entity.name == name
        assert entity.label and entity.label_zh, name
        assert isinstance(entity.delete_policy, DeletePolicy)
        for field in entity.search_fields:
            assert field in entity.fields, (name, field)
        if entity.scope is Scope.CUSTOMER:
            assert entity.fields[entity.customer_field].required, name
        for fname, spec in entity.fields.items():
            assert spec.label and spec.label_zh, (name, fname)
            if spec.type is FieldType.ENUM:
                assert spec.choices, (name, fname)
            if spec.type is FieldType.REF and spec.ref != "users":
                assert spec.ref in CRM_SCHEMA, (name, fname, spec.ref)
            if spec.merge is MergePolicy.UNION:
                assert spec.type is FieldType.TAGS
            if spec.merge is MergePolicy.APPEND:
                assert spec.type is FieldType.TEXT


def test_a_valid_visit_passes_and_describe_is_json() -> None:
    visit = {
        "customer_id": "c1",
        "type": "visit",
        "occurred_at": "2024-11-23T10:00:00+08:00",
        "notes": "拜访张总，讨论续约",
        "check_in": {"lat": 39.9, "lon": 116.4, "accuracy_m": 12.0},
    }
    assert CRM_SCHEMA["activities"].validate(visit, partial=False) == []
    described = CRM_SCHEMA.describe()
    assert described["entities"]["customers"]["fields"]["tags"]["merge"] == "union"
    assert described["version"] == CRM_SCHEMA.version
