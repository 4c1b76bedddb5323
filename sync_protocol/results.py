"""The one rule from a merge to the answer a device gets for its mutation.

Every implementation of the server side — the real server's push, the SDK's
``client_sdk.testing.FakeServer`` — answers with :func:`mutation_result`, so a device
sees the same status for the same merge everywhere:

=================================  ============  =========================================
the merge (:class:`MergeStatus`)   status        ``record`` in the answer
=================================  ============  =========================================
``applied``                        ``applied``   none (the device's values are the record's)
``merged``                         ``merged``    the record's fields after the merge
``conflict``                       ``conflict``  the record's fields (the server kept its value)
``unchanged``, a value superseded  ``merged``    the record's fields (take the server's values)
``unchanged``, nothing superseded  ``applied``   none (it was there already: a repeated write)
=================================  ============  =========================================

A result whose record ends deleted carries no ``record``: the next pull
brings the tombstone.
"""

from __future__ import annotations

from typing import Any

from .merge import MergeResult, MergeStatus
from .messages import MutationResult, MutationStatus

_BY_MERGE = {
    MergeStatus.APPLIED: MutationStatus.APPLIED,
    MergeStatus.MERGED: MutationStatus.MERGED,
    MergeStatus.CONFLICT: MutationStatus.CONFLICT,
}


def mutation_status(merged: MergeResult) -> MutationStatus:
    """The status a device gets for ``merged`` (see the module table)."""
    status = _BY_MERGE.get(merged.status)
    if status is not None:
        return status
    return MutationStatus.MERGED if merged.superseded else MutationStatus.APPLIED


def mutation_result(
    mutation_id: str,
    merged: MergeResult,
    *,
    version: int | None,
    conflict_ids: list[str] | None = None,
) -> MutationResult:
    """The answer to one mutation whose merge gave ``merged``, at record ``version``."""
    status = mutation_status(merged)
    record = None
    if status in (MutationStatus.MERGED, MutationStatus.CONFLICT) and not merged.record.deleted:
        record = dict(merged.record.fields)
    # Every value is of its declared type here: built without validation (a push
    # answers a thousand of these).
    return construct_result(
        {
            "mutation_id": mutation_id,
            "status": status,
            "version": version,
            "error": None,
            "conflict_ids": list(conflict_ids or ()),
            "record": record,
        }
    )


def construct_result(values: dict[str, Any]) -> MutationResult:
    """``MutationResult.model_construct(**values)`` for ``values`` naming every field —
    what it sets, without its per-field loop (~2.5x cheaper; a push answers a thousand).
    ``tests/sync_protocol/test_result_construct.py`` holds the two equal."""
    if not _DIRECT:
        return MutationResult.model_construct(**values)
    result = _new(MutationResult)
    _set(result, "__dict__", values)
    _set(result, "__pydantic_fields_set__", set(_FIELDS))
    _set(result, "__pydantic_extra__", None)
    _set(result, "__pydantic_private__", None)
    return result


_new = object.__new__
_set = object.__setattr__
_FIELDS = tuple(MutationResult.model_fields)
_blank: dict[str, Any] = dict.fromkeys(_FIELDS)
_model = MutationResult.model_construct(**_blank)
#: The model keeps no extra or private attributes (else model_construct does more).
_DIRECT = (
    _model.__pydantic_extra__ is None
    and _model.__pydantic_private__ is None
    and list(_model.__dict__) == list(_FIELDS)
)
