"""The rep's day in the real app, offscreen, by taps and typing (one shared window):
convert a lead, create a deal, log a call, create a task and undo its completion, build
an order with two lines and see the total, read a knowledge article, sign out with
pending work and be warned — plus tap-to-call, close-a-deal confirmation, every screen
opening at the top, and a wipe mid-session returning to first run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mobile_app.demo import build_demo
from mobile_app.ui import dialogs

from .conftest import NOW, AppDriver

pytestmark = pytest.mark.app


@pytest.fixture
def app(kivy_app: AppDriver) -> Any:
    kivy_app.controller.tr.set_language("en")
    yield kivy_app
    kivy_app.end()


@pytest.fixture
def world(tmp_path: Path, app: AppDriver) -> Any:
    w = build_demo(tmp_path / "w", NOW.astimezone().date(), language="en")
    w.session.tr = app.controller.tr
    app.begin(w)
    return w


def more(app: AppDriver, entry: str) -> None:
    app.tap(app.screen.nav_buttons["more"])
    app.tap(app.screen.entries[entry])


def pick_customer(app: AppDriver, field: Any, typed: str, name: str) -> None:
    app.tap(field.button)
    app.type(dialogs.current["search"], typed)
    app.tap(next(i for i in app.items(dialogs.current["rows"]) if i.title == name))


def test_convert_a_lead(app: AppDriver, world: Any) -> None:
    more(app, "leads")
    assert app.screen.name == "leads"
    app.type(app.screen.search, "zj")  # 周杰 by initials
    [lead] = app.items()
    assert lead.title == "周杰"
    app.tap(lead)
    detail = app.screen
    assert detail.name == "lead" and "+86 150 1234 5678" in detail.reach_buttons
    app.tap(detail.convert_button)
    form = app.screen
    assert form.name == "lead_convert"
    assert form.inputs["name"].input.text == "苏州周氏五金"
    app.type(form.inputs["deal"].input, "五金店收银系统")
    app.type(form.inputs["amount"].input, "36000")
    app.tap(form.convert_button)
    assert app.screen.name == "customer_detail"
    assert app.screen.title_label.text == "苏州周氏五金"
    store = app.controller.session.store
    [customer] = store.collection("customers").query(where={"name": "苏州周氏五金"})
    [deal] = store.collection("opportunities").query(where={"customer_id": customer.id})
    [contact] = store.collection("contacts").query(where={"customer_id": customer.id})
    lead_record = store.collection("leads").get(world.ids.day.leads["周杰"])
    assert deal.fields["amount"] == 36000 and contact.fields["name"] == "周杰"
    assert lead_record.fields["status"] == "converted"
    assert lead_record.fields["converted_opportunity_id"] == deal.id
    assert any(i.title == "五金店收银系统" for i in app.items())


def test_create_a_deal_and_close_it_won_after_confirming(app: AppDriver, world: Any) -> None:
    app.controller.go("customer_detail", customer_id=world.ids.customers["赵敏"])
    app.pump(2)
    app.tap(lambda: app.screen.action_buttons["New deal"])
    form = app.screen
    assert form.name == "deal_form"
    app.tap(form.save_button)
    assert form.inputs["name"].error.text == "Name is required"
    app.type(form.inputs["name"].input, "电子元件年度框架")
    app.type(form.inputs["amount"].input, "120000")
    app.tap(form.inputs["expected_close_date"].button)
    app.tap(dialogs.current["next"])  # April
    app.tap(dialogs.current["days"][30])
    app.tap(form.save_button)
    deal_screen = app.screen
    assert deal_screen.name == "deal"
    store = app.controller.session.store
    [deal] = store.collection("opportunities").query(where={"name": "电子元件年度框架"})
    assert deal.fields["expected_close_date"] == "2026-04-30"
    won = world.ids.stages["Won"]
    app.tap(deal_screen.stage_buttons[won])
    assert "popup" in dialogs.current  # closing a deal asks first
    app.tap(dialogs.current["cancel"])
    assert store.collection("opportunities").get(deal.id).fields["status"] == "open"
    app.tap(deal_screen.stage_buttons[won])
    app.tap(dialogs.current["yes"])
    assert store.collection("opportunities").get(deal.id).fields["status"] == "won"
    assert app.screen.snackbar.message == "Moved to Won"
    app.tap(app.screen.snackbar.ids.undo)
    assert store.collection("opportunities").get(deal.id).fields["status"] == "open"


def test_log_a_call_after_tapping_the_number(app: AppDriver, world: Any) -> None:
    app.controller.go("customer_detail", customer_id=world.ids.customers["张三"])
    app.pump(2)
    app.tap(lambda: app.screen.reach_buttons["+86 138 0013 8000"])
    assert app.controller.launcher.opened[-1] == "tel:+8613800138000"
    app.tap(next(i for i in app.items() if i.title == "张伟"))  # a contact: call them too
    assert app.screen.name == "contact_form"
    app.tap(app.screen.reach_buttons["SMS"])
    assert app.controller.launcher.opened[-1] == "sms:+8613800138001"
    app.controller.back()
    app.pump(2)
    app.tap(lambda: app.screen.action_buttons["Log a call"])
    form = app.screen
    assert form.name == "log_activity" and form.title_label.text == "Log a Call"
    app.type(form.inputs["notes"].input, "电话确认了下周的演示")
    app.tap(form.inputs["occurred_at"].button)
    app.tap(dialogs.current["hours"][15])
    app.tap(dialogs.current["minutes"][30])
    assert form.inputs["occurred_at"].button.text == "15:30"
    app.tap(form.save_button)
    assert app.screen.name == "customer_detail"
    store = app.controller.session.store
    calls = store.collection("activities").query(
        where={"customer_id": world.ids.customers["张三"], "type": "call"}
    )
    assert "电话确认了下周的演示" in [c.fields.get("notes") for c in calls]
    assert any("电话确认了下周的演示" in i.subtitle for i in app.items())


def test_create_a_task_and_undo_its_completion(app: AppDriver, world: Any) -> None:
    app.tap(app.screen.nav_buttons["tasks"])
    assert app.screen.name == "tasks"
    app.tap(app.screen.action_button)
    form = app.screen
    assert form.name == "task_form"
    app.type(form.inputs["title"].input, "寄样品给张三")
    pick_customer(app, form.inputs["customer_id"], "zs", "张三")
    assert form.inputs["customer_id"].button.text == "张三"
    app.tap(form.inputs["due_at"].day_button)
    app.tap(dialogs.current["days"][12])
    app.tap(form.save_button)
    tasks = app.screen
    assert tasks.name == "tasks"
    store = app.controller.session.store
    [task] = store.collection("tasks").query(where={"title": "寄样品给张三"})
    assert task.fields["customer_id"] == world.ids.customers["张三"]
    assert task.fields["due_at"].startswith("2026-03-12")
    app.tap(tasks.done_buttons[task.id])
    assert store.collection("tasks").get(task.id).fields["status"] == "done"
    assert "寄样品给张三" not in [i.title for i in app.items()]
    assert tasks.snackbar.message == "Done: 寄样品给张三"
    app.tap(tasks.snackbar.ids.undo)
    assert store.collection("tasks").get(task.id).fields["status"] == "open"
    assert "寄样品给张三" in [i.title for i in app.items()]
    assert tasks.snackbar.message == ""


def test_build_an_order_with_two_lines_and_see_the_total(app: AppDriver, world: Any) -> None:
    app.controller.go("customer_detail", customer_id=world.ids.customers["张三"])
    app.pump(2)
    app.tap(lambda: app.screen.action_buttons["New order"])
    order = app.screen
    assert order.name == "order" and order.customer.button.text == "张三"
    for typed, name in (("bjb", "商用笔记本 X14"), ("fyz", "A4 复印纸（箱）")):
        app.tap(order.add_line_button)
        app.type(dialogs.current["search"], typed)
        app.tap(next(i for i in app.items(dialogs.current["rows"]) if i.title == name))
    assert len(order.line_inputs) == 2
    qty = order.line_inputs[0]["quantity"].input
    qty.text = ""
    app.type(qty, "3")
    discount = order.line_inputs[0]["discount_pct"].input
    app.type(discount, "5")
    qty2 = order.line_inputs[1]["quantity"].input
    qty2.text = ""
    app.type(qty2, "10")
    assert order.line_totals[0].text == "Line total ¥22,540.28"
    assert order.line_totals[1].text == "Line total ¥2,700.70"
    assert order.totals_label.text.endswith("total ¥25,240.98")
    app.tap(order.save_button)
    store = app.controller.session.store
    [saved] = store.collection("quotes").query(where={"customer_id": world.ids.customers["张三"]})
    assert saved.fields["total"] == 25240.98
    assert len(store.collection("quote_lines").query(where={"quote_id": saved.id})) == 2


def test_read_a_knowledge_article_and_link_it_to_a_ticket(app: AppDriver, world: Any) -> None:
    more(app, "knowledge")
    screen = app.screen
    assert screen.name == "knowledge"
    app.type(screen.search, "thlc")
    [article] = app.items()
    assert article.title == "退货流程"
    app.tap(article)
    reader = app.screen
    assert reader.name == "article" and reader.title_label.text == "退货流程"
    assert "7 天内可申请退货" in reader.body_label.text
    app.tap(reader.link_button)
    assert reader.link_message.text == "Linked to the ticket."


def test_sign_out_with_pending_work_is_warned_and_nothing_is_erased(
    app: AppDriver, world: Any
) -> None:
    more(app, "settings")
    app.tap(app.screen.logout_button)
    sheet = app.screen
    assert sheet.name == "sign_out"
    assert [w.text for w in sheet.loss_lines] == [
        "• 1 unsent change(s) to Activity",
        "• 1 unsent change(s) to Customer",
        "• 1 unsent change(s) to Task",
        "• 1 write(s) the server refused",
        "• 2 conflict(s) not decided",
    ]
    assert sheet.sync_button is not None and sheet.export_button is not None
    app.tap(sheet.discard_button)
    app.tap(dialogs.current["cancel"])  # changed their mind: nothing happens
    session = app.controller.session
    assert session is not None and not session.store.closed
    assert session.store.status().pending_total == 3
    app.tap(sheet.export_button)
    exported = list((app.controller.files.data_dir / "exports").glob("*.zip"))
    assert exported and "已" not in sheet.message.text and "Saved to" in sheet.message.text


def test_switch_user_goes_through_the_same_warning_and_erases_only_on_the_choice(
    app: AppDriver, world: Any
) -> None:
    from mobile_app.viewmodels.account import Account

    app.controller.files.save(Account(server_url="demo://fake", username="rep1"))
    more(app, "settings")
    app.tap(app.screen.switch_button)
    sheet = app.screen
    assert sheet.name == "sign_out" and len(sheet.loss_lines) == 5
    assert sheet.sign_out_button is None  # no plain "sign out" while work would be lost
    store = app.controller.session.store
    app.tap(sheet.discard_button)
    assert "2 conflict(s) not decided" in dialogs.current["yes"].parent.parent.children[-1].text
    app.tap(dialogs.current["yes"])  # the rep saw the list and chose to discard it
    app.wait_until(lambda: app.screen.name == "first_run")
    assert store.closed and app.controller.session is None
    assert app.controller.files.load() is None  # the next user starts clean


def test_every_screen_opens_at_the_top(app: AppDriver, world: Any) -> None:
    app.controller.go("customer_detail", customer_id=world.ids.customers["张三"])
    app.pump(3)
    app.screen.scroll.scroll_y = 0  # read to the bottom
    app.pump(2)
    app.controller.go("customer_detail", customer_id=world.ids.customers["李四"])
    app.pump(3)
    assert app.screen.scroll.scroll_y == 1
    app.controller.go("today", reset=True)
    app.pump(2)
    app.controller.go("customer_detail", customer_id=world.ids.customers["王芳"])
    app.pump(3)
    assert app.screen.scroll.scroll_y == 1


def test_reminders_show_in_app_when_the_phone_has_no_notifications(
    app: AppDriver, world: Any
) -> None:
    app.controller.announced.clear()
    app.controller.check_reminders()
    app.pump(2)
    assert app.screen.banner.text.startswith("Reminder: 发送合同草稿给张伟")
    app.tap(app.screen.banner)
    assert app.screen.banner.text == ""
    app.controller.check_reminders()
    assert app.controller.banner == ""  # announced once


def test_a_wipe_mid_session_returns_to_first_run(app: AppDriver, world: Any) -> None:
    app.controller.files.save(
        __import__("mobile_app.viewmodels.account", fromlist=["Account"]).Account(
            server_url="demo://fake", username="rep1"
        )
    )
    world.session.store.wipe(force=True)  # as the SDK does when the server says wipe
    app.controller.go("customers", reset=True)
    app.wait_until(lambda: app.screen.name == "first_run")
    assert app.controller.session is None
    assert app.controller.files.load() is None
    assert app.screen.banner.text.startswith("An administrator erased this phone's data")


def test_revoked_without_wipe_keeps_the_work_readable_and_stops_syncing(
    app: AppDriver, world: Any
) -> None:
    from client_sdk import MockTransport, SyncClient, SyncConfig, TransportResponse

    session = app.controller.session
    revoke = {"error": {"code": "device_revoked", "message": "revoked", "details": {"wipe": False}}}
    session.client = SyncClient(  # the server now answers: revoked, do not wipe
        session.store,
        MockTransport(lambda _request: TransportResponse.of(403, revoke)),
        SyncConfig(sleep=lambda _s: None),
    )
    app.controller.sync_now()
    app.controller.wait_for_sync()
    app.wait_until(lambda: app.controller.revoked)
    assert app.controller.session is session and not session.store.closed
    assert session.store.status().revoked
    assert "unsent work is kept" in app.screen.banner.text
    assert session.store.status().pending_total == 3  # nothing erased, still readable
    more(app, "settings")
    app.tap(app.screen.logout_button)
    sheet = app.screen
    assert sheet.name == "sign_out" and sheet.export_button is not None
    app.tap(sheet.export_button)
    assert list((app.controller.files.data_dir / "exports").glob("*.zip"))


def test_every_icon_draws_a_real_glyph(app: AppDriver) -> None:
    from kivy.uix.label import Label

    from mobile_app.ui.icons import CODEPOINTS, ICON_FONT

    def pixels(text: str) -> bytes:
        label = Label(text=text, font_name=ICON_FONT, font_size=32)
        label.texture_update()
        return bytes(label.texture.pixels)

    missing = pixels("\U000f0000")  # a code point the font has no glyph for
    seen = set()
    for name, codepoint in CODEPOINTS.items():
        drawn = pixels(chr(codepoint))
        assert any(drawn[3::4]), f"{name} draws nothing"
        seen.add(drawn)
    assert len(seen) == len(CODEPOINTS), "two icons draw the same glyph (an alias)"
    assert missing not in seen


def test_a_locked_store_opens_sign_in_again_not_a_dead_screen(app: AppDriver, world: Any) -> None:
    from client_sdk import StoreLocked

    assert app.controller.store_gone(StoreLocked("past the offline lease"))
    app.wait_until(lambda: app.screen.name == "relogin")
    screen = app.screen
    assert app.controller.session is not None  # nothing closed, nothing erased
    assert screen.banner.text.startswith("Sign in online to keep working offline")
    app.type(screen.password.input, "fieldsync-demo")
    app.tap(screen.submit_button)
    assert app.screen.name == "today" and app.controller.banner == ""
    app.controller.wait_for_sync()
