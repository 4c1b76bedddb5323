"""Table tests of the field-level merge: every policy, delete versus edit, carry-through."""

from __future__ import annotations

from typing import Any

import pytest

from sync_protocol import (
    DELETED_FIELD,
    MERGE_NODE,
    DeletePolicy,
    EntitySchema,
    FieldSpec,
    FieldType,
    MergeStatus,
    SchemaRegistry,
    merge_append,
    merge_record,
    merge_union,
)
from sync_protocol.merge import resolve_conflict_value

from .helpers import apply, delete, hlc, policy_entity, stored_at_v1, upsert

THINGS = policy_entity()

# --- last-writer-wins -------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote_at", "local_at", "winner"),
    [
        (hlc(0, "a"), hlc(5, "b"), "local"),  # later wall time wins
        (hlc(5, "a"), hlc(0, "b"), "remote"),  # an older concurrent write loses
        (hlc(0, "a", counter=3), hlc(0, "b", counter=4), "local"),  # counter breaks ties
        (hlc(0, "b", counter=1), hlc(0, "a", counter=1), "remote"),  # then device id ...
        (hlc(0, "a", counter=1), hlc(0, "b", counter=1), "local"),  # ... in both orders
    ],
)
def test_lww_greater_hlc_wins_with_device_id_tie_break(
    remote_at: str, local_at: str, winner: str
) -> None:
    record = stored_at_v1({"title": "base"})
    record = apply(THINGS, record, upsert({"title": "remote"}, remote_at), 2).record
    result = apply(THINGS, record, upsert({"title": "local"}, local_at), 3)
    assert result.record.fields["title"] == winner
    # a superseded write answers "merged": the device learns its value did not land
    assert result.status is (MergeStatus.APPLIED if winner == "local" else MergeStatus.MERGED)
    if winner == "remote":
        assert result.superseded == {"title"}
        assert result.record.clocks["title"].hlc == remote_at


def test_lww_is_independent_of_arrival_order() -> None:
    early, late = upsert({"title": "early"}, hlc(1, "a")), upsert({"title": "late"}, hlc(2, "b"))
    for first, second in ((early, late), (late, early)):
        record = stored_at_v1({"title": "base"})
        record = apply(THINGS, record, first, 2).record
        record = apply(THINGS, record, second, 3).record
        assert record.fields["title"] == "late"


def test_non_concurrent_edit_applies_whatever_its_hlc() -> None:
    """A device that saw version 2 edits after it: causality, not the clock, decides."""
    record = stored_at_v1({"title": "base"})
    record = apply(THINGS, record, upsert({"title": "v2"}, hlc(50, "a")), 2).record
    result = apply(THINGS, record, upsert({"title": "v3"}, hlc(10, "b"), base_version=2), 3)
    assert result.record.fields["title"] == "v3"
    assert result.status is MergeStatus.APPLIED


def test_a_devices_queued_edits_follow_each_other_despite_the_same_base_version() -> None:
    record = stored_at_v1({"title": "base", "amount": 1})
    first = upsert({"title": "one", "amount": 10}, hlc(1, "a"), base={"amount": 1})
    second = upsert({"title": "two", "amount": 20}, hlc(2, "a"), base={"amount": 1})
    record = apply(THINGS, record, first, 2).record
    result = apply(THINGS, record, second, 3)
    assert result.conflicts == []  # never a conflict with itself
    assert result.record.fields == {"title": "two", "amount": 20}
    # ... and the older one arriving late is superseded, not applied
    late = apply(THINGS, result.record, first, 4)
    assert late.record.fields == {"title": "two", "amount": 20}
    assert late.superseded == {"title", "amount"}


# --- server-wins, max -----------------------------------------------------------------


def test_server_wins_drops_a_concurrent_device_write_but_applies_a_causal_one() -> None:
    record = stored_at_v1({"owner_note": "base"})
    record = apply(THINGS, record, upsert({"owner_note": "server"}, hlc(1, "srv")), 2).record
    late_but_concurrent = apply(THINGS, record, upsert({"owner_note": "dev"}, hlc(9, "a")), 3)
    assert late_but_concurrent.record.fields["owner_note"] == "server"
    assert late_but_concurrent.superseded == {"owner_note"}
    causal = apply(THINGS, record, upsert({"owner_note": "dev"}, hlc(9, "a"), base_version=2), 3)
    assert causal.record.fields["owner_note"] == "dev"


@pytest.mark.parametrize(
    ("field", "remote", "local", "expected"),
    [
        ("score", 5, 7, 7),
        ("score", 7, 5, 7),
        ("score", None, 1, 1),
        ("score", 3, None, 3),
        # instants, not strings: 10:00+08:00 is 02:00Z, earlier than 03:00Z
        ("seen_at", "2024-11-23T03:00:00Z", "2024-11-23T10:00:00+08:00", "2024-11-23T03:00:00Z"),
        ("seen_at", "2024-11-23T10:00:00+08:00", "2024-11-23T03:00:00Z", "2024-11-23T03:00:00Z"),
    ],
)
def test_max_keeps_the_greater_value(field: str, remote: Any, local: Any, expected: Any) -> None:
    record = stored_at_v1({field: None})
    record = apply(THINGS, record, upsert({field: remote}, hlc(1, "b")), 2).record
    result = apply(THINGS, record, upsert({field: local}, hlc(2, "a")), 3)
    assert result.record.fields[field] == expected


def test_max_lets_a_device_lower_a_value_it_has_seen() -> None:
    record = stored_at_v1({"score": 9})
    result = apply(THINGS, record, upsert({"score": 2}, hlc(1, "a"), base_version=1), 2)
    assert result.record.fields["score"] == 2


# --- union, append ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "local", "remote", "expected"),
    [
        (["a"], ["a", "b"], ["a", "c"], ["a", "c", "b"]),  # both additions kept
        (["a", "b"], ["b"], ["a", "b", "c"], ["b", "c"]),  # a removal is honoured
        (["a"], ["a"], ["a", "c"], ["a", "c"]),  # nothing changed locally
        (None, ["x"], ["y"], ["y", "x"]),  # no base: a plain union
        (["a"], [], [], []),  # removed on both sides
    ],
)
def test_union(base: Any, local: Any, remote: Any, expected: Any) -> None:
    assert merge_union(base, local, remote) == expected
    record = stored_at_v1({"tags": base or []})
    record = apply(THINGS, record, upsert({"tags": remote}, hlc(1, "b")), 2).record
    result = apply(THINGS, record, upsert({"tags": local}, hlc(2, "a"), base={"tags": base}), 3)
    assert result.record.fields["tags"] == expected


def test_a_combined_union_is_stamped_on_the_merge_node() -> None:
    record = stored_at_v1({"tags": []})
    record = apply(
        THINGS, record, upsert({"tags": ["x"]}, hlc(1, "a"), base={"tags": []}), 2
    ).record
    merged = apply(THINGS, record, upsert({"tags": ["y"]}, hlc(2, "b"), base={"tags": []}), 3)
    assert merged.record.fields["tags"] == ["x", "y"]
    assert merged.record.clocks["tags"].hlc.endswith(":" + MERGE_NODE)
    # so a's next queued edit (removing x, same stale base) is not mistaken as following
    # the combined value: b's y survives
    after = apply(THINGS, merged.record, upsert({"tags": []}, hlc(3, "a"), base={"tags": ["x"]}), 4)
    assert after.record.fields["tags"] == ["y"]


@pytest.mark.parametrize(
    ("base", "local", "remote", "expected"),
    [
        ("a", "a\nmine", "a\ntheirs", "a\ntheirs\nmine"),
        ("", "mine", "", "mine"),
        ("", "mine", "theirs", "theirs\nmine"),
        ("a", "a", "a\ntheirs", "a\ntheirs"),  # nothing appended
        ("a", "rewritten", "a\ntheirs", "a\ntheirs\nrewritten"),  # a rewrite is kept whole
        ("", "one\ntwo", "one", "one\ntwo"),  # own earlier queued append not repeated
        ("", "one\ntwo", "one\ntheirs", "one\ntheirs\ntwo"),
        ("a", "a\nmine", "a\nmine", "a\nmine"),  # a retried append is not doubled
    ],
)
def test_append(base: str, local: str, remote: str, expected: str) -> None:
    assert merge_append(base, local, remote) == expected


def test_append_through_merge_record() -> None:
    record = stored_at_v1({"notes": "called"})
    record = apply(THINGS, record, upsert({"notes": "called\nvisit"}, hlc(1, "b")), 2).record
    result = apply(
        THINGS, record, upsert({"notes": "called\nemail"}, hlc(2, "a"), base={"notes": "called"}), 3
    )
    assert result.record.fields["notes"] == "called\nvisit\nemail"
    assert result.status is MergeStatus.MERGED


# --- manual -----------------------------------------------------------------------------


def test_manual_concurrent_change_becomes_a_conflict_with_base_local_and_remote() -> None:
    record = stored_at_v1({"amount": 100})
    record = apply(THINGS, record, upsert({"amount": 120}, hlc(1, "b")), 2).record
    result = apply(
        THINGS, record, upsert({"amount": 150, "title": "t"}, hlc(2, "a"), base={"amount": 100}), 3
    )
    assert result.status is MergeStatus.CONFLICT
    assert result.record.fields["amount"] == 120  # the server keeps its value
    assert result.record.fields["title"] == "t"  # other fields still land
    (conflict,) = result.conflicts
    assert (conflict.field, conflict.base, conflict.local, conflict.remote) == (
        "amount",
        100,
        150,
        120,
    )
    assert conflict.local_hlc == hlc(2, "a") and conflict.remote_hlc == hlc(1, "b")
    assert resolve_conflict_value("local", conflict) == 150
    assert resolve_conflict_value("remote", conflict) == 120
    assert resolve_conflict_value("value", conflict, 135) == 135


@pytest.mark.parametrize(
    ("base", "remote", "local", "expected", "conflict"),
    [
        (100, 100, 150, 150, False),  # server unchanged since base: applies
        (100, 120, 100, 120, False),  # device did not change it: server's stands
        (100, 120, 120, 120, False),  # both made the same change
        (100, 120, 150, 120, True),
    ],
)
def test_manual_only_conflicts_when_both_sides_changed(
    base: int, remote: int, local: int, expected: int, conflict: bool
) -> None:
    record = stored_at_v1({"amount": base})
    if remote != base:
        record = apply(THINGS, record, upsert({"amount": remote}, hlc(1, "b")), 2).record
    else:
        record = apply(THINGS, record, upsert({"title": "x"}, hlc(1, "b")), 2).record
    result = apply(THINGS, record, upsert({"amount": local}, hlc(2, "a"), base={"amount": base}), 3)
    assert result.record.fields["amount"] == expected
    assert bool(result.conflicts) is conflict


# --- delete versus edit ----------------------------------------------------------------


def _both_orders(policy: DeletePolicy) -> dict[str, Any]:
    """Device a edits, device b deletes, both from version 1; merged in both orders."""
    schema = policy_entity(policy)
    edit = upsert({"title": "edited", "amount": 5}, hlc(2, "a"), base={"amount": 1})
    gone = delete(hlc(1, "b"))
    out: dict[str, Any] = {}
    for name, order in (("edit_first", (edit, gone)), ("delete_first", (gone, edit))):
        record = stored_at_v1({"title": "orig", "amount": 1})
        conflicts = []
        for version, mutation in enumerate(order, start=2):
            result = merge_record(schema, None, mutation, record, new_version=version)
            record = result.record
            conflicts += result.conflicts
        out[name] = (record, conflicts)
    return out


def test_edit_wins_keeps_the_edited_record_in_both_orders() -> None:
    for record, conflicts in _both_orders(DeletePolicy.EDIT_WINS).values():
        assert not record.deleted
        assert record.fields == {"title": "edited", "amount": 5}
        assert conflicts == []


def test_delete_wins_deletes_but_keeps_the_edit_in_conflicts_in_both_orders() -> None:
    for record, conflicts in _both_orders(DeletePolicy.DELETE_WINS).values():
        assert record.deleted
        by_field = {c.field: c for c in conflicts}
        assert DELETED_FIELD in by_field
        # the edited values are never silently lost
        assert {"edited", 5} <= {by_field["title"].local, by_field["title"].remote} | {
            by_field["amount"].local,
            by_field["amount"].remote,
        }


def test_manual_delete_keeps_the_record_alive_and_asks_in_both_orders() -> None:
    results = _both_orders(DeletePolicy.MANUAL)
    for record, conflicts in results.values():
        assert not record.deleted
        assert record.fields == {"title": "edited", "amount": 5}
        assert [c.field for c in conflicts] == [DELETED_FIELD]
    (edit_first,) = results["edit_first"][1]
    assert (edit_first.local, edit_first.remote) == (True, False)  # the pusher deleted
    (delete_first,) = results["delete_first"][1]
    assert (delete_first.local, delete_first.remote) == (False, True)  # the server had


def test_a_devices_own_earlier_edit_does_not_block_its_delete() -> None:
    record = stored_at_v1({"title": "orig"})
    record = apply(THINGS, record, upsert({"title": "mine"}, hlc(1, "a")), 2).record
    result = apply(THINGS, record, delete(hlc(2, "a")), 3)
    assert result.record.deleted
    assert result.status is MergeStatus.APPLIED


def test_delete_of_an_already_deleted_record_changes_nothing() -> None:
    record = stored_at_v1({"title": "orig"})
    record = apply(THINGS, record, delete(hlc(1, "a")), 2).record
    result = apply(THINGS, record, delete(hlc(2, "b")), 3)
    assert result.record.deleted and result.status is MergeStatus.UNCHANGED


def test_recreating_after_seeing_the_delete_restores_the_record() -> None:
    schema = policy_entity(DeletePolicy.DELETE_WINS)
    record = stored_at_v1({"title": "orig"})
    record = merge_record(schema, None, delete(hlc(1, "a")), record, new_version=2).record
    result = merge_record(
        schema, None, upsert({"title": "back"}, hlc(2, "b"), base_version=2), record, new_version=3
    )
    assert not result.record.deleted and result.record.fields["title"] == "back"
    assert result.existence_changed and not result.conflicts


# --- schema evolution: unknown fields carried through ------------------------------------


def test_an_old_client_patch_keeps_a_field_it_does_not_know() -> None:
    v2 = SchemaRegistry(
        version=2,
        entities={
            "things": EntitySchema(
                name="things",
                fields={
                    "title": FieldSpec(FieldType.STRING, required=True),
                    "rating": FieldSpec(FieldType.INTEGER, added_in=2),
                },
            )
        },
    )
    v1 = v2.as_of(1)
    assert "rating" not in v1["things"].fields and v1.version == 1
    record = merge_record(
        v2["things"], None, upsert({"title": "t", "rating": 4}, hlc(0, "new")), None, new_version=1
    ).record
    patch = {"title": "renamed"}
    assert v1["things"].validate(patch, partial=True) == []
    # the server merges with its own (v2) schema; a v1 merge must keep it too
    for schema in (v2["things"], v1["things"]):
        result = merge_record(schema, None, upsert(patch, hlc(1, "old")), record, new_version=2)
        assert result.record.fields == {"title": "renamed", "rating": 4}
    # an old client that echoes the whole record back (with the unknown field) keeps it
    echoed = merge_record(
        v1["things"],
        None,
        upsert({"title": "again", "rating": 4}, hlc(2, "old"), base_version=1),
        record,
        new_version=3,
    )
    assert echoed.record.fields["rating"] == 4


def test_as_of_hides_entities_added_later() -> None:
    registry = SchemaRegistry(
        version=2,
        entities={
            "a": EntitySchema(name="a", fields={}),
            "b": EntitySchema(name="b", fields={}, added_in=2),
        },
        extra={"k": 1},
    )
    assert set(registry.as_of(1).entities) == {"a"}
    assert set(registry.as_of(2).entities) == {"a", "b"}
    assert registry.as_of(1).extra == {"k": 1}


# --- status and inputs -------------------------------------------------------------------


def test_create_delete_and_inputs_untouched() -> None:
    created = merge_record(THINGS, None, upsert({"title": "n"}, hlc(0, "a")), None, new_version=7)
    assert created.status is MergeStatus.APPLIED and created.existence_changed
    assert created.record.clocks["title"].version == 7
    before = created.record.copy()
    merge_record(THINGS, None, upsert({"title": "m"}, hlc(1, "b")), created.record, new_version=8)
    assert created.record == before  # merge_record never mutates its inputs
    tomb = merge_record(THINGS, None, delete(hlc(0, "a")), None, new_version=3)
    assert tomb.record.deleted and tomb.record.deleted_clock is not None
    assert tomb.record.last_version == 3


@pytest.mark.parametrize("policy", list(DeletePolicy))
def test_an_edit_that_loses_every_field_does_not_resurrect_a_deleted_record(
    policy: DeletePolicy,
) -> None:
    """Device a edits (late HLC) then deletes; b's older edit of the same field arrives
    after the delete. It would lose to a's value anyway, so the delete stands — as it
    does when b's edit arrives first."""
    schema = policy_entity(policy)
    record = stored_at_v1({"title": "orig"})
    edited = merge_record(schema, None, upsert({"title": "a"}, hlc(5, "a")), record, new_version=2)
    gone = merge_record(schema, None, delete(hlc(6, "a")), edited.record, new_version=3)
    late = merge_record(
        schema, None, upsert({"title": "b"}, hlc(1, "b")), gone.record, new_version=4
    )
    assert late.record.deleted and late.conflicts == []
    assert late.superseded == {"title"} and late.status is MergeStatus.MERGED


def test_a_clamped_devices_equal_timestamps_apply_in_queue_order() -> None:
    """Clamping gives all of a skewed device's edits in one push the same HLC."""
    same = hlc(300_000, "fast")
    record = stored_at_v1({"title": "orig", "tags": []})
    for version, title in enumerate(("first", "second", "third"), start=2):
        record = apply(THINGS, record, upsert({"title": title}, same), version).record
    assert record.fields["title"] == "third"
