"""Units of a push and the domain-rule seam.

A push is applied unit by unit (:func:`units_of`): each ungrouped mutation alone, the
members of a group together. A schema's :class:`PushRules` check each unit after the
engine applied it in memory and may refuse it with :class:`Rejected`; they also see
every row a batch writes (:meth:`PushRules.on_flush`) to keep derived tables.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic_core import to_json
from sqlalchemy import Connection

from sync_protocol import (
    ErrorBody,
    ErrorCode,
    Mutation,
    MutationResult,
    MutationStatus,
    SchemaRegistry,
)

from ..accounts import Principal
from .rows import RowState, plain_sorted
from .writing import StoredResult


class Batch(Protocol):
    """What rules (and the conflict helpers) see of a running push batch
    (:class:`server.repository.push.PushBatch`)."""

    conn: Connection
    principal: Principal
    schema: SchemaRegistry
    now_ms: int
    server_hlc: Callable[[], str]
    origin: str
    repointing: bool
    rows: dict[tuple[str, str], RowState | None]
    scratch: dict[str, Any]
    #: Every mutation of the push, in request order (rules may prefetch for all of them).
    mutations: Sequence[Mutation]

    def row(self, collection: str, record_id: str) -> RowState | None: ...

    def load(self, collection: str, record_ids: Iterable[str]) -> None: ...

    def children(self, collection: str, customer_id: str) -> list[RowState]: ...

    def derive(self, collection: str, record_id: str, values: dict[str, Any]) -> None: ...

    def touch(self, key: tuple[str, str]) -> None: ...

    def next_version(self) -> int: ...


class Rejected(Exception):
    """A mutation refused with a stable code; nothing of it (or of its group) is written.

    ``mutation_id`` names the member to blame when a rule rejects a whole unit (default:
    the mutation being applied).
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        mutation_id: str | None = None,
    ):
        super().__init__(message)
        self.body = ErrorBody(code=code, message=message, details=details or {})
        self.mutation_id = mutation_id


@dataclass(frozen=True, slots=True)
class UnitWrite:
    """One applied member of a unit, as a rule sees it: the mutation, the row after it
    (the batch's live state) and the row as it stood before the unit (``None``: new)."""

    mutation: Mutation
    row: RowState
    before: RowState | None


class PushRules(Protocol):
    """Schema-specific checks run on each unit after it is applied in memory.

    Raise :class:`Rejected` (with ``mutation_id`` set to the member to blame) to undo
    the whole unit. Rules read other records through :meth:`PushBatch.row`, which sees
    the batch's own earlier writes.
    """

    def check_unit(self, batch: Batch, unit: Sequence[UnitWrite]) -> None: ...

    def on_flush(self, batch: Batch, written: Sequence[RowState]) -> None:
        """Called with every row the batch writes, in its transaction (derived tables)."""


class NoRules:
    """The engine's checks only (any schema without domain rules)."""

    def check_unit(self, batch: Batch, unit: Sequence[UnitWrite]) -> None:
        return None

    def on_flush(self, batch: Batch, written: Sequence[RowState]) -> None:
        return None


NO_RULES: PushRules = NoRules()


def units_of(mutations: Sequence[Mutation]) -> list[list[int]]:
    """Indices of ``mutations`` cut into units: each ungrouped mutation alone; the members
    of a group together, in request order, placed where the group's first member is."""
    units: list[list[int]] = []
    groups: dict[str, list[int]] = {}
    for i, m in enumerate(mutations):
        if m.group is None:
            units.append([i])
        elif m.group in groups:
            groups[m.group].append(i)
        else:
            groups[m.group] = [i]
            units.append(groups[m.group])
    return units


def rejected_results(
    members: Sequence[Mutation], failed_id: str, rejection: Rejected
) -> list[MutationResult]:
    """A refused unit's answers: the failing member's own error, ``group_rejected`` for
    the others."""
    group = members[0].group
    results = []
    for m in members:
        body = rejection.body
        if m.id != failed_id:
            body = ErrorBody(
                code=ErrorCode.GROUP_REJECTED,
                message=f"another write of group {group!r} was rejected: {rejection.body.message}",
                details={"group": group, "failed_mutation_id": failed_id},
            )
        results.append(MutationResult(mutation_id=m.id, status=MutationStatus.REJECTED, error=body))
    return results


def mutation_digest(m: Mutation) -> str:
    """SHA-256 of a mutation's content as the device sent it (canonical JSON of the
    parsed message, so formatting and key order do not matter).

    The canonical text is ``json.dumps`` of the message's attributes with sorted keys,
    compact, UTF-8. A message of plain values — text, integers, booleans, nulls, lists
    of text, and objects of those (its ``fields``, its ``base``) — is written by
    pydantic-core's encoder (in Rust, ~4x faster) from a copy with its keys in sorted
    order: the same bytes. Anything else — a float (``repr`` and Rust write some
    differently), deeper nesting, a lone surrogate, a value JSON cannot encode as it
    stands — takes ``json.dumps``; ``model_dump(mode="json")`` is the last resort (a
    mutation built in Python with a date, a set, a NaN).
    ``tests/server/test_push_encoding.py`` holds the three equal."""
    data = _plain_canonical(m)
    if data is None:
        try:
            canonical = json.dumps(
                {name: getattr(m, name) for name in _MUTATION_FIELDS},
                sort_keys=True,
                separators=(",", ":"),
                ensure_ascii=False,
                allow_nan=False,
            )
        except (TypeError, ValueError):
            canonical = _model_canonical(m)
        data = canonical.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def _plain_canonical(m: Mutation) -> bytes | None:
    """The canonical bytes of a message of plain values (:func:`mutation_digest`), or
    ``None``: not plain."""
    get = m.__dict__.get  # a model's field values (a missing one: not plain)
    doc: dict[str, Any] = {}
    for name in _SORTED_FIELDS:
        value = get(name, _MISSING)
        t = value.__class__
        if t is str or value is None or t is int or t is bool:
            pass
        elif t is dict:
            value = plain_sorted(value)
            if value is None:
                return None
        elif t is not list or not all(v.__class__ is str for v in value):
            return None
        doc[name] = value
    try:
        return to_json(doc)
    except Exception:  # a lone surrogate: json.dumps writes it, pydantic-core refuses
        return None


def _model_canonical(m: Mutation) -> str:
    return json.dumps(
        m.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


_MUTATION_FIELDS = tuple(Mutation.model_fields)
_SORTED_FIELDS = tuple(sorted(_MUTATION_FIELDS))
_MISSING: Any = object()


def repeat_result(m: Mutation, stored: StoredResult, digest: str) -> MutationResult:
    """The answer to a mutation id already used by this device: ``duplicate`` with the
    first answer when the content is the same, else ``mutation_id_reused``."""
    if stored.digest is not None and stored.digest != digest:
        return MutationResult(
            mutation_id=m.id,
            status=MutationStatus.REJECTED,
            error=ErrorBody(
                code=ErrorCode.MUTATION_ID_REUSED,
                message="this mutation id was already used for a different write; "
                "give every write its own id",
                details={"mutation_id": m.id},
            ),
        )
    original = MutationResult.model_validate_json(stored.result)
    return original.model_copy(update={"status": MutationStatus.DUPLICATE})


def decided_results(
    members: Sequence[Mutation],
    stored: Sequence[StoredResult | None],
    digests: Sequence[str],
) -> list[MutationResult]:
    """A retried unit's answers: each stored member its first answer
    (:func:`repeat_result`); a member never seen before ``group_rejected`` (a group is
    decided once)."""
    first_known = next(m.id for m, s in zip(members, stored, strict=True) if s is not None)
    results = []
    for m, s, digest in zip(members, stored, digests, strict=True):
        if s is not None:
            results.append(repeat_result(m, s, digest))
            continue
        error = ErrorBody(
            code=ErrorCode.GROUP_REJECTED,
            message=f"group {m.group!r} was already decided in an earlier push; "
            "a group never spans two pushes",
            details={"group": m.group, "failed_mutation_id": first_known},
        )
        results.append(
            MutationResult(mutation_id=m.id, status=MutationStatus.REJECTED, error=error)
        )
    return results
