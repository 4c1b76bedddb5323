"""Declarative schema files (TOML / JSON): what they declare, and what they refuse."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from sync_protocol import (
    FieldType,
    MergePolicy,
    SchemaFileError,
    Scope,
    parse_schema_file,
)
from sync_protocol.schema_file import schema_file_json_schema

ROOT = Path(__file__).resolve().parents[2]
FIELD_SERVICE = ROOT / "tests" / "support" / "schemas" / "field_service.toml"


def _doc() -> dict[str, Any]:
    return tomllib.loads(FIELD_SERVICE.read_text(encoding="utf-8"))


def test_a_toml_file_declares_collections_fields_and_scopes() -> None:
    schema = parse_schema_file(FIELD_SERVICE.read_text(encoding="utf-8"))
    assert (schema.name, schema.version, schema.min_client_version) == ("field_service", 1, 1)
    assert {n: e.scope for n, e in schema.entities.items()} == {
        "sites": Scope.OWNER,
        "visits": Scope.PARENT,
        "findings": Scope.PARENT,
        "handbook": Scope.TEAM,
        "boiler_models": Scope.REFERENCE,
    }
    sites = schema["sites"]
    assert sites.fields["hazards"].merge is MergePolicy.UNION
    assert sites.fields["name"].max_length == 200 and sites.fields["name"].required
    owner = sites.fields["owner_id"]  # not declared: added, read-only
    assert (owner.type, owner.read_only, owner.ref) == (FieldType.REF, True, "users")
    assert schema["findings"].parent_collection == "visits"
    assert schema["findings"].parent_field == "visit_id"
    assert schema["findings"].append_only
    assert schema["boiler_models"].write_roles == frozenset({"manager", "admin"})
    assert schema.parents() == {"sites", "visits"}


def test_the_same_schema_in_json_is_the_same_registry() -> None:
    as_json = parse_schema_file(json.dumps(_doc()), format="json")
    assert as_json.describe() == parse_schema_file(_doc()).describe()


def _problems(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(SchemaFileError) as refused:
        parse_schema_file(doc)
    return refused.value.problems


def test_a_misspelt_key_is_refused_with_its_place() -> None:
    doc = _doc()
    doc["collections"]["sites"]["scpoe"] = "owner"
    doc["collections"]["sites"]["fields"]["name"]["requred"] = True
    doc["collections"]["sites"]["fields"]["hazards"]["type"] = "tag"
    problems = _problems(doc)
    assert any(p.startswith("collections.sites.scpoe:") for p in problems), problems
    assert any(p.startswith("collections.sites.fields.name.requred:") for p in problems)
    assert any(p.startswith("collections.sites.fields.hazards.type:") for p in problems)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["collections"]["visits"].pop("parent"), "needs both 'parent'"),
        (
            lambda d: d["collections"]["visits"].update(parent="nowhere"),
            "parent collection 'nowhere' is not declared",
        ),
        (
            lambda d: d["collections"]["visits"]["fields"].pop("site_id"),
            "parent field 'site_id' is not a field",
        ),
        (
            lambda d: d["collections"]["visits"]["fields"]["site_id"].update(ref="handbook"),
            "must be a ref to 'sites'",
        ),
        (
            lambda d: d["collections"]["sites"].update(
                scope="parent", parent="findings", parent_field="name"
            ),
            "its parents form a loop",
        ),
        (
            lambda d: (
                d["collections"]["sites"]["fields"].update(
                    level={"type": "integer", "required": True, "added_in": 2}
                )
                or d.update(version=2)
            ),
            "cannot be required (older apps cannot send it)",
        ),
        (
            lambda d: d["collections"]["sites"]["fields"].update(kind={"type": "enum"}),
            "enum field 'kind' has no choices",
        ),
        (
            lambda d: d["collections"]["sites"]["fields"].update(
                later={"type": "string", "added_in": 3}
            ),
            "field 'later' is added after 1",
        ),
        (lambda d: d.update(min_client_version=2), "min_client_version must be between"),
        (
            lambda d: d["collections"]["sites"]["fields"]["name"].update(max_bytes=10),
            "only json fields have max_bytes",
        ),
        (
            lambda d: d["collections"]["sites"]["fields"].update(id={"type": "string"}),
            "'id' cannot be a field name",
        ),
        (
            lambda d: d["collections"]["sites"].update(search_fields=["nam"]),
            "search field 'nam' is not a field",
        ),
        (
            lambda d: d["collections"]["handbook"]["fields"].update(
                site={"type": "ref", "ref": "sitez"}
            ),
            "ref 'sitez' is not a collection",
        ),
    ],
)
def test_an_inconsistent_schema_is_refused(change: Any, expected: str) -> None:
    doc = _doc()
    change(doc)
    problems = _problems(doc)
    assert any(expected in p for p in problems), problems


def test_text_that_is_not_toml_or_json_is_refused() -> None:
    with pytest.raises(SchemaFileError, match="not valid TOML"):
        parse_schema_file("name = [", source="app.toml")
    with pytest.raises(SchemaFileError, match=r"^app\.json: not valid JSON"):
        parse_schema_file("{name:", format="json", source="app.json")


def test_the_published_json_schema_is_the_format() -> None:
    published = json.loads((ROOT / "docs" / "protocol" / "schema-file.json").read_text())
    assert published == schema_file_json_schema()
    # strict like the loader: nothing undeclared anywhere
    assert published["additionalProperties"] is False
    for name in ("CollectionDecl", "FieldDecl"):
        assert published["$defs"][name]["additionalProperties"] is False
    assert set(published["required"]) == {"name", "version", "collections"}
    scopes = published["$defs"]["CollectionDecl"]["properties"]["scope"]["enum"]
    assert scopes == ["owner", "parent", "team", "reference"]
