"""Typed custom fields: the pure checks both sides run (sync_protocol.custom_fields)."""

from __future__ import annotations

from sync_protocol.custom_fields import custom_errors, definition_errors, definitions_for

DEFS = [
    {"entity": "customers", "key": "budget", "type": "number", "label": "Budget", "required": True},
    {"entity": "customers", "key": "since", "type": "date", "label": "Since"},
    {
        "entity": "customers",
        "key": "size",
        "type": "choice",
        "label": "Size",
        "options": ["S", "L"],
    },
    {
        "entity": "customers",
        "key": "topics",
        "type": "choices",
        "label": "T",
        "options": ["a", "b"],
    },
    {
        "entity": "customers",
        "key": "old",
        "type": "string",
        "label": "Old",
        "required": True,
        "active": False,
    },
    {"entity": "leads", "key": "budget", "type": "string", "label": "other entity"},
    {"entity": "customers", "key": "Bad", "type": "string", "label": "malformed: ignored"},
]


def errors(values: object, *, creating: bool = False) -> list[tuple[str, str]]:
    defs = definitions_for("customers", DEFS)
    return [(e.field, e.code) for e in custom_errors(defs, values, creating=creating)]


def test_declarations_of_the_entity_type_its_custom_object() -> None:
    assert set(definitions_for("customers", DEFS)) == {"budget", "since", "size", "topics", "old"}
    assert errors({"budget": 1.5, "since": "2026-01-31", "size": "S", "topics": ["a"]}) == []
    assert errors(
        {"budget": True, "since": "2026-02-30", "size": "M", "topics": ["a", "a"], "x": 1}
    ) == [
        ("custom.budget", "type"),
        ("custom.since", "type"),
        ("custom.size", "type"),
        ("custom.topics", "type"),
        ("custom.x", "unknown_field"),
    ]


def test_required_on_create_only_and_inactive_is_not_required() -> None:
    assert errors({}, creating=True) == [("custom.budget", "required")]
    assert errors(None, creating=True) == [("custom.budget", "required")]
    assert errors({"old": "kept"}) == []  # a retired key still accepts its old values
    assert errors({}) == []


def test_without_declarations_custom_stays_free_form() -> None:
    assert custom_errors({}, {"anything": [1]}, creating=True) == []


def test_a_declaration_is_checked_itself() -> None:
    ok = {"entity": "tickets", "key": "root_cause", "type": "choice", "options": ["hw"]}
    assert definition_errors(ok) == []
    bad = {"entity": "products", "key": "9x", "type": "colour"}
    assert [e.field for e in definition_errors(bad)] == ["key", "entity", "type"]
    assert [e.code for e in definition_errors({**ok, "options": []})] == ["required"]
