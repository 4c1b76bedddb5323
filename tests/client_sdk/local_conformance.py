"""The contract every local store honours (Kinto-style conformance suite).

A subclass provides a ``local`` fixture (an open, unlocked, empty store); every test here
then runs against it. ``test_local_store.py`` runs it for the SQLite file store and for
the in-memory store — the two implementations of :class:`client_sdk._local.LocalStore`.
"""

from __future__ import annotations

import itertools

import pytest

from client_sdk import StoreClosed
from client_sdk._engine.pull import PulledChange, PulledPage, plan_page
from client_sdk._engine.responses import Ack, PushPlan, Reject
from client_sdk._local import apply
from client_sdk._local.base import LocalStore
from client_sdk._rows import AttachmentRow, Pending, ServerCopy

HLC = "001700000000000:00000:dev-a"
_ids = itertools.count(1)


def entry(
    record_id: str, op: str = "upsert", *, group: str | None = None, **fields: object
) -> Pending:
    return Pending(
        seq=0,
        id=f"m-{next(_ids)}",
        collection="customers",
        record_id=record_id,
        op=op,
        fields=dict(fields),
        base={"name": "old"} if fields else None,
        base_version=1,
        hlc=HLC,
        created_at=100.0,
        group=group,
    )


class LocalStoreConformance:
    @pytest.fixture
    def local(self) -> LocalStore:
        raise NotImplementedError

    # -- meta ---------------------------------------------------------------------------
    def test_meta_values_and_secrets(self, local: LocalStore) -> None:
        assert local.meta.get("k") is None
        local.meta.set("k", b"v")
        assert local.meta.get("k") == b"v"
        local.meta.set("k", None)
        assert local.meta.get("k") is None
        local.meta.set_secret("tokens", {"access": "t", "n": [1, 2]})
        assert local.meta.get_secret("tokens") == {"access": "t", "n": [1, 2]}
        local.meta.set_secret("tokens", None)
        assert local.meta.get_secret("tokens") is None

    # -- transactions ---------------------------------------------------------------------
    def test_a_transaction_that_raises_leaves_nothing(self, local: LocalStore) -> None:
        local.meta.set("kept", b"1")
        with pytest.raises(RuntimeError), local.transaction():
            local.meta.set("kept", b"2")
            local.records.put("customers", "c1", ServerCopy({"name": "A"}, 1), 0)
            local.outbox.append(entry("c1", name="A"))
            with local.transaction():  # an inner block joins the outer one
                local.dead_letters.add(entry("c2"), {"code": "x"}, 1.0)
            raise RuntimeError("boom")
        assert local.meta.get("kept") == b"1"
        assert local.records.get("customers", "c1") is None
        assert local.outbox.entries() == [] and local.dead_letters.count() == 0

    # -- records --------------------------------------------------------------------------
    def test_records_put_get_scan_remove(self, local: LocalStore) -> None:
        local.records.put("customers", "c1", ServerCopy({"name": "张三"}, 3), 0)
        local.records.put_many(
            [("customers", "c2", 4, {"name": "B"}, None), ("tasks", "t1", 5, {}, None)], 0
        )
        assert local.records.get("customers", "c1") == ServerCopy({"name": "张三"}, 3, False)
        assert dict(local.records.scan("customers")) == {
            "c1": ServerCopy({"name": "张三"}, 3, False),
            "c2": ServerCopy({"name": "B"}, 4, False),
        }
        local.records.mark_deleted("customers", "c2", 6, 0)
        assert local.records.get("customers", "c2") == ServerCopy({"name": "B"}, 6, True)
        local.records.remove("customers", "c1")
        assert local.records.get("customers", "c1") is None
        local.records.clear()
        assert list(local.records.scan("tasks")) == []

    def test_scan_in_id_order_get_many_and_count(self, local: LocalStore) -> None:
        ids = [f"r{i:04d}" for i in range(1300)]  # more than one keyset batch
        local.records.put_many(
            [("customers", rid, 1, {"n": rid}, None) for rid in reversed(ids)], 0
        )
        local.records.put("tasks", "t1", ServerCopy({}, 1), 0)
        local.records.mark_deleted("customers", "r0007", 2, 0)
        assert [rid for rid, _ in local.records.scan("customers")] == ids
        assert local.records.count("customers") == 1299 and local.records.count("tasks") == 1
        got = local.records.get_many("customers", ["r0003", "r0007", "nope", *ids[600:1200]])
        assert set(got) == {"r0003", "r0007", *ids[600:1200]}
        assert got["r0003"] == ServerCopy({"n": "r0003"}, 1) and got["r0007"].deleted

    def test_search_segments(self, local: LocalStore) -> None:
        assert local.search.headers("customers") == []
        local.search.put("customers", 0, {"a": "王伟", "b": None})
        local.search.put("customers", 1, {"c": "x"})
        local.search.put("tasks", 0, {})
        assert local.search.headers("customers") == [(0, 2), (1, 1)]
        assert local.search.get("customers", 0) == {"a": "王伟", "b": None}
        assert local.search.get("customers", 9) == {}
        local.search.put("customers", 0, {"a": "新"})
        assert local.search.headers("customers") == [(0, 1), (1, 1)]
        with pytest.raises(RuntimeError), local.transaction():
            local.search.put("customers", 2, {"d": "gone"})
            raise RuntimeError("roll back")
        assert local.search.headers("customers") == [(0, 1), (1, 1)]
        local.search.clear("customers")
        assert local.search.headers("customers") == [] and local.search.headers("tasks") == [(0, 0)]
        local.search.clear()
        assert local.search.headers("tasks") == []

    def test_values_handed_out_are_copies(self, local: LocalStore) -> None:
        local.records.put("customers", "c1", ServerCopy({"tags": ["a"]}, 1), 0)
        got = local.records.get("customers", "c1")
        assert got is not None
        got.fields["tags"].append("b")
        assert local.records.get("customers", "c1") == ServerCopy({"tags": ["a"]}, 1)

    def test_drop_older_generations_keeps_what_is_asked(self, local: LocalStore) -> None:
        for rid, gen in (("old", 0), ("kept", 0), ("new", 1)):
            local.records.put("customers", rid, ServerCopy({}, 1), gen)
        assert local.records.drop_older(1, {("customers", "kept")}) == 1
        assert {rid for rid, _ in local.records.scan("customers")} == {"kept", "new"}

    # -- outbox ---------------------------------------------------------------------------
    def test_outbox_order_filters_and_summary(self, local: LocalStore) -> None:
        seqs = [local.outbox.append(entry(rid, name=rid)) for rid in ("a", "b", "a")]
        assert seqs == sorted(seqs) and len(set(seqs)) == 3
        assert [p.record_id for p in local.outbox.entries()] == ["a", "b", "a"]
        assert [p.seq for p in local.outbox.entries("customers", "a")] == [seqs[0], seqs[2]]
        assert local.outbox.entries("tasks") == []
        last = local.outbox.last()
        assert last is not None and last.seq == seqs[2] and last.fields == {"name": "a"}
        assert local.outbox.keys() == {("customers", "a"), ("customers", "b")}
        summary = local.outbox.summary()
        assert (summary.by_collection, summary.oldest_created_at, summary.last_seq) == (
            {"customers": 3},
            100.0,
            seqs[2],
        )

    def test_outbox_rewrite_mark_sent_remove(self, local: LocalStore) -> None:
        local.outbox.append(entry("a", name="x"))
        p = local.outbox.entries()[0]
        p.fields, p.base, p.hlc = {"name": "y"}, {"name": "z"}, "001700000000001:00000:dev-a"
        local.outbox.rewrite(p)
        (again,) = local.outbox.entries()
        assert (again.fields, again.base, again.hlc, again.sent) == (
            {"name": "y"},
            {"name": "z"},
            p.hlc,
            False,
        )
        local.outbox.mark_sent([again.seq])
        assert local.outbox.entries()[0].sent
        local.outbox.remove([again.seq])
        assert local.outbox.entries() == [] and local.outbox.summary().last_seq is None

    def test_head_never_cuts_a_group(self, local: LocalStore) -> None:
        local.outbox.append(entry("a", name="a"))
        for rid in ("g1", "g2", "g3"):
            local.outbox.append(entry(rid, group="grp", name=rid))
        local.outbox.append(entry("z", name="z"))
        assert [p.record_id for p in local.outbox.head(2)] == ["a", "g1", "g2", "g3"]
        assert [p.record_id for p in local.outbox.head(1)] == ["a"]

    def test_resolving_lists_conflicts_being_resolved(self, local: LocalStore) -> None:
        p = entry("a", name="a")
        p.resolves = ["cf-1", "cf-2"]
        local.outbox.append(p)
        assert local.outbox.resolving() == {"cf-1", "cf-2"}

    # -- dead letters ---------------------------------------------------------------------
    def test_dead_letters(self, local: LocalStore) -> None:
        local.dead_letters.add(entry("b", group="g", name="B"), {"code": "forbidden"}, 2.0)
        local.dead_letters.add(entry("a", name="A"), {"code": "validation_failed"}, 1.0)
        rows = local.dead_letters.all()
        assert [(d.record_id, d.error["code"], d.group) for d in rows] == [
            ("a", "validation_failed", None),
            ("b", "forbidden", "g"),
        ]
        assert rows[0].fields == {"name": "A"} and rows[0].base_version == 1
        assert local.dead_letters.remove(rows[0].id) and not local.dead_letters.remove("nope")
        assert local.dead_letters.count() == 1

    # -- attachments ----------------------------------------------------------------------
    def test_attachments(self, local: LocalStore) -> None:
        body = {"kind": "photo", "mime": "image/jpeg", "size": 3, "sha256": "0" * 64}
        for aid, state, at in (("a1", "queued", 2.0), ("a2", "complete", 1.0)):
            row = AttachmentRow(aid, "activities", "v1", state, 256, created_at=at, body=body)
            local.attachments.insert(row)
        assert [r.id for r in local.attachments.for_record("v1")] == ["a2", "a1"]
        assert local.attachments.for_record("v1", "tasks") == []
        assert [r.id for r in local.attachments.in_states(["queued"])] == ["a1"]
        assert local.attachments.counts() == {"queued": 1, "complete": 1}
        updated = local.attachments.update(
            "a1", state="uploading", uploaded_bytes=2, body={"error": None}
        )
        assert updated is not None and (updated.state, updated.uploaded_bytes) == ("uploading", 2)
        got = local.attachments.get("a1")
        assert got is not None and got.body == {**body, "error": None} and not got.registered
        assert local.attachments.update("missing", state="failed") is None
        assert local.attachments.remove("a2") and local.attachments.ids() == {"a1"}
        local.attachments.clear()
        assert local.attachments.ids() == set()

    # -- the engine's plans, carried out ----------------------------------------------------
    def test_apply_push_folds_acks_and_refusals_at_once(self, local: LocalStore) -> None:
        local.records.put("customers", "a", ServerCopy({"name": "old", "city": "X"}, 1), 0)
        for p in (entry("a", name="new"), entry("b", name="B"), entry("c", "delete")):
            local.outbox.append(p)
        a, b, c = local.outbox.entries()
        plan = PushPlan(
            acks=[Ack(a, "patch", {"name": "new"}, 2), Ack(c, "drop", None, None)],
            rejects=[Reject(b, {"code": "forbidden"})],
        )
        apply.apply_push(local, plan, at=5.0, hlc="001700000000009:00000:server")
        assert local.records.get("customers", "a") == ServerCopy({"name": "new", "city": "X"}, 2)
        assert local.outbox.entries() == []
        assert [d.record_id for d in local.dead_letters.all()] == ["b"]
        assert local.meta.get("hlc") == b"001700000000009:00000:server"

    def test_apply_page_with_its_checkpoint(self, local: LocalStore) -> None:
        local.records.put("customers", "gone", ServerCopy({"name": "G"}, 1), 0)
        local.records.put("customers", "waits", ServerCopy({"name": "W"}, 1), 0)
        local.records.put("customers", "left", ServerCopy({"name": "L"}, 1), 0)
        local.outbox.append(entry("waits", name="edit"))
        local.outbox.append(entry("left", name="edit"))
        page = PulledPage(
            [
                PulledChange("customers", "new", 5, "upsert", {"name": "N"}),
                PulledChange("customers", "gone", 6, "delete", None),
                PulledChange("customers", "waits", 7, "delete", None),
                PulledChange("customers", "left", 8, "evict", None),
            ],
            "cp-8",
            False,
            None,
            None,
        )
        plan = plan_page(page, local.outbox.keys())
        assert apply.apply_page(local, plan, at=9.0, hlc=None).dead_lettered == 1
        assert local.records.get("customers", "new") == ServerCopy({"name": "N"}, 5)
        assert local.records.get("customers", "gone") is None
        assert local.records.get("customers", "waits") == ServerCopy({"name": "W"}, 7, True)
        assert local.records.get("customers", "left") is None
        assert [p.record_id for p in local.outbox.entries()] == ["waits"]
        assert local.dead_letters.all()[0].error["details"] == {"evicted": True}
        assert apply.checkpoint(local) == "cp-8"

    def test_a_resync_drops_what_the_server_no_longer_sends(self, local: LocalStore) -> None:
        local.records.put("customers", "stale", ServerCopy({}, 1), 0)
        local.records.put("customers", "waiting", ServerCopy({}, 1), 0)
        local.outbox.append(entry("waiting", name="x"))
        apply.begin_resync(local)
        assert apply.checkpoint(local) is None
        local.records.put("customers", "again", ServerCopy({}, 2), apply.generation(local))
        assert apply.finish_resync(local) == 1
        assert {rid for rid, _ in local.records.scan("customers")} == {"waiting", "again"}
        assert apply.finish_resync(local) == 0

    def test_a_closed_store_refuses(self, local: LocalStore) -> None:
        local.close()
        assert local.closed
        with pytest.raises(StoreClosed):
            local.records.get("customers", "a")
