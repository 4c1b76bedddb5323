"""A group the real server refuses: explained on the phone, nothing lost, settled by choice.

Two leads of the rep's are converted on the phone (each conversion one group: customer,
contact, deal, lead), a call is logged on the first new customer, and a lead from a
business card is saved although the phone warned that its number is a customer's.
Before the phone syncs, the manager enters both converted companies as customers: the
first for this rep, the second for a colleague; and converts a third lead the rep
converted too. The server refuses each new customer (and the business-card lead) as
``possible_duplicate``, with each customer the rest of its group (all or nothing), the
third conversion as ``already_converted`` (no "fix" can cure that: discard only), and
the call (its customer does not exist). The rep reads
why, in Chinese, with the existing record's name (the colleague's is not named);
nothing is gone from the phone. The rep adds the first conversion to the existing
customer and keeps the second (a different company) and the lead; after the next sync
the manager API shows every record where the rep chose. The choices are taps on the
real rejected-writes screen (offscreen Kivy window).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mobile_app.i18n import Translator
from mobile_app.viewmodels.account import (
    AccountFiles,
    FirstRunViewModel,
    InitialSyncViewModel,
    sdk_backend,
)
from mobile_app.viewmodels.activities import LogActivityViewModel
from mobile_app.viewmodels.inbox import RejectedWritesViewModel
from mobile_app.viewmodels.leads import LeadConvertViewModel, LeadFormViewModel
from mobile_app.viewmodels.safety import loss_summary
from mobile_app.viewmodels.settings import SettingsViewModel
from tests.support.server_proc import ServerProcess

from .conftest import AppDriver
from .test_e2e_day import Manager

pytestmark = [pytest.mark.e2e, pytest.mark.app]


def test_a_refused_conversion_is_explained_kept_and_settled_by_the_reps_choice(
    sqlite_url: str, tmp_path: Path, kivy_app: AppDriver
) -> None:
    server = ServerProcess(
        sqlite_url, seed_demo=True, demo_customers=12, log_path=tmp_path / "server.log"
    )
    server.start()
    try:
        manager = Manager(server.url)
        lead_a = manager.create(
            "leads",
            {
                "name": "赵海",
                "company": "青岛海鸥五金",
                "phone": "+86 135 0000 7001",
                "status": "qualified",
            },
            owner_id="u-rep1",
        )
        lead_b = manager.create(
            "leads",
            {"name": "钱江", "company": "江南机电", "phone": "+86 135 0000 7002", "status": "new"},
            owner_id="u-rep1",
        )
        lead_c = manager.create(
            "leads",
            {
                "name": "孙强",
                "company": "南京孙氏电子",
                "phone": "+86 135 0000 7003",
                "status": "new",
            },
            owner_id="u-rep1",
        )

        tr = Translator("zh")
        backend = sdk_backend("e2e phone", fast_kdf=True, max_attempts=1)
        first = FirstRunViewModel(backend, AccountFiles(tmp_path / "phone"), tr)
        first.server_url = server.url
        first.username, first.password = "rep1", "fieldsync-demo"
        first.passphrase = first.passphrase_again = "e2e-passphrase"
        session = first.submit()
        assert session is not None, first.error
        assert InitialSyncViewModel(session).run()
        store = session.store

        conversions = {}
        for lead_id in (lead_a, lead_b, lead_c):
            convert = LeadConvertViewModel(session, lead_id)
            assert not convert.matches  # nothing like it on the phone yet
            convert.deal_name, convert.amount = f"{convert.customer_name} 首单", "50000"
            assert convert.convert(), convert.errors
            conversions[lead_id] = convert.result
        a = conversions[lead_a]
        call = LogActivityViewModel(session, a["customer"], "call")
        call.notes = "电话确认了样品数量"
        assert call.save(), call.errors
        # a lead from a business card: the phone warns it is a customer's number already
        known = next(
            c
            for c in store.collection("customers").all()
            if c.fields.get("mobile") and not c.pending
        )
        card = LeadFormViewModel(session)
        card.set("name", "名片线索")
        card.set("phone", str(known.fields["mobile"]))
        assert card.save() is False and card.message  # warned on the phone ...
        assert card.save() is True  # ... and saved anyway: the rep knows better

        # meanwhile, in the office: both companies entered as customers
        existing = manager.create(
            "customers",
            {"name": "青岛海鸥五金有限公司", "status": "intent", "phone": "13500007001"},
            owner_id="u-rep1",
        )
        manager.create(
            "customers",
            {"name": "江南机电设备", "status": "potential", "phone": "+8613500007002"},
            owner_id="u-rep2",
        )
        # ... and the third lead converted there, into a customer the rep already has
        office_customer = known.id
        manager.convert(lead_c, office_customer)

        settings = SettingsViewModel(session)
        settings.sync_now()
        vm = RejectedWritesViewModel(session)
        vm.refresh()
        rows = {}
        for r in vm.rows:  # the refused creation first, a later change to it after
            rows.setdefault(r.record_id, r)
        assert a["customer"] in rows and conversions[lead_b]["customer"] in rows

        # the whole group was refused, on the server nothing of it exists
        assert manager.status("contacts", a["contact"]) == 404
        assert manager.get("leads", lead_a)["status"] != "converted"
        # ... and on the phone nothing is lost: every write waits for the rep's choice
        # 3 × (customer, contact, deal, lead), the call and its "last contacted" on the
        # customer, the business-card lead
        assert len(store.dead_letters()) == 15
        assert loss_summary(session).rejected == 15

        mine = rows[a["customer"]]
        assert mine.code == "possible_duplicate"
        assert "「青岛海鸥五金有限公司」" in mine.reason and "电话相同" in mine.reason
        assert not re.search(r"[A-Za-z]{4,}", mine.reason), mine.reason  # no server English
        assert mine.actions == ("keep_anyway", "use_existing", "discard")
        for record_id in (a["contact"], a["opportunity"]):
            waiting = rows[record_id]
            assert waiting.actions == () and "青岛海鸥五金" in waiting.reason
        assert rows[lead_a].actions == ()
        assert rows[call.activity_id].title.endswith("青岛海鸥五金")  # named, never an id
        assert (
            rows[call.activity_id].actions == () and "青岛海鸥五金" in rows[call.activity_id].reason
        )

        lead_row = rows[str(card.saved_id)]
        assert lead_row.code == "possible_duplicate" and lead_row.actions == (
            "keep_anyway",
            "discard",
        )
        assert f"「{known.fields['name']}」" in lead_row.reason
        converted_there = rows[lead_c]  # no value typed here could ever cure it
        assert converted_there.actions == ("discard",)
        assert "已被他人转化" in converted_there.reason
        for record_id in (conversions[lead_c]["customer"], conversions[lead_c]["contact"]):
            assert rows[record_id].actions == ()  # they wait for the lead's row
        colleague = rows[conversions[lead_b]["customer"]]
        assert "同事" in colleague.reason and "江南机电设备" not in colleague.reason
        assert colleague.actions == ("keep_anyway", "discard")

        # the rep decides on the rejected-writes screen, with taps
        from mobile_app.ui import dialogs

        session.tr = kivy_app.controller.tr
        kivy_app.controller.tr.set_language("zh")
        kivy_app.controller.begin_session(session, background_sync=False)
        kivy_app.controller.go("rejected")
        kivy_app.pump(3)
        screen = kivy_app.screen
        cards = screen.cards
        assert set(cards[mine.id]) >= {"keep_anyway", "use_existing", "discard"}
        assert cards[mine.id]["use_existing"].text == "并入「青岛海鸥五金有限公司」"
        # discarding it would drop its group and the change to it, never the call's text
        dropped = {r.record_id for r in vm.rows if r.id in vm.discard_set(mine.id)}
        assert dropped == {a["customer"], a["contact"], a["opportunity"], lead_a}
        assert len(vm.discard_set(mine.id)) == 5  # + "last contacted" on that customer
        assert cards[mine.id]["discard"].text == "全部丢弃（5 条）"
        kivy_app.find(
            "电话相同）。如果您的是另一家，请选择“仍然保存”；如果是同一家，可以把您的记录并入「青岛海鸥五金有限公司」。"
        )
        kivy_app.tap(cards[colleague.id]["discard"])  # a slip of the finger ...
        assert "丢弃后无法恢复" in dialogs.current["yes"].parent.parent.children[-1].text
        kivy_app.tap(dialogs.current["cancel"])  # ... taken back: nothing is discarded
        assert len(store.dead_letters()) == 15

        def decide(letter_id: str, action: str) -> None:
            kivy_app.tap(lambda: screen.cards[letter_id][action])
            kivy_app.controller.wait_for_sync()
            # the screen re-renders 0.3 s after the pull's store events: let it, so the
            # next tap does not land on a card that moves under the finger
            kivy_app.wait_until(lambda: not kivy_app.controller._render_pending)
            kivy_app.pump(3)
            assert letter_id not in screen.cards, (action, screen.vm.message)

        decide(lead_row.id, "keep_anyway")  # the rep keeps the lead
        decide(colleague.id, "keep_anyway")  # a different company
        decide(mine.id, "use_existing")  # the office's customer
        kivy_app.tap(lambda: screen.cards[converted_there.id]["discard"])
        assert "4 条" in dialogs.current["yes"].parent.parent.children[-1].text
        kivy_app.tap(dialogs.current["yes"])  # the office's conversion stands
        kivy_app.pump(2)
        assert settings.sync_now() is True, settings.error
        assert store.dead_letters() == [] and store.status().pending_total == 0
        kivy_app.controller.go("rejected")
        kivy_app.pump(2)
        assert kivy_app.screen.cards == {}

        converted = manager.get("leads", lead_a)
        assert converted["status"] == "converted"
        assert converted["converted_customer_id"] == existing
        assert manager.get("contacts", a["contact"])["customer_id"] == existing
        assert manager.get("opportunities", a["opportunity"])["customer_id"] == existing
        logged = manager.get("activities", str(call.activity_id))
        assert logged["customer_id"] == existing and logged["notes"] == "电话确认了样品数量"
        assert manager.status("customers", a["customer"]) == 404  # no second customer
        assert manager.get("leads", lead_c)["converted_customer_id"] == office_customer
        assert manager.status("customers", conversions[lead_c]["customer"]) == 404
        assert store.collection("leads").get(lead_c).fields["status"] == "converted"

        assert manager.get("leads", str(card.saved_id))["name"] == "名片线索"
        b = conversions[lead_b]
        assert manager.get("customers", b["customer"])["name"] == "江南机电"
        assert manager.get("leads", lead_b)["converted_customer_id"] == b["customer"]
        assert manager.get("opportunities", b["opportunity"])["customer_id"] == b["customer"]
    finally:
        kivy_app.end()
        server.stop()
