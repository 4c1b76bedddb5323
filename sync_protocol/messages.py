"""Wire messages of the sync protocol (JSON over HTTP, pydantic v2 models).

Flow: ``POST /v1/auth/login`` → tokens; ``POST /v1/sync/push`` with the outbox in
batches; ``POST /v1/sync/pull`` pages until ``has_more`` is false, storing ``checkpoint``
after each page is applied. ``docs/protocol.md`` walks through it with examples; the
JSON Schemas in ``docs/protocol/`` are generated from these models.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ErrorBody
from .merge import DELETED_FIELD, FieldConflict
from .status import OptionalDeviceStatus
from .versions import PROTOCOL_VERSION

ID_PATTERN = r"^[A-Za-z0-9_\-.:]{1,64}$"
HLC_PATTERN = r"^\d{15}:\d{5}:[^:]+$"
COLLECTION_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
#: The system collection conflicts are synced through (same pull path as the records).
CONFLICTS_COLLECTION = "_conflicts"

RecordId = Annotated[str, Field(pattern=ID_PATTERN)]


class _Message(BaseModel):
    """A request: strict — an unknown field is refused with ``validation_failed``, and so
    is a value of the wrong JSON type (no ``true`` for 1, no ``"12"`` for 12)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class _Response(BaseModel):
    """An answer: read tolerantly — unknown fields are ignored, so a newer server that
    adds a field never breaks an installed app (requests stay strict)."""

    model_config = ConfigDict(extra="ignore")


class MutationStatus(StrEnum):
    APPLIED = "applied"
    MERGED = "merged"
    CONFLICT = "conflict"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"


class Mutation(_Message):
    """One local write. ``id`` is generated on the device and makes pushes idempotent."""

    id: str = Field(pattern=ID_PATTERN, description="Client-generated mutation id (UUIDv7/ULID).")
    collection: str = Field(pattern=COLLECTION_PATTERN)
    record_id: str = Field(pattern=ID_PATTERN)
    op: Literal["upsert", "delete"]
    base_version: int | None = Field(
        default=None,
        ge=0,
        description="Server version of the record the edit was based on; null for a new record.",
    )
    fields: dict[str, Any] = Field(
        default_factory=dict, description="Changed fields only (a patch); empty for delete."
    )
    base: dict[str, Any] | None = Field(
        default=None,
        description="The changed fields' values as the device last saw them from the server "
        "(three-way merge input for union, append and manual fields).",
    )
    hlc: str = Field(pattern=HLC_PATTERN, description="Hybrid logical clock of the edit.")
    resolves: list[RecordId] | None = Field(
        default=None, description="Ids of conflicts (records of `_conflicts`) this write resolves."
    )
    group: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="Mutations of one push sharing a group apply all or nothing (a lead "
        "conversion, an order with its lines). A group never spans two pushes.",
    )
    override: list[Literal["possible_duplicate"]] | None = Field(
        default=None,
        description="Soft checks the writer deliberately overrides, after showing them to "
        "the user: `possible_duplicate` saves a record that matches another one.",
    )

    @model_validator(mode="after")
    def _delete_has_no_fields(self) -> Mutation:
        if self.op == "delete" and self.fields:
            raise ValueError("a delete carries no fields")
        return self


class PushRequest(_Message):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "protocol": 1,
                    "device_id": "dev-7f3a",
                    "schema_version": 1,
                    "mutations": [
                        {
                            "id": "018f2b6e-8c1d-7a00-9b1e-3c5d2e1f0a01",
                            "collection": "customers",
                            "record_id": "018f2b6e-8c1d-7a00-9b1e-3c5d2e1f0a02",
                            "op": "upsert",
                            "base_version": None,
                            "fields": {
                                "name": "张三",
                                "phone": "+86 138 0000 0000",
                                "status": "potential",
                            },
                            "hlc": "001732363212345:00000:dev-7f3a",
                        }
                    ],
                }
            ]
        },
    )

    protocol: int = PROTOCOL_VERSION
    device_id: str = Field(pattern=ID_PATTERN)
    schema_version: int = Field(ge=1)
    schema_name: str | None = Field(
        default=None,
        max_length=64,
        description="The name of the client's schema; another than the server's is "
        "refused (`schema_mismatch`). Optional: older clients do not send it.",
    )
    mutations: list[Mutation]
    pending_total: int | None = Field(
        default=None,
        ge=0,
        description="Superseded by `device_status.pending_count` (same meaning: writes "
        "queued when the request was sent, this batch included); still accepted.",
    )
    device_status: OptionalDeviceStatus = Field(
        default=None,
        description="The device's own sync health (`DeviceStatus`), read tolerantly: an "
        "invalid value is dropped, never refused.",
    )


class MutationResult(_Response):
    mutation_id: str
    status: MutationStatus
    version: int | None = Field(default=None, description="Record version after the write.")
    error: ErrorBody | None = None
    conflict_ids: list[str] = Field(default_factory=list)
    record: dict[str, Any] | None = Field(
        default=None, description="The record's fields after a merge (status merged/conflict)."
    )


class PushResponse(_Response):
    protocol: int = PROTOCOL_VERSION
    results: list[MutationResult]
    server_hlc: str = Field(
        pattern=HLC_PATTERN, description="Server clock; devices merge it into their HLC."
    )
    warnings: list[ErrorBody] = Field(default_factory=list)


class PullRequest(_Message):
    protocol: int = PROTOCOL_VERSION
    device_id: str = Field(pattern=ID_PATTERN)
    schema_version: int = Field(ge=1)
    schema_name: str | None = Field(
        default=None,
        max_length=64,
        description="The name of the client's schema; another than the server's is "
        "refused (`schema_mismatch`). Optional: older clients do not send it.",
    )
    checkpoint: str | None = Field(
        default=None,
        description="Opaque; null for an initial sync. Store it after applying a page.",
    )
    limit: int = Field(default=500, ge=1, le=10_000)
    device_status: OptionalDeviceStatus = Field(
        default=None,
        description="The device's own sync health (`DeviceStatus`), read tolerantly: an "
        "invalid value is dropped, never refused.",
    )


class Change(_Response):
    collection: str
    record_id: str
    version: int
    op: Literal["upsert", "delete", "evict"]
    fields: dict[str, Any] | None = Field(
        default=None, description="The whole record for upsert; absent for delete and evict."
    )


class PullResponse(_Response):
    protocol: int = PROTOCOL_VERSION
    changes: list[Change]
    checkpoint: str
    has_more: bool
    server_hlc: str = Field(
        pattern=HLC_PATTERN, description="Server clock; devices merge it into their HLC."
    )
    remaining: int | None = Field(
        default=None, description="Changes left after this page, when the server counted them."
    )


class SyncLimits(_Response):
    max_batch: int
    max_pull_limit: int
    max_drift_ms: int
    tombstone_retention_days: int
    max_body_bytes: int
    offline_lease_days: int = Field(
        default=0,
        ge=0,
        description="Days without reaching the server after which a device locks its store "
        "until the user signs in online again; 0: no lease.",
    )


class SyncInfo(_Response):
    protocol: dict[str, int] = Field(description='{"min": 1, "max": 1}')
    schema_version: int
    min_schema_version: int
    limits: SyncLimits
    server_time_ms: int


class LoginRequest(_Message):
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)
    device_id: str = Field(pattern=ID_PATTERN)
    device_name: str | None = Field(default=None, max_length=128)
    platform: str | None = Field(default=None, max_length=64)
    app_version: str | None = Field(default=None, max_length=32)
    totp: str | None = Field(default=None, pattern=r"^\d{6}$")


class RefreshRequest(_Message):
    refresh_token: str = Field(min_length=1, max_length=512)
    device_id: str = Field(pattern=ID_PATTERN)


class UserInfo(BaseModel):
    id: str
    username: str
    display_name: str
    role: Literal["rep", "manager", "admin"]
    team_id: str | None = None


class TokenResponse(_Response):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
    user: UserInfo


class ConflictChoice(StrEnum):
    LOCAL = "local"
    REMOTE = "remote"
    VALUE = "value"


class ConflictRecord(BaseModel):
    """The fields of a record of the system collection ``_conflicts``.

    Conflicts reach devices like any record (a ``Change`` of collection ``_conflicts``,
    scoped like the conflicted record). A device resolves one by pushing a normal upsert
    of the conflicted record with ``resolves: [conflict id]``; the server then sets
    ``status`` to ``resolved`` and syncs the conflict again. For ``field == "_deleted"``
    (delete versus edit) ``base``/``local``/``remote`` are booleans: "record deleted".
    Unknown fields are allowed (servers may add some, e.g. timestamps).
    """

    model_config = ConfigDict(extra="allow")

    collection: str
    record_id: str
    field: str = Field(description='The conflicted field, or "_deleted" for delete/edit.')
    base: Any = Field(default=None, description="Value both sides started from.")
    local: Any = Field(default=None, description="The pushing device's value.")
    remote: Any = Field(default=None, description="The value the server kept.")
    local_hlc: str | None = None
    remote_hlc: str | None = None
    device_id: str | None = Field(default=None, description="Device whose push conflicted.")
    user_id: str | None = None
    status: Literal["open", "resolved"] = "open"
    resolution: Any = Field(default=None, description="Value chosen by the resolver.")
    mutation_id: str | None = Field(default=None, description="The push that conflicted.")
    kind: Literal["field", "delete"] = Field(
        default="field", description='"delete" for a delete-versus-edit conflict.'
    )

    @classmethod
    def read(cls, fields: Mapping[str, Any]) -> ConflictRecord | None:
        """The conflict in a ``_conflicts`` record's fields, or ``None`` if they are not
        one (read tolerantly: unknown fields are kept, an unknown ``status`` or ``kind``
        from a newer server makes the record unreadable rather than an error)."""
        try:
            return cls.model_validate(dict(fields))
        except ValidationError:
            return None

    @classmethod
    def of(
        cls,
        conflict: FieldConflict,
        *,
        collection: str,
        record_id: str,
        device_id: str | None = None,
        user_id: str | None = None,
        mutation_id: str | None = None,
    ) -> ConflictRecord:
        """The record a server stores for a :class:`FieldConflict` of a merge."""
        return cls(
            collection=collection,
            record_id=record_id,
            field=conflict.field,
            base=conflict.base,
            local=conflict.local,
            remote=conflict.remote,
            local_hlc=conflict.local_hlc,
            remote_hlc=conflict.remote_hlc,
            device_id=device_id,
            user_id=user_id,
            mutation_id=mutation_id,
            kind="delete" if conflict.field == DELETED_FIELD else "field",
        )

    def fields(self) -> dict[str, Any]:
        """The record's fields as stored and synced."""
        return self.model_dump(mode="json")
