"""Declarative schema files: a developer's collections in TOML or JSON, no Python needed.

The same file configures the server (``fieldsync serve --schema inspections.toml``) and
the app (``Store.open(..., schema=parse_schema_file(text))``, the text read from the
app's bundled copy)::

    name = "inspections"
    version = 1

    [collections.sites]
    scope = "owner"                      # owner | parent | team | reference
    search_fields = ["name", "address"]

    [collections.sites.fields]
    name = { type = "string", required = true, max_length = 200 }
    hazards = { type = "tags", merge = "union" }

    [collections.readings]
    scope = "parent"                     # seen by whoever sees its site
    parent = "sites"
    parent_field = "site_id"
    append_only = true

    [collections.readings.fields]
    site_id = { type = "ref", ref = "sites", required = true }

The format is :class:`SchemaFile`; its JSON Schema is published as
``docs/protocol/schema-file.json`` (editors validate and complete with it through
``"$schema"``). Anything unknown, misspelt or inconsistent is refused with
:class:`SchemaFileError`, which lists every problem with its place in the file.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .schema import (
    DeletePolicy,
    EntitySchema,
    FieldSpec,
    FieldType,
    MergePolicy,
    SchemaRegistry,
    Scope,
)

_NAME = r"^[a-z][a-z0-9_]{0,63}$"
_FIELD = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"


class SchemaFileError(ValueError):
    """A schema file that cannot be served: ``problems`` says each thing wrong, where."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldDecl(_Strict):
    """One field: its type, limits and merge policy."""

    type: FieldType
    required: bool = False
    merge: MergePolicy = Field(
        default=MergePolicy.LWW,
        description="What two concurrent writes of the field become (docs/protocol.md).",
    )
    choices: list[str] = Field(default_factory=list, description="The values of an enum.")
    max_length: int | None = Field(default=None, ge=1)
    max_bytes: int | None = Field(
        default=None, ge=1, description="A json field's size bound (compact UTF-8 bytes)."
    )
    minimum: float | None = None
    maximum: float | None = None
    ref: str | None = Field(default=None, description="The collection a `ref` points into.")
    added_in: int = Field(default=1, ge=1, description="Schema version that added the field.")
    read_only: bool = Field(default=False, description="Set by the server, never by apps.")
    label: str = ""
    label_zh: str = ""
    searchable: bool = False


class CollectionDecl(_Strict):
    """One synced collection and who sees its records."""

    scope: Literal["owner", "parent", "team", "reference"] = Field(
        default="owner",
        description="owner: the owner (owner_field), their manager and admins; parent: "
        "whoever sees the parent record; team: the writer's team; reference: everyone.",
    )
    owner_field: str = Field(
        default="owner_id",
        pattern=_FIELD,
        description="scope owner: the field holding the owner's user id (added as a "
        "read-only field when not declared).",
    )
    parent: str | None = Field(
        default=None, pattern=_NAME, description="scope parent: the parent collection."
    )
    parent_field: str | None = Field(
        default=None,
        pattern=_FIELD,
        description="scope parent: the ref field naming the parent record.",
    )
    delete_policy: DeletePolicy = DeletePolicy.EDIT_WINS
    append_only: bool = Field(
        default=False, description="Insert-only events: updates and deletes are refused."
    )
    write_roles: list[Literal["rep", "manager", "admin"]] | None = Field(
        default=None, description="Roles that may write (default: anyone who sees the record)."
    )
    search_fields: list[str] = Field(default_factory=list)
    added_in: int = Field(default=1, ge=1, description="Schema version that added it.")
    label: str = ""
    label_zh: str = ""
    fields: dict[str, FieldDecl] = Field(min_length=1)


class SchemaFile(_Strict):
    """A schema file: named, versioned collections."""

    schema_url: str | None = Field(
        default=None, alias="$schema", description="This format's JSON Schema, for editors."
    )
    name: str = Field(pattern=_NAME)
    version: int = Field(ge=1, description="Raised whenever a field or collection is added.")
    min_client_version: int = Field(
        default=1, ge=1, description="Apps on an older schema are refused (schema_too_old)."
    )
    collections: dict[str, CollectionDecl] = Field(min_length=1)


def _entity(name: str, c: CollectionDecl) -> EntitySchema:
    fields = {
        n: FieldSpec(
            type=f.type,
            required=f.required,
            merge=f.merge,
            choices=tuple(f.choices),
            max_length=f.max_length,
            max_bytes=f.max_bytes,
            minimum=f.minimum,
            maximum=f.maximum,
            ref=f.ref,
            added_in=f.added_in,
            label=f.label,
            label_zh=f.label_zh,
            read_only=f.read_only,
            searchable=f.searchable,
        )
        for n, f in c.fields.items()
    }
    scope = Scope(c.scope)
    if scope is Scope.OWNER and c.owner_field not in fields:
        fields[c.owner_field] = FieldSpec(
            FieldType.REF, ref="users", read_only=True, added_in=c.added_in
        )
    return EntitySchema(
        name=name,
        fields=fields,
        scope=scope,
        delete_policy=c.delete_policy,
        append_only=c.append_only,
        write_roles=frozenset(c.write_roles) if c.write_roles is not None else None,
        label=c.label,
        label_zh=c.label_zh,
        search_fields=tuple(c.search_fields),
        customer_field=c.parent_field or "customer_id",
        owner_field=c.owner_field,
        added_in=c.added_in,
        parent=c.parent,
    )


def _declaration_problems(doc: SchemaFile) -> list[str]:
    out: list[str] = []
    for name, c in doc.collections.items():
        at = f"collections.{name}"
        if c.scope == "parent" and (c.parent is None or c.parent_field is None):
            out.append(f"{at}: scope 'parent' needs both 'parent' and 'parent_field'")
        if c.scope != "parent" and (c.parent is not None or c.parent_field is not None):
            out.append(f"{at}: 'parent' and 'parent_field' belong to scope 'parent'")
        if c.parent_field is not None and c.parent_field in c.fields:
            spec = c.fields[c.parent_field]
            if spec.type is not FieldType.REF or spec.ref != c.parent:
                out.append(f"{at}.fields.{c.parent_field}: must be a ref to {c.parent!r}")
        for field_name, f in c.fields.items():
            place = f"{at}.fields.{field_name}"
            if not _matches(_FIELD, field_name):
                out.append(f"{place}: not a valid field name")
            if f.type is FieldType.REF and not f.ref:
                out.append(f"{place}: a ref field needs 'ref'")
            if f.choices and f.type is not FieldType.ENUM:
                out.append(f"{place}: only enum fields have choices")
            if f.max_bytes is not None and f.type is not FieldType.JSON:
                out.append(f"{place}: only json fields have max_bytes")
            if f.ref and f.ref != "users" and f.ref not in doc.collections:
                out.append(f"{place}: ref {f.ref!r} is not a collection")
        if not _matches(_NAME, name):
            out.append(f"{at}: not a valid collection name")
    return out


def _matches(pattern: str, value: str) -> bool:
    return re.match(pattern, value) is not None


def parse_schema_file(
    content: str | Mapping[str, Any],
    *,
    format: Literal["toml", "json"] = "toml",
    source: str = "schema file",
) -> SchemaRegistry:
    """The registry a schema file declares: its text (TOML or JSON, as ``format`` says)
    or the mapping already parsed from it. ``source`` names it in errors. Raises
    :class:`SchemaFileError` listing every problem."""
    data: Any = content
    if isinstance(content, str):
        try:
            data = tomllib.loads(content) if format == "toml" else json.loads(content)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise SchemaFileError(source, [f"not valid {format.upper()}: {exc}"]) from None
    try:
        doc = SchemaFile.model_validate(data)
    except ValidationError as exc:
        raise SchemaFileError(
            source,
            [f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()],
        ) from None
    problems = _declaration_problems(doc)
    registry = SchemaRegistry(
        version=doc.version,
        entities={n: _entity(n, c) for n, c in doc.collections.items()},
        min_client_version=doc.min_client_version,
        name=doc.name,
    )
    problems += registry.problems()
    if problems:
        raise SchemaFileError(source, problems)
    return registry


def schema_file_json_schema() -> dict[str, Any]:
    """The JSON Schema of the file format (``docs/protocol/schema-file.json``)."""
    schema = SchemaFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Fieldsync schema file"
    return schema
