"""``construct_result``: ``MutationResult.model_construct`` without its per-field loop
(a push builds a thousand results). It must build the very same model."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sync_protocol import ErrorBody, ErrorCode, MutationResult, MutationStatus
from sync_protocol.results import construct_result

CASES: list[dict[str, Any]] = [
    {
        "mutation_id": "m1",
        "status": MutationStatus.APPLIED,
        "version": 7,
        "error": None,
        "conflict_ids": [],
        "record": None,
    },
    {
        "mutation_id": "m-2",
        "status": MutationStatus.CONFLICT,
        "version": None,
        "error": None,
        "conflict_ids": ["x1", "x2"],
        "record": {"name": "张三", "n": 1.5, "tags": ["a"]},
    },
    {
        "mutation_id": "m3",
        "status": MutationStatus.REJECTED,
        "version": None,
        "error": ErrorBody(code=ErrorCode.FORBIDDEN, message="no", details={"a": 1}),
        "conflict_ids": [],
        "record": None,
    },
]


@pytest.mark.parametrize("values", CASES)
def test_construct_result_is_model_construct(values: dict[str, Any]) -> None:
    ours = construct_result(dict(values))
    theirs = MutationResult.model_construct(**values)
    assert type(ours) is MutationResult
    assert ours == theirs
    assert ours.__dict__ == theirs.__dict__
    assert ours.model_fields_set == theirs.model_fields_set
    assert ours.__pydantic_extra__ == theirs.__pydantic_extra__
    assert ours.__pydantic_private__ == theirs.__pydantic_private__
    assert ours.model_dump_json() == theirs.model_dump_json()
    assert ours.model_dump_json(exclude_unset=True) == theirs.model_dump_json(exclude_unset=True)
    # Copies and updates behave alike (a retry answers a stored result's copy).
    update = {"status": MutationStatus.DUPLICATE}
    assert ours.model_copy(update=update) == theirs.model_copy(update=update)
    assert copy.deepcopy(ours) == theirs
    # Each result owns its set of fields set (one changed leaves the others alone).
    other = construct_result(dict(values))
    ours.model_fields_set.discard("record")
    assert "record" in other.model_fields_set
