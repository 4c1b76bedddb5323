"""Encodings a push writes out by hand instead of asking pydantic (issue 19): each must
be the very text pydantic would write."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from server.repository.push import stored_json
from server.repository.rows import canonical_json
from server.repository.units import _plain_canonical, mutation_digest
from sync_protocol import ErrorBody, ErrorCode, Mutation, MutationResult, MutationStatus

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


def _reference_digest(m: Mutation) -> str:
    """The digest as it was first written (and stored for every applied mutation since):
    ``json.dumps`` of the attributes, ``model_dump(mode="json")`` when that fails."""
    try:
        text = json.dumps(
            {name: getattr(m, name) for name in Mutation.model_fields},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
    except (TypeError, ValueError):
        text = json.dumps(
            m.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# Text with what JSON escapes (quotes, backslashes, control characters), what it keeps
# (U+2028, DEL, 张三, emoji) and lone surrogates (json.dumps writes them, pydantic-core
# refuses: the slow path must take over).
texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(['"', "\\", "\x00", "\x1f", "\x7f", "\u2028", "张三", "😀", "a\ud800", "/"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    # Floats Python's repr and pydantic-core write differently ("1e-07" / "1e-7").
    st.sampled_from([1e-07, 2.5e-05, 1e16, -0.0]),
    texts,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)),
    max_leaves=6,
)


@example(fields={"x": 1e-07}, base=None, tags=[], group=None, base_version=None)
@example(
    fields={"n": {"b": 1, "a": [2]}}, base={"z": 1, "a": "x"}, tags=["b"], group="g", base_version=3
)
@example(fields={"s": "a\ud800"}, base=None, tags=[], group=None, base_version=None)
@given(
    fields=st.dictionaries(texts, values, max_size=6),
    base=st.one_of(st.none(), st.dictionaries(texts, values, max_size=3)),
    tags=st.lists(texts, max_size=3),
    group=st.one_of(st.none(), texts),
    base_version=st.one_of(st.none(), st.integers(min_value=0, max_value=2**62)),
)
def test_the_mutation_digest_is_the_canonical_json_whichever_encoder_writes_it(
    fields: dict[str, Any],
    base: dict[str, Any] | None,
    tags: list[str],
    group: str | None,
    base_version: int | None,
) -> None:
    """pydantic-core writes the plain messages, json.dumps the others: the same bytes."""
    m = Mutation.model_construct(
        id="m1",
        collection="customers",
        record_id="c1",
        op="upsert",
        base_version=base_version,
        fields={**fields, "tags": tags},
        base=base,
        hlc="001764720000123:00001:dev-1",
        resolves=tags or None,
        group=group,
        override=None,
    )
    assert mutation_digest(m) == _reference_digest(m)


def test_a_customer_as_phones_send_it_takes_the_plain_path() -> None:
    """The common message is plain (else every push pays json.dumps)."""
    from bench.server_bench import distinct_customer

    m = Mutation(
        id="m1",
        collection="customers",
        record_id="c1",
        op="upsert",
        fields=distinct_customer(7),
        hlc="001764720000123:00001:dev-1",
    )
    assert _plain_canonical(m) is not None
    assert mutation_digest(m) == _reference_digest(m)


@example(value={"x": 1e-07})
@example(value={"b": "a\ud800", "a": 1})
@example(value={"z": ["张三", "\x00"], "a": None, "m": True, "n": -(2**70)})
@given(value=st.one_of(st.dictionaries(texts, values, max_size=6), values))
def test_a_records_data_is_json_dumps_whichever_encoder_writes_it(value: Any) -> None:
    """``records.data``: pydantic-core writes plain objects, json.dumps the rest."""
    assert canonical_json(value) == json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
