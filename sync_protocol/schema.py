"""Entity schemas: fields, types, validation and per-field merge policies.

A schema is declared once and used by the server (validation, merge, scope), the SDK
(local validation before a write is acknowledged, unknown-field carry-through) and the
app (forms and error messages). Any application can declare its own; the CRM's is in
:mod:`sync_protocol.crm`.

Evolution rules: a field is never removed or retyped, only added (``added_in``). A client
one schema version behind keeps working: it sends patches of the fields it knows, and the
server and SDK keep every other field of the record untouched.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, TypeGuard

from .errors import FieldError

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()\-.]{3,32}$")
_ID = re.compile(r"^[A-Za-z0-9_\-.:]{1,64}$")
#: The size bound of a ``json`` field without its own ``max_bytes`` (compact UTF-8).
DEFAULT_JSON_MAX_BYTES = 64 * 1024
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

#: Fields the sync engine manages itself; they are never sent in ``Mutation.fields``.
RESERVED_FIELDS = frozenset({"id", "version", "deleted", "_deleted"})


class FieldType(StrEnum):
    STRING = "string"  # one line, max_length (default 500)
    TEXT = "text"  # long free text (default max 20,000)
    INTEGER = "integer"
    NUMBER = "number"  # JSON number (amounts, probabilities)
    BOOLEAN = "boolean"
    DATE = "date"  # ISO 8601 date, YYYY-MM-DD
    DATETIME = "datetime"  # ISO 8601 date-time with offset
    ENUM = "enum"  # one of ``choices``
    TAGS = "tags"  # list of short strings
    JSON = "json"  # a JSON object (custom fields, criteria), max_bytes (default 64 KiB)
    REF = "ref"  # the id of a record of ``ref`` collection
    EMAIL = "email"
    PHONE = "phone"
    GEO = "geo"  # {"lat": float, "lon": float, "accuracy_m": float?, "at": datetime?}


class MergePolicy(StrEnum):
    """How two concurrent writes of one field combine.

    * ``lww`` — the write with the greater HLC wins (ties broken by device id).
    * ``server_wins`` — a device's write of a field changed on the server since the
      device's base is dropped; otherwise it applies.
    * ``max`` — the greater value wins (counters, "furthest" dates).
    * ``union`` — lists merge as sets: both sides' additions kept, removals honoured.
    * ``append`` — append-only text: the device's additions are appended to the server's.
    * ``manual`` — a person decides: the server keeps its value and records a conflict
      with base, local and remote values.
    """

    LWW = "lww"
    SERVER_WINS = "server_wins"
    MAX = "max"
    UNION = "union"
    APPEND = "append"
    MANUAL = "manual"


class DeletePolicy(StrEnum):
    """What happens when a delete and an edit of one record are concurrent.

    * ``edit_wins`` — the record survives with the edit (a concurrent delete is dropped,
      an edit after a concurrent delete restores the record).
    * ``delete_wins`` — the record stays deleted; a concurrent edit is kept in a
      conflict record so it is never silently lost.
    * ``manual`` — nothing is decided: a conflict record asks a person.
    """

    EDIT_WINS = "edit_wins"
    DELETE_WINS = "delete_wins"
    MANUAL = "manual"


class Scope(StrEnum):
    """Who may see a record of an entity (decided on the server by :mod:`server.scope`).

    * ``owner`` — the record carries its owner's user id (``owner_field``): the owner,
      the owner's team manager and admins see it.
    * ``parent`` — the record hangs off a record of another collection (``parent``,
      through the ``parent_field`` reference) and is seen by whoever sees that parent;
      it moves with it when the parent is reassigned.
    * ``customer`` — ``parent`` with the parent collection ``customers`` (the CRM's name).
    * ``team`` — everyone in the writer's team sees it (and admins).
    * ``reference`` — everyone reads it (products, stages, knowledge base).
    """

    OWNER = "owner"
    PARENT = "parent"
    CUSTOMER = "customer"
    TEAM = "team"
    REFERENCE = "reference"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    type: FieldType
    required: bool = False
    merge: MergePolicy = MergePolicy.LWW
    choices: tuple[str, ...] = ()
    max_length: int | None = None
    #: ``json`` fields: the largest compact UTF-8 encoding accepted (default
    #: :data:`DEFAULT_JSON_MAX_BYTES`); one record never carries megabytes to every device.
    max_bytes: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    ref: str | None = None
    added_in: int = 1
    label: str = ""
    label_zh: str = ""
    #: Server-managed: devices may read but not write it (e.g. ``owner_id`` moves only
    #: by reassignment).
    read_only: bool = False
    searchable: bool = False
    #: A quick yes to "is ``value`` acceptable?", built once per spec: ``True`` means
    #: :meth:`validate` finds nothing; ``False`` only means "ask :meth:`validate`" (which
    #: says why). A push validates every field of every record through it.
    accepts: Callable[[Any], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "accepts", _acceptor(self))

    def validate(self, name: str, value: Any) -> FieldError | None:
        """``None`` when ``value`` is acceptable for this field, else why not."""
        if value is None:
            if self.required:
                return FieldError(field=name, code="required", message=f"{name} is required")
            return None
        t = self.type
        if t in (FieldType.STRING, FieldType.TEXT, FieldType.EMAIL, FieldType.PHONE):
            if not isinstance(value, str):
                return _err(name, "type", f"{name} must be text")
            limit = self.max_length or (20_000 if t is FieldType.TEXT else 500)
            if len(value) > limit:
                return _err(name, "too_long", f"{name} is longer than {limit} characters")
            if self.required and not value.strip():
                return _err(name, "required", f"{name} is required")
            if t is FieldType.EMAIL and value and not _EMAIL.match(value):
                return _err(name, "invalid_email", f"{name} is not an e-mail address")
            if t is FieldType.PHONE and value and not _PHONE.match(value):
                return _err(name, "invalid_phone", f"{name} is not a phone number")
            return None
        if t is FieldType.INTEGER:
            if isinstance(value, bool) or not isinstance(value, int):
                return _err(name, "type", f"{name} must be a whole number")
            return self._range(name, value)
        if t is FieldType.NUMBER:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return _err(name, "type", f"{name} must be a number")
            if isinstance(value, float) and not math.isfinite(value):
                return _err(name, "type", f"{name} must be a finite number")
            return self._range(name, value)
        if t is FieldType.BOOLEAN:
            return (
                None
                if isinstance(value, bool)
                else _err(name, "type", f"{name} must be true or false")
            )
        if t is FieldType.DATE:
            if not isinstance(value, str) or not _ISO_DATE.match(value):
                return _err(name, "invalid_date", f"{name} must be a date (YYYY-MM-DD)")
            try:
                date.fromisoformat(value)
            except ValueError:
                return _err(name, "invalid_date", f"{name} must be a date (YYYY-MM-DD)")
            return None
        if t is FieldType.DATETIME:
            return (
                None
                if _is_datetime(value)
                else _err(name, "invalid_datetime", f"{name} must be an ISO 8601 date and time")
            )
        if t is FieldType.ENUM:
            if value not in self.choices:
                return _err(
                    name, "invalid_choice", f"{name} must be one of {', '.join(self.choices)}"
                )
            return None
        if t is FieldType.TAGS:
            if not isinstance(value, list) or not all(
                isinstance(v, str) and 0 < len(v) <= 64 for v in value
            ):
                return _err(name, "type", f"{name} must be a list of short texts")
            if len(value) > 100:
                return _err(name, "too_long", f"{name} has more than 100 entries")
            if len(set(value)) != len(value):
                return _err(name, "duplicate", f"{name} lists an entry twice")
            return None
        if t is FieldType.JSON:
            if not isinstance(value, dict) or not _is_json(value):
                return _err(name, "type", f"{name} must be a JSON object")
            limit = self.max_bytes or DEFAULT_JSON_MAX_BYTES
            size = len(
                json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode(
                    "utf-8", "surrogatepass"
                )
            )
            if size > limit:
                return _err(name, "too_long", f"{name} is larger than {limit} bytes")
            return None
        if t is FieldType.REF:
            if not isinstance(value, str) or not _ID.match(value):
                return _err(name, "invalid_ref", f"{name} must be a record id")
            return None
        if t is FieldType.GEO:
            return _validate_geo(name, value)
        raise AssertionError(f"unhandled field type {t}")  # pragma: no cover

    def _range(self, name: str, value: float) -> FieldError | None:
        if self.minimum is not None and value < self.minimum:
            return _err(name, "too_small", f"{name} must be at least {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            return _err(name, "too_large", f"{name} must be at most {self.maximum:g}")
        return None


_TEXTS = (FieldType.STRING, FieldType.TEXT, FieldType.EMAIL, FieldType.PHONE)


def _acceptor(spec: FieldSpec) -> Callable[[Any], bool]:
    """:attr:`FieldSpec.accepts` for ``spec``: the common types checked without the
    type dispatch of :meth:`FieldSpec.validate`; the others ask it."""
    t, required = spec.type, spec.required
    if t in _TEXTS:
        limit = spec.max_length or (20_000 if t is FieldType.TEXT else 500)
        pattern = _EMAIL if t is FieldType.EMAIL else _PHONE if t is FieldType.PHONE else None

        def text(value: Any) -> bool:
            if value is None:
                return not required
            if value.__class__ is not str or len(value) > limit:
                return False
            if required and not value.strip():
                return False
            return pattern is None or not value or pattern.match(value) is not None

        return text
    if t is FieldType.ENUM:
        choices = frozenset(spec.choices)

        def enum(value: Any) -> bool:
            if value is None:
                return not required
            return value.__class__ is str and value in choices

        return enum
    if t is FieldType.DATE:

        def day(value: Any) -> bool:
            if value is None:
                return not required
            return value.__class__ is str and _is_date(value)

        return day
    if t is FieldType.TAGS:

        def tags(value: Any) -> bool:
            if value is None:
                return not required
            return (
                value.__class__ is list
                and len(value) <= 100
                and all(v.__class__ is str and 0 < len(v) <= 64 for v in value)
                and len(set(value)) == len(value)
            )

        return tags
    if t is FieldType.REF:

        def ref(value: Any) -> bool:
            if value is None:
                return not required
            return value.__class__ is str and _ID.match(value) is not None

        return ref

    def other(value: Any) -> bool:
        return spec.validate("", value) is None

    return other


@lru_cache(maxsize=4096)
def _is_date(value: str) -> bool:
    if not _ISO_DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _err(name: str, code: str, message: str) -> FieldError:
    return FieldError(field=name, code=code, message=message)


def _is_json(value: Any, depth: int = 0) -> bool:
    """Plain JSON only (str keys; no NaN, sets or objects), at most 32 levels deep."""
    if depth > 32:
        return False
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_is_json(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v, depth + 1) for k, v in value.items())
    return False


def _is_datetime(value: Any) -> bool:
    if not isinstance(value, str) or "T" not in value:
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _validate_geo(name: str, value: Any) -> FieldError | None:
    if not isinstance(value, dict):
        return _err(name, "invalid_geo", f"{name} must be a location")
    lat, lon = value.get("lat"), value.get("lon")
    if not _is_number(lat) or not _is_number(lon):
        return _err(name, "invalid_geo", f"{name} needs numeric lat and lon")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return _err(name, "invalid_geo", f"{name} is outside the globe")
    acc = value.get("accuracy_m")
    if acc is not None and (not _is_number(acc) or acc < 0):
        return _err(name, "invalid_geo", f"{name}.accuracy_m must be a number of metres ≥ 0")
    at = value.get("at")
    if at is not None and not _is_datetime(at):
        return _err(name, "invalid_geo", f"{name}.at must be an ISO 8601 date and time")
    return None


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _refuse(value: Any) -> bool:
    return False


#: :meth:`EntitySchema._plan`: an acceptor per value, and "every required field named".
_Plan = tuple[tuple[Callable[[Any], bool], ...], bool]
#: Plans kept per entity (orders of field names seen).
_MAX_PLANS = 256


@dataclass(frozen=True, slots=True)
class EntitySchema:
    """One synced collection."""

    name: str
    fields: Mapping[str, FieldSpec]
    scope: Scope = Scope.OWNER
    delete_policy: DeletePolicy = DeletePolicy.EDIT_WINS
    #: Insert-only events (activities, stage changes): updates and deletes are refused,
    #: so the commonest field action never conflicts.
    append_only: bool = False
    #: Roles allowed to write (``None``: anyone who can see the record).
    write_roles: frozenset[str] | None = None
    label: str = ""
    label_zh: str = ""
    #: Fields searched by text search (name, phone, company, ...).
    search_fields: tuple[str, ...] = ()
    #: Field holding the parent customer id (``Scope.CUSTOMER``).
    customer_field: str = "customer_id"
    #: Field holding the owner's user id (``Scope.OWNER``).
    owner_field: str = "owner_id"
    #: Schema version that introduced the entity (clients older than that never see it).
    added_in: int = 1
    #: The collection whose scope records inherit (``Scope.PARENT``; ``Scope.CUSTOMER``
    #: means ``customers``). The reference to it is in ``customer_field``.
    parent: str | None = None
    #: Names of the ``ref`` fields and of the read-only fields, worked out once (a push
    #: asks about every record it applies).
    ref_fields: frozenset[str] = field(init=False, repr=False, compare=False)
    read_only_fields: frozenset[str] = field(init=False, repr=False, compare=False)
    #: :meth:`validate`'s plan per order of field names (:meth:`_plan`).
    _plans: dict[tuple[str, ...], _Plan] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        refs = frozenset(n for n, s in self.fields.items() if s.type is FieldType.REF)
        read_only = frozenset(n for n, s in self.fields.items() if s.read_only)
        object.__setattr__(self, "ref_fields", refs)
        object.__setattr__(self, "read_only_fields", read_only)
        object.__setattr__(self, "_plans", {})

    @property
    def parent_collection(self) -> str | None:
        """The collection this entity's records inherit their scope from, if any."""
        if self.scope is Scope.PARENT:
            return self.parent
        if self.scope is Scope.CUSTOMER:
            return self.parent or "customers"
        return None

    @property
    def parent_field(self) -> str:
        """The field referencing the parent record (``Scope.PARENT``/``CUSTOMER``)."""
        return self.customer_field

    def validate(self, values: Mapping[str, Any], *, partial: bool) -> list[FieldError]:
        """Field errors for a full record (``partial=False``) or a patch of one.

        The common answer — none — is found through the plan of the names' order
        (:meth:`_plan`): each value asked its field's :attr:`FieldSpec.accepts` in turn,
        the required fields known present from the names alone. Anything else takes
        :meth:`errors` (``tests/sync_protocol/test_schema_accepts.py`` holds the two
        equal)."""
        names = tuple(values)
        plan = self._plans.get(names)
        if plan is None:
            plan = self._plan(names)
        accepts, complete = plan
        if complete or partial:
            for accept, value in zip(accepts, values.values(), strict=True):
                if not accept(value):
                    break
            else:
                return []
        return self.errors(values, partial=partial)

    def _plan(self, names: tuple[str, ...]) -> _Plan:
        """For values named ``names`` (in this order): each one's acceptor (an unknown
        name: one that accepts nothing), and whether every required field is among them.
        Kept for the first :data:`_MAX_PLANS` orders (a kind of record arrives with its
        names in the same order write after write)."""
        specs = self.fields
        plan = (
            tuple(specs[n].accepts if n in specs else _refuse for n in names),
            all(n in names for n, s in specs.items() if s.required),
        )
        if len(self._plans) < _MAX_PLANS:
            self._plans[names] = plan
        return plan

    def errors(self, values: Mapping[str, Any], *, partial: bool) -> list[FieldError]:
        """:meth:`validate`, field by field."""
        errors: list[FieldError] = []
        for name, value in values.items():
            spec = self.fields.get(name)
            if spec is None:
                errors.append(_err(name, "unknown_field", f"{self.name} has no field {name}"))
                continue
            if spec.accepts(value):
                continue
            problem = spec.validate(name, value)
            if problem:
                errors.append(problem)
        if not partial:
            for name, spec in self.fields.items():
                if spec.required and name not in values:
                    errors.append(_err(name, "required", f"{name} is required"))
        return errors

    def writable_fields(self) -> Iterable[str]:
        return (n for n, s in self.fields.items() if not s.read_only)


@dataclass(frozen=True, slots=True)
class SchemaRegistry:
    """A versioned set of entity schemas.

    ``version`` rises whenever a field or entity is added. Clients at
    ``min_client_version`` or later are served; older ones get ``schema_too_old``.
    """

    version: int
    entities: Mapping[str, EntitySchema]
    min_client_version: int = 1
    name: str = "app"
    extra: dict[str, Any] = field(default_factory=dict)
    _parents: frozenset[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __getitem__(self, collection: str) -> EntitySchema:
        return self.entities[collection]

    def __contains__(self, collection: object) -> bool:
        return collection in self.entities

    def get(self, collection: str) -> EntitySchema | None:
        return self.entities.get(collection)

    def parents(self) -> frozenset[str]:
        """Collections other collections inherit their scope from (asked on every write
        a push applies: worked out once)."""
        known = self._parents
        if known is None:
            known = frozenset(
                p for e in self.entities.values() if (p := e.parent_collection) is not None
            )
            object.__setattr__(self, "_parents", known)
        return known

    def problems(self) -> list[str]:
        """Why this registry cannot be served (empty: it can). Checked when a server
        starts with it, and by the schema-file loader."""
        out: list[str] = []
        if not 1 <= self.min_client_version <= self.version:
            out.append(f"min_client_version must be between 1 and version ({self.version})")
        for name, e in self.entities.items():
            where = f"collection {name!r}"
            if e.name != name:
                out.append(f"{where} is declared with the name {e.name!r}")
            if e.added_in > self.version:
                out.append(f"{where} is added in version {e.added_in}, after {self.version}")
            for field_name, spec in e.fields.items():
                if field_name in RESERVED_FIELDS or not _ID.match(field_name):
                    out.append(f"{where}: {field_name!r} cannot be a field name")
                if spec.added_in > self.version:
                    out.append(f"{where}: field {field_name!r} is added after {self.version}")
                if spec.required and spec.added_in > e.added_in:
                    out.append(
                        f"{where}: field {field_name!r} is added in version {spec.added_in} "
                        "and so cannot be required (older apps cannot send it)"
                    )
                if spec.type is FieldType.ENUM and not spec.choices:
                    out.append(f"{where}: enum field {field_name!r} has no choices")
            out.extend(
                f"{where}: search field {f!r} is not a field"
                for f in e.search_fields
                if f not in e.fields
            )
            parent = e.parent_collection
            if e.scope is Scope.PARENT and parent is None:
                out.append(f"{where}: scope 'parent' needs the parent collection")
            if parent is not None:
                if parent not in self.entities:
                    out.append(f"{where}: parent collection {parent!r} is not declared")
                if e.parent_field not in e.fields:
                    out.append(f"{where}: parent field {e.parent_field!r} is not a field")
                seen: set[str] = {name}
                step: str | None = parent
                while step is not None and step in self.entities:
                    if step in seen:
                        out.append(f"{where}: its parents form a loop")
                        break
                    seen.add(step)
                    step = self.entities[step].parent_collection
        return out

    def as_of(self, version: int) -> SchemaRegistry:
        """The registry as a client at ``version`` knows it (fields added later dropped)."""
        entities = {
            name: EntitySchema(
                name=e.name,
                fields={n: s for n, s in e.fields.items() if s.added_in <= version},
                scope=e.scope,
                delete_policy=e.delete_policy,
                append_only=e.append_only,
                write_roles=e.write_roles,
                label=e.label,
                label_zh=e.label_zh,
                search_fields=e.search_fields,
                customer_field=e.customer_field,
                owner_field=e.owner_field,
                added_in=e.added_in,
                parent=e.parent,
            )
            for name, e in self.entities.items()
            if e.added_in <= version
        }
        return SchemaRegistry(
            version=version,
            entities=entities,
            min_client_version=self.min_client_version,
            name=self.name,
            extra=dict(self.extra),
        )

    def describe(self) -> dict[str, Any]:
        """A JSON-able description (served at ``GET /v1/sync/schema``)."""
        return {
            "name": self.name,
            "version": self.version,
            "min_client_version": self.min_client_version,
            "entities": {
                e.name: {
                    "label": e.label,
                    "label_zh": e.label_zh,
                    "added_in": e.added_in,
                    "scope": e.scope.value,
                    "customer_field": e.customer_field,
                    "owner_field": e.owner_field,
                    "parent": e.parent_collection,
                    "delete_policy": e.delete_policy.value,
                    "append_only": e.append_only,
                    "write_roles": sorted(e.write_roles) if e.write_roles else None,
                    "search_fields": list(e.search_fields),
                    "fields": {
                        n: {
                            "type": s.type.value,
                            "required": s.required,
                            "merge": s.merge.value,
                            "choices": list(s.choices) or None,
                            "ref": s.ref,
                            "added_in": s.added_in,
                            "read_only": s.read_only,
                            "max_length": s.max_length,
                            "max_bytes": s.max_bytes,
                            "minimum": s.minimum,
                            "maximum": s.maximum,
                            "label": s.label,
                            "label_zh": s.label_zh,
                            "searchable": s.searchable,
                        }
                        for n, s in e.fields.items()
                    },
                }
                for e in self.entities.values()
            },
        }
