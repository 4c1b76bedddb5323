"""Encodings a push writes out by hand instead of asking pydantic (issue 19): each must
be the very text pydantic would write."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.repository.push import stored_json
from sync_protocol import ErrorBody, ErrorCode, MutationResult, MutationStatus

ids = st.one_of(
    st.from_regex(r"[A-Za-z0-9_\-.:]{1,64}", fullmatch=True),
    # Anything a Python caller might build: JSON must escape or keep it as pydantic does.
    st.sampled_from(['a"b', "a\\b", "张三", "a\nb", "", "x" * 65, "\u2028", "a/b", "\x7f"]),
    st.text(max_size=70),
)
errors = st.one_of(
    st.none(),
    st.builds(
        ErrorBody,
        code=st.sampled_from(list(ErrorCode)),
        message=st.text(max_size=20),
        details=st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    ),
)


@given(
    mutation_id=ids,
    status=st.sampled_from(list(MutationStatus)),
    version=st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    conflict_ids=st.lists(st.text(max_size=8), max_size=2),
    error=errors,
    record=st.one_of(st.none(), st.just({"name": "张三"})),
)
def test_the_stored_result_is_pydantics_json(
    mutation_id: str,
    status: MutationStatus,
    version: int | None,
    conflict_ids: list[str],
    error: ErrorBody | None,
    record: dict[str, str] | None,
) -> None:
    result = MutationResult.model_construct(
        mutation_id=mutation_id,
        status=status,
        version=version,
        error=error,
        conflict_ids=conflict_ids,
        record=record,
    )
    assert stored_json(result) == result.model_dump_json(exclude={"record"})
    # ... and it reads back as the same answer (a retry's duplicate).
    back = MutationResult.model_validate_json(stored_json(result))
    assert back.model_dump(exclude={"record"}) == result.model_dump(exclude={"record"})
