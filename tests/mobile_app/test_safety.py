"""Every path that could lose a rep's work, and the proof that nothing is discarded
without the rep's explicit choice (sign-out, switch user, refused writes, reassignment,
delete). Real encrypted stores; the SDK's fake server."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from mobile_app.demo import DemoWorld
from mobile_app.viewmodels.account import Account, AccountFiles
from mobile_app.viewmodels.inbox import RejectedWritesViewModel, remember_names
from mobile_app.viewmodels.safety import SignOutViewModel, loss_summary
from mobile_app.viewmodels.settings import erase_session
from mobile_app.viewmodels.sync_bar import SyncBarViewModel
from mobile_app.viewmodels.visit import LogVisitViewModel


def _sign_out_vm(world: DemoWorld, tmp_path: Path) -> tuple[SignOutViewModel, AccountFiles]:
    files = AccountFiles(tmp_path / "acct")
    files.save(Account(server_url="demo://fake", username="rep1"))
    vm = SignOutViewModel(
        world.session,
        wipe=lambda: erase_session(world.session, files),
        export_folder=tmp_path / "exports",
    )
    return vm, files


def test_sign_out_shows_what_would_be_lost_and_refuses_without_a_choice(
    world: DemoWorld, tmp_path: Path
) -> None:
    world.session.tr.set_language("en")
    vm, files = _sign_out_vm(world, tmp_path)
    summary = vm.summary
    # the unsent visit (activity + task + customer follow-up), a refused write, 2 conflicts
    assert summary.pending == {"activities": 1, "customers": 1, "tasks": 1}
    assert summary.rejected == 1 and summary.conflicts == 2
    assert vm.lines == [
        "1 unsent change(s) to Activity",
        "1 unsent change(s) to Customer",
        "1 unsent change(s) to Task",
        "1 write(s) the server refused",
        "2 conflict(s) not decided",
    ]
    for _ in range(3):  # tapping Sign out again and again is not a choice
        assert vm.sign_out() is False
    assert "would erase work" in vm.error
    assert not world.session.store.closed and files.load() is not None
    assert world.session.store.status().pending_total == 3


def test_export_keeps_every_unsent_write_refused_write_and_conflict(
    world: DemoWorld, tmp_path: Path
) -> None:
    vm, _files = _sign_out_vm(world, tmp_path)
    path = vm.export()
    assert path is not None and path.is_file() and path.suffix == ".zip"
    with zipfile.ZipFile(path) as archive:  # the SDK's export: unsent.json + photos/
        body = json.loads(archive.read("unsent.json"))
    pending = body["pending_writes"]
    notes = [p["fields"].get("notes") for p in pending if p["collection"] == "activities"]
    assert notes == ["带样品拜访，客户希望下周看方案。"]
    assert [r["fields"]["name"] for r in body["rejected_writes"]] == [
        "Pacific Rim Imports & Exports Holdings (HK) Ltd"
    ]
    assert {c["field"] for c in body["open_conflicts"]} == {"amount", "ends_on"}
    assert vm.sign_out() is False  # exporting is not signing out


def test_sync_first_then_sign_out_erases_only_what_the_server_has(
    world: DemoWorld, tmp_path: Path
) -> None:
    vm, files = _sign_out_vm(world, tmp_path)
    store = world.session.store
    for conflict in store.conflicts():
        store.resolve_conflict(conflict.id, "remote")
    for dead in store.dead_letters():
        store.retry_dead_letter(dead.id, {**dead.fields, "name": "Pacific Rim"})
    assert vm.sync_first() is True and vm.summary.empty
    assert vm.sign_out() is True and store.closed and files.load() is None


def test_discard_is_an_explicit_separate_choice(world: DemoWorld, tmp_path: Path) -> None:
    vm, files = _sign_out_vm(world, tmp_path)
    assert vm.sign_out(discard=True) is True
    assert world.session.store.closed and files.load() is None


def test_unsent_photos_count_as_work_that_would_be_lost(world: DemoWorld, tmp_path: Path) -> None:
    from mobile_app.demo import demo_photos

    before = loss_summary(world.session).photos
    demo_photos(world.session, world.pending_visit, tmp_path / "photos")
    assert loss_summary(world.session).photos == before + 3  # queued, uploading, failed


def test_reassigned_customer_the_refused_note_is_named_and_kept_as_a_note(
    world: DemoWorld,
) -> None:
    session = world.session
    session.tr.set_language("en")
    store = session.store
    customer = world.ids.customers["张三"]
    store.collection("customers").update(customer, {"notes": "客户要求 9 折，下周回复"})
    world.server.evict("customers", customer)  # reassigned to a colleague meanwhile
    remember_names(session)  # the app does this before every sync
    session.client.sync()
    assert store.collection("customers").get(customer) is None
    vm = RejectedWritesViewModel(session)
    vm.refresh()
    row = next(r for r in vm.rows if r.record_id == customer)
    assert row.title == "Customer · 张三"  # a name, never an id
    assert row.reason.startswith("This Customer is no longer yours to change")
    assert row.actions == ("keep", "discard")  # no "fix & retry": it cannot succeed
    assert vm.retry(row.id) is False
    assert any(d.id == row.id for d in store.dead_letters())
    bar = SyncBarViewModel(session)
    bar.refresh()
    before = bar.rejected
    assert vm.keep_as_note(row.id) is True
    assert [k.text for k in vm.kept] == ["客户要求 9 折，下周回复"]
    assert row.id not in [r.id for r in vm.rows]
    assert any(d.id == row.id for d in store.dead_letters()), "kept, still encrypted on the phone"
    bar.refresh()
    assert bar.rejected == before - 1  # a kept note waits for nobody
    assert loss_summary(session).rejected >= 1  # but signing out would still lose it
    bar.close()


def test_a_visit_to_a_reassigned_customer_is_kept_not_retried(world: DemoWorld) -> None:
    session = world.session
    session.tr.set_language("zh")
    customer = world.ids.customers["李四"]
    visit = LogVisitViewModel(session, customer)
    visit.notes = "见到采购经理，约下周演示"
    assert visit.save()
    world.server.evict("customers", customer)
    remember_names(session)
    session.client.sync()
    vm = RejectedWritesViewModel(session)
    vm.refresh()
    mine = [r for r in vm.rows if r.raw.get("customer_id") == customer or r.record_id == customer]
    assert mine, "the customer's pending writes moved to the refused list"
    for row in mine:
        assert "李四" in row.title and "demo" not in row.title
        assert "fix" not in row.actions


def test_first_run_sets_an_unnamed_store_aside_instead_of_deleting_it(tmp_path: Path) -> None:
    from client_sdk.testing import FakeServer
    from mobile_app.i18n import Translator
    from mobile_app.viewmodels.account import Backend, FirstRunViewModel, sdk_backend

    server = FakeServer(users={"rep1": "fieldsync-demo"})
    real = sdk_backend(fast_kdf=True)
    backend = Backend(
        open_store=real.open_store,
        make_client=lambda store, _url: __import__("client_sdk").SyncClient(
            store, server.transport()
        ),
    )
    files = AccountFiles(tmp_path / "phone")
    files.data_dir.mkdir(parents=True)
    old = real.open_store(files.store_path, "old-passphrase")
    old.collection("customers").insert({"name": "没同步的客户", "status": "potential"})
    old.close()  # and account.json is gone (a reinstall, a bad restore)
    first = FirstRunViewModel(backend, files, Translator("en"))
    first.username, first.password = "rep1", "fieldsync-demo"
    first.passphrase = first.passphrase_again = "new-passphrase"
    session = first.submit()
    assert session is not None, first.error
    session.store.close()
    [kept] = files.data_dir.glob("kept-*")
    again = real.open_store(kept / "fieldsync.db", "old-passphrase")
    assert [r.fields["name"] for r in again.collection("customers").all()] == ["没同步的客户"]
    again.close()


def test_past_the_offline_lease_the_rep_signs_in_again_on_the_same_store(
    world: DemoWorld,
) -> None:
    from mobile_app.viewmodels.account import ReloginViewModel

    session = world.session
    session.tr.set_language("en")
    before = session.store.status().pending_total
    vm = ReloginViewModel(session)
    assert vm.submit() is False and vm.error == "Fill in Password."
    vm.password = "wrong"
    assert vm.submit() is False and vm.error == "Wrong username or password."
    vm.password = "fieldsync-demo"
    assert vm.submit() is True and vm.error == ""
    assert not session.store.closed
    assert session.store.status().pending_total == before  # the same store, work intact


def _leave_only(world: DemoWorld, kind: str, tmp_path: Path) -> None:
    """Settle everything on the phone except one kind of unsent work."""
    store = world.session.store
    if kind != "conflicts":
        for conflict in store.conflicts():
            store.resolve_conflict(conflict.id, "remote")
    if kind != "rejected":
        for dead in store.dead_letters():
            store.retry_dead_letter(dead.id, {**dead.fields, "name": "Pacific Rim"})
    world.session.client.sync()
    if kind == "pending":
        store.collection("customers").insert({"name": "离线新客户", "status": "potential"})
    if kind == "photos":
        from mobile_app.demo import demo_photos

        demo_photos(world.session, world.pending_visit, tmp_path / "photos")


@pytest.mark.parametrize("kind", ["pending", "rejected", "conflicts", "photos"])
def test_each_kind_of_unsent_work_alone_stops_sign_out_until_the_rep_chooses(
    world: DemoWorld, tmp_path: Path, kind: str
) -> None:
    """Unsent writes, refused writes, open conflicts, unsent photos: any one of them on
    its own is enough to refuse a sign-out (or switch of user), is in the export, and
    goes only when the rep picks "discard"."""
    _leave_only(world, kind, tmp_path)
    vm, files = _sign_out_vm(world, tmp_path)
    summary = vm.summary
    counts = {
        "pending": summary.pending_total,
        "rejected": summary.rejected,
        "conflicts": summary.conflicts,
        "photos": summary.photos,
    }
    assert {k for k, n in counts.items() if n} == {kind}, counts
    assert vm.sign_out() is False and not world.session.store.closed
    assert files.load() is not None
    path = vm.export()
    assert path is not None
    with zipfile.ZipFile(path) as archive:
        body = json.loads(archive.read("unsent.json"))
        photos = [n for n in archive.namelist() if n != "unsent.json"]
    exported = {
        "pending": len(body["pending_writes"]),
        "rejected": len(body["rejected_writes"]),
        "conflicts": len(body["open_conflicts"]),
        "photos": len(photos),
    }
    assert exported[kind] >= counts[kind] > 0, exported
    assert vm.sign_out() is False  # exporting is not a choice to discard
    assert vm.sign_out(discard=True) is True
    assert world.session.store.closed and files.load() is None
