"""The rep's whole day in view-models (no window): leads and conversion, contacts, deals,
activities of every type, tasks with undo and reminders, contracts, knowledge, targets,
duplicates, tap-to-call links, and rejected writes explained."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mobile_app.demo import DemoIds
from mobile_app.viewmodels.actions import delete_with_undo, may_delete
from mobile_app.viewmodels.activities import LogActivityViewModel
from mobile_app.viewmodels.base import Session
from mobile_app.viewmodels.contacts import ContactFormViewModel
from mobile_app.viewmodels.contracts import ContractListViewModel, contract_details
from mobile_app.viewmodels.customers import CustomerFormViewModel
from mobile_app.viewmodels.deals import DealFormViewModel
from mobile_app.viewmodels.knowledge import KnowledgeViewModel, link_to_ticket, read_article
from mobile_app.viewmodels.leads import (
    LeadConvertViewModel,
    LeadFormViewModel,
    LeadListViewModel,
    set_lead_status,
)
from mobile_app.viewmodels.links import dial_uri, navigate_uri, phone_numbers
from mobile_app.viewmodels.pickers import RecordPicker
from mobile_app.viewmodels.pipeline import PipelineViewModel
from mobile_app.viewmodels.targets import TargetsViewModel
from mobile_app.viewmodels.tasks import TaskFormViewModel, TaskListViewModel, due_reminders

from .conftest import NOW


def test_lead_list_filters_open_and_searches_pinyin(session: Session, demo: DemoIds) -> None:
    vm = LeadListViewModel(session)
    vm.refresh()
    assert [r.name for r in vm.rows] == ["Grace Kim", "吴倩", "周杰", "郑凯"]  # not disqualified
    vm.query = "zj"
    vm.refresh()
    assert [r.name for r in vm.rows] == ["周杰"]
    vm.query = ""
    vm.set_filter("disqualified")
    assert [r.status_label for r in vm.rows] == ["Disqualified"]
    set_lead_status(session, demo.day.leads["周杰"], "qualified")
    assert session.store.collection("leads").get(demo.day.leads["周杰"]).fields["status"] == (
        "qualified"
    )
    with pytest.raises(ValueError):
        set_lead_status(session, demo.day.leads["周杰"], "converted")


def test_convert_lead_creates_customer_contact_deal_and_links_back(
    session: Session, demo: DemoIds
) -> None:
    lead_id = demo.day.leads["周杰"]
    vm = LeadConvertViewModel(session, lead_id)
    assert vm.customer_name == "苏州周氏五金" and vm.contact_name == "周杰" and not vm.matches
    vm.deal_name = "五金店收银系统"
    vm.amount = "abc"
    assert vm.convert() is False and vm.errors["amount"] == "Amount: type a number"
    assert session.store.collection("customers").count(where={"name": "苏州周氏五金"}) == 0
    vm.amount = "36000"
    vm.close_date = "2026-04-30"
    assert vm.convert() is True, vm.errors
    store = session.store
    customer = store.collection("customers").get(vm.result["customer"])
    contact = store.collection("contacts").get(vm.result["contact"])
    deal = store.collection("opportunities").get(vm.result["opportunity"])
    lead = store.collection("leads").get(lead_id)
    # the writes of sync_protocol.leads.plan_conversion, the plan the server checks
    assert customer.fields["phone"] == "+86 150 1234 5678"
    assert customer.fields["status"] == "potential" and customer.fields["kind"] == "company"
    assert contact.fields["customer_id"] == customer.id and contact.fields["is_primary"]
    assert deal.fields["amount"] == 36000 and deal.fields["lead_id"] == lead_id
    assert deal.fields["stage_id"] == demo.stages["Lead"]
    assert lead.fields["status"] == "converted"
    assert lead.fields["converted_customer_id"] == customer.id
    assert lead.fields["converted_opportunity_id"] == deal.id
    assert lead.fields["converted_contact_id"] == contact.id
    assert LeadConvertViewModel(session, lead_id).convert() is False  # only once


def test_convert_lead_into_a_customer_already_on_the_phone(session: Session, demo: DemoIds) -> None:
    lead = LeadFormViewModel(session)
    lead.set("name", "张三")
    lead.set("company", "张三贸易")
    lead.set("phone", "13800138000")  # 张三's number written differently
    assert lead.save() is False and "same phone as Customer 张三" in lead.message
    assert lead.save() is True  # the second tap saves anyway
    vm = LeadConvertViewModel(session, str(lead.saved_id))
    assert [m.name for m in vm.matches] == ["张三"]
    vm.existing_customer_id = vm.matches[0].id
    vm.make_deal = False
    before = session.store.collection("customers").count()
    assert vm.convert() is True
    assert session.store.collection("customers").count() == before
    assert vm.result["customer"] == demo.customers["张三"]


def test_customer_form_warns_about_duplicates_by_phone_email_and_name(
    session: Session, demo: DemoIds
) -> None:
    form = CustomerFormViewModel(session)
    form.set("name", "Alice  johnson")
    assert form.save() is False and "same name as Customer Alice Johnson" in form.message
    count = session.store.collection("customers").count()
    assert form.save() is True and session.store.collection("customers").count() == count + 1
    fresh = CustomerFormViewModel(session)
    fresh.set("name", "全新客户")
    fresh.set("mobile", "+86 150-1234-5678")  # the lead 周杰's phone
    assert fresh.save() is False and "Lead 周杰" in fresh.message


def test_contacts_add_edit_delete_with_undo(session: Session, demo: DemoIds) -> None:
    customer = demo.customers["李四"]
    form = ContactFormViewModel(session, customer_id=customer)
    form.set("name", "李小龙")
    form.set("phone", "+86 139 0000 1111")
    form.set("email", "not-mail")
    assert form.save() is False and form.errors["email"] == "E-mail: not an e-mail address"
    form.set("email", "li@example.cn")
    assert form.save() is True
    contact_id = str(form.saved_id)
    edit = ContactFormViewModel(session, contact_id)
    edit.set("title", "CTO")
    assert edit.save() is True
    contacts = session.store.collection("contacts")
    assert contacts.get(contact_id).fields["title"] == "CTO"
    assert may_delete(session, "contacts", contact_id)
    assert not may_delete(session, "customers", customer)  # the company's history
    assert delete_with_undo(session, "contacts", contact_id) and contacts.get(contact_id) is None
    assert session.undo.undo() is True
    restored = contacts.get(contact_id)
    assert restored is not None and restored.fields["title"] == "CTO"
    assert [p.dial for p in phone_numbers("contacts", restored.fields)] == ["tel:+8613900001111"]


def test_phone_numbers_mobile_first_and_navigation_uris() -> None:
    fields = {"phone": "021-6666 8888", "mobile": "+86 138 0013 8000"}
    assert [(p.field, p.dial) for p in phone_numbers("customers", fields)] == [
        ("mobile", "tel:+8613800138000"),
        ("phone", "tel:02166668888"),
    ]
    assert phone_numbers("customers", {"phone": "138 0013 8000", "mobile": "13800138000"}) == [
        phone_numbers("customers", {"mobile": "13800138000"})[0]
    ]
    assert dial_uri("+86 (21) 6666-8888") == "tel:+862166668888"
    assert (
        navigate_uri("上海市南京路 1 号")
        == "geo:0,0?q=%E4%B8%8A%E6%B5%B7%E5%B8%82%E5%8D%97%E4%BA%AC%E8%B7%AF%201%20%E5%8F%B7"
    )
    assert navigate_uri("", {"lat": 31.2, "lon": 121.5}) == "geo:31.2,121.5?q=31.2,121.5"
    assert navigate_uri("x", None, android=False).startswith("https://www.openstreetmap.org/")
    assert navigate_uri("", None) is None


def test_create_a_deal_then_close_it_lost_needs_a_reason(session: Session, demo: DemoIds) -> None:
    form = DealFormViewModel(session, customer_id=demo.customers["赵敏"])
    assert form.values["stage_id"] == demo.stages["Lead"]
    form.set("name", "电子元件年度框架")
    form.set("amount", "120000")
    form.set("expected_close_date", "2026-06-30")
    assert form.save() is True
    deal = session.store.collection("opportunities").get(str(form.saved_id))
    assert deal.fields["status"] == "open" and deal.fields["probability"] == 0.1
    [change] = session.store.collection("stage_changes").query(where={"opportunity_id": deal.id})
    assert change.fields["to_stage_id"] == demo.stages["Lead"]

    pipeline = PipelineViewModel(session)
    pipeline.refresh()
    assert pipeline.closes(demo.stages["Lost"]) and not pipeline.closes(demo.stages["Proposal"])
    assert pipeline.move(deal.id, demo.stages["Lost"]) is False
    assert pipeline.errors == {"lost_reason": "Say why the deal was lost"}
    assert pipeline.move(deal.id, demo.stages["Lost"], lost_reason="预算取消") is True
    deal = session.store.collection("opportunities").get(deal.id)
    assert deal.fields["status"] == "lost" and deal.fields["lost_reason"] == "预算取消"
    assert session.undo.undo() is True  # moved back, with its own stage change
    deal = session.store.collection("opportunities").get(deal.id)
    assert deal.fields["stage_id"] == demo.stages["Lead"] and deal.fields["status"] == "open"
    assert (
        len(session.store.collection("stage_changes").query(where={"opportunity_id": deal.id})) == 3
    )

    edit = DealFormViewModel(session, deal.id)
    edit.set("stage_id", demo.stages["Lost"])
    assert edit.save() is False and edit.errors["lost_reason"] == "Lost reason is required"


@pytest.mark.parametrize("kind", ["call", "email", "meeting", "note"])
def test_log_activity_of_every_type_with_follow_up(
    session: Session, demo: DemoIds, kind: str
) -> None:
    customer = demo.customers["陈晨"]
    vm = LogActivityViewModel(session, customer, kind)
    vm.day, vm.clock = "2026-03-10", "14:30"
    vm.notes = "确认了交货时间"
    vm.next_follow_up = "2026-03-17"
    vm.duration = "15"
    assert vm.save() is True, vm.errors
    record = session.store.collection("activities").get(str(vm.activity_id))
    assert record.fields["type"] == kind and record.fields["duration_minutes"] == 15
    task = session.store.collection("tasks").get(str(vm.task_id))
    assert task.fields["activity_id"] == record.id and task.fields["remind_at"]
    assert session.store.collection("customers").get(customer).fields["next_follow_up"] == (
        "2026-03-17"
    )


def test_log_activity_rejects_a_bad_time(session: Session, demo: DemoIds) -> None:
    vm = LogActivityViewModel(session, demo.customers["陈晨"], "call")
    vm.clock = "25:99"
    assert vm.save() is False and vm.errors["occurred_at"] == "Use YYYY-MM-DD HH:MM"


def test_tasks_create_edit_complete_undo_and_reminders(session: Session, demo: DemoIds) -> None:
    form = TaskFormViewModel(session, customer_id=demo.customers["赵敏"])
    form.set("title", "寄样品")
    form.set("due_at", "2026-03-12 17:00")
    form.set("remind_at", "2026-03-10 09:30")
    assert form.save() is True
    task_id = str(form.saved_id)
    edit = TaskFormViewModel(session, task_id)
    edit.set("priority", "high")
    assert edit.save() is True
    tasks = TaskListViewModel(session)
    tasks.refresh()
    assert "寄样品" in [r.title for r in tasks.rows]
    announced: set[str] = set()
    due = due_reminders(session, announced, NOW)
    assert {r.title for r in due} >= {"寄样品", "发送合同草稿给张伟"}
    announced |= {r.key for r in due}
    assert due_reminders(session, announced, NOW) == []  # each one once
    later = due_reminders(session, set(), NOW - timedelta(hours=2))
    assert "寄样品" not in {r.title for r in later}
    from mobile_app.viewmodels.actions import complete_task_with_undo

    assert complete_task_with_undo(session, task_id) is True
    tasks.refresh()
    assert "寄样品" not in [r.title for r in tasks.rows]
    assert session.undo.undo() is True
    tasks.refresh()
    assert "寄样品" in [r.title for r in tasks.rows]
    assert session.undo.undo() is False  # nothing left to undo


def test_contracts_list_renewal_from_each_contracts_own_days(
    session: Session, demo: DemoIds
) -> None:
    vm = ContractListViewModel(session)
    vm.refresh()
    assert [r.title.split()[0] for r in vm.rows if r.due] == ["HT-2026-0815"]
    logistics = next(r for r in vm.rows if r.title.startswith("HT-2025-1102"))
    assert "renewal reminder from 2026-03-21" in logistics.subtitle
    title, lines = contract_details(session, demo.contracts["HT-2026-0815"])
    assert title == "HT-2026-0815 茶叶年度供货合同"
    assert ("Remind days before", "30") in lines


def test_knowledge_search_read_and_link_to_ticket(session: Session, demo: DemoIds) -> None:
    vm = KnowledgeViewModel(session)
    vm.set_query("thlc")  # 退货流程 by initials
    assert [r.title for r in vm.rows] == ["退货流程"]
    vm.set_query("warranty")
    [row] = vm.rows
    article = read_article(session, row.id)
    assert article is not None and "24 months" in article.body
    ticket = demo.tickets["礼盒包装破损"]
    assert link_to_ticket(session, demo.day.articles["退货流程"], ticket) is True
    comments = session.store.collection("ticket_comments").query(where={"ticket_id": ticket})
    assert any(c.fields["body"] == "📎 Knowledge base: 退货流程" for c in comments)


def test_targets_attainment_from_won_deals_in_the_period(session: Session, demo: DemoIds) -> None:
    vm = TargetsViewModel(session)
    vm.refresh()
    [row] = vm.rows
    assert row.target == 500000 and row.won == 88000 and row.percent == 18 and row.current
    assert row.days_left == 21
    title, detail = vm.lines(row)
    assert title == "2026-01-01 – 2026-03-31"
    assert detail.startswith("Won ¥88,000 of ¥500,000 (18%)")


def test_customer_picker_finds_by_characters_pinyin_and_initials(
    session: Session, demo: DemoIds
) -> None:
    picker = RecordPicker(session)
    for typed in ("张", "zhangsan", "zs", "13800138000"):
        picker.set_query(typed)
        assert "张三" in [r.title for r in picker.rows], typed
    picker.set_query("oynn")
    assert [r.title for r in picker.rows] == ["欧阳娜娜"]
    assert picker.rows[0].subtitle.startswith("南京欧阳文化传媒")


def test_order_with_two_lines_totals_by_the_shared_function(
    session: Session, demo: DemoIds
) -> None:
    from decimal import Decimal

    from mobile_app.viewmodels.orders import (
        CatalogueViewModel,
        OrderBuilderViewModel,
        OrderListViewModel,
    )
    from sync_protocol.orders import order_amounts

    catalogue = CatalogueViewModel(session)
    catalogue.set_query("bjb")  # 笔记本 by initials
    assert [r.name for r in catalogue.rows] == ["商用笔记本 X14"]
    vm = OrderBuilderViewModel(session, customer_id=demo.customers["张三"])
    assert vm.save() is False and vm.errors["lines"] == "Add at least one product."
    assert vm.add_line(demo.day.products["商用笔记本 X14"])
    assert vm.add_line(demo.day.products["A4 复印纸（箱）"])
    vm.set_line(0, "quantity", "3")
    vm.set_line(0, "discount_pct", "5")
    vm.set_line(1, "quantity", "10")
    vm.set_line(1, "unit_price", "229.9")
    # 3 × 6999 = 20997, −5 % = 1049.85 → 19947.15, +13 % tax 2593.13 → 22540.28
    # 10 × 229.9 = 2299, +13 % = 298.87 → 2597.87; order 25138.15
    assert vm.line_total_text(0) == "¥22,540.28" and vm.line_total_text(1) == "¥2,597.87"
    assert vm.totals_text.endswith("total ¥25,138.15")
    vm.set_line(1, "quantity", "x")
    assert vm.totals_text == "Fix the marked lines to see the total."
    assert vm.save() is False and vm.lines[1].errors == {"quantity": "Type a number (0 or more)"}
    vm.set_line(1, "quantity", "10")
    assert vm.save() is True
    store = session.store
    order = store.collection("quotes").get(str(vm.quote_id))
    lines = store.collection("quote_lines").query(where={"quote_id": order.id})
    assert order.fields["kind"] == "order" and order.fields["status"] == "draft"
    assert order.fields["total"] == 25138.15 and order.fields["tax_total"] == 2892.0
    assert order_amounts([line.fields for line in lines]).total == Decimal("25138.15")
    assert sorted(line.fields["line_total"] for line in lines) == [2597.87, 22540.28]
    assert {line.fields["list_price"] for line in lines} == {6999.0, 239.0}
    edit = OrderBuilderViewModel(session, order.id)
    assert sorted(line.product_name for line in edit.lines) == ["A4 复印纸（箱）", "商用笔记本 X14"]
    edit.remove_line(next(i for i, x in enumerate(edit.lines) if x.product_name.startswith("A4")))
    assert edit.place() is True
    order = store.collection("quotes").get(order.id)
    assert order.fields["status"] == "accepted" and order.fields["ordered_at"]
    assert order.fields["total"] == 22540.28
    assert len(store.collection("quote_lines").query(where={"quote_id": order.id})) == 1
    assert OrderBuilderViewModel(session, order.id).editable is False
    listing = OrderListViewModel(session, demo.customers["张三"])
    listing.refresh()
    assert listing.rows[0].subtitle == "Order · Accepted · ¥22,540.28"


def test_a_saved_quote_becomes_an_order_that_points_back(session: Session, demo: DemoIds) -> None:
    from mobile_app.viewmodels.orders import OrderBuilderViewModel

    quote = OrderBuilderViewModel(session, customer_id=demo.customers["李四"])
    quote.kind = "quote"
    quote.add_line(demo.day.products["27 寸显示器"])
    assert quote.save() is True
    source = str(quote.quote_id)
    placed = OrderBuilderViewModel(session, source)
    assert placed.place() is True and placed.quote_id != source
    store = session.store
    assert store.collection("quotes").get(source).fields["status"] == "accepted"
    order = store.collection("quotes").get(str(placed.quote_id))
    assert order.fields["kind"] == "order" and order.fields["quote_id"] == source
    assert len(store.collection("quote_lines").query(where={"quote_id": order.id})) == 1
