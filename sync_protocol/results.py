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
    return MutationResult.model_construct(
        mutation_id=mutation_id,
        status=status,
        version=version,
        error=None,
        conflict_ids=list(conflict_ids or ()),
        record=record,
    )
