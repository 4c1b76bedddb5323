"""Value objects the SDK hands to apps: records, conflicts, dead letters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Record:
    """A record as the app sees it: server state with pending local writes on top.

    ``fields`` holds every field, including ones this app's schema does not know (they
    came from a newer server schema and are kept). Treat it as read-only: write through
    :meth:`Collection.update`. ``version`` is the server version the record was last seen
    at (``None`` until the server has it); ``pending`` is true while local writes wait.
    """

    id: str
    collection: str
    fields: dict[str, Any]
    version: int | None = None
    pending: bool = False

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self.fields


@dataclass(frozen=True, slots=True)
class Conflict:
    """A field two writers changed concurrently whose policy says a person decides.

    ``base`` is the value both started from, ``local`` this (or another) device's value,
    ``remote`` the value the server kept. ``field == "_deleted"`` is a delete-versus-edit
    conflict (``local``/``remote`` say whether each side deleted the record).
    """

    id: str
    collection: str
    record_id: str
    field: str
    base: Any
    local: Any
    remote: Any
    local_hlc: str | None = None
    remote_hlc: str | None = None
    device_id: str | None = None
    status: str = "open"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A write the server refused; kept with the error until fixed and retried or discarded."""

    id: str
    collection: str
    record_id: str
    op: str
    fields: dict[str, Any]
    error: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    #: the mutation group the write belonged to (``Store.group()``), if any
    group: str | None = None

    @property
    def code(self) -> str:
        return str(self.error.get("code", ""))

    @property
    def message(self) -> str:
        return str(self.error.get("message", ""))
