"""The one merge -> mutation answer rule (``sync_protocol.results``)."""

from __future__ import annotations

from sync_protocol import (
    CRM_SCHEMA,
    FieldClock,
    LocalEdit,
    MutationStatus,
    StoredRecord,
    merge_record,
    mutation_result,
    mutation_status,
)

CONTRACTS = CRM_SCHEMA["contracts"]
OTHER = "001700000000000:00000:dev-other"
MINE = "001700000001000:00000:dev-mine"


def _stored(fields: dict[str, object], version: int = 1) -> StoredRecord:
    return StoredRecord(fields=dict(fields), clocks={k: FieldClock(OTHER, version) for k in fields})


def test_a_new_record_is_applied_without_a_record_body() -> None:
    merged = merge_record(
        CONTRACTS, None, LocalEdit("upsert", {"amount": 5}, MINE), None, new_version=1
    )
    result = mutation_result("m1", merged, version=1)
    assert (result.status, result.record, result.version) == (MutationStatus.APPLIED, None, 1)


def test_an_edit_that_changes_nothing_is_applied_not_merged() -> None:
    """The disagreement the wire suite once found: the fake answered ``merged`` here."""
    remote = _stored({"amount": 5, "status": "draft"})
    edit = LocalEdit("upsert", {"amount": 5}, MINE, base_version=1, base={"amount": 5})
    merged = merge_record(CONTRACTS, {"amount": 5}, edit, remote, new_version=2)
    assert mutation_status(merged) is MutationStatus.APPLIED
    assert mutation_result("m1", merged, version=1).record is None


def test_a_superseded_edit_is_merged_with_the_servers_record() -> None:
    later = "009999999999999:00000:dev-other"
    remote = StoredRecord(fields={"status": "signed"}, clocks={"status": FieldClock(later, 3)})
    edit = LocalEdit("upsert", {"status": "draft"}, MINE, base_version=1, base={"status": "x"})
    merged = merge_record(CONTRACTS, {"status": "x"}, edit, remote, new_version=4)
    result = mutation_result("m1", merged, version=3)
    assert result.status is MutationStatus.MERGED
    assert result.record == {"status": "signed"}


def test_a_conflict_carries_the_record_and_its_conflict_ids() -> None:
    remote = _stored({"amount": 120}, version=2)
    edit = LocalEdit("upsert", {"amount": 150}, MINE, base_version=1, base={"amount": 100})
    merged = merge_record(CONTRACTS, {"amount": 100}, edit, remote, new_version=3)
    result = mutation_result("m1", merged, version=3, conflict_ids=["cf-1"])
    assert result.status is MutationStatus.CONFLICT
    assert result.record == {"amount": 120} and result.conflict_ids == ["cf-1"]
