"""The scenes ``python -m mobile_app.screenshots`` renders: one per screen (and a few
states worth seeing: pinyin search, a form with errors, the Undo snackbar, a picker)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Scene = tuple[str, Callable[[], Any]]


def scenes(controller: Any, world: Any, files: Any, work: Path) -> Iterator[Scene]:
    from mobile_app.demo import demo_photos, demo_refused_conversion
    from mobile_app.ui import dialogs
    from mobile_app.viewmodels.account import Account, InitialSyncViewModel

    session = world.session
    tr = session.tr
    ids = world.ids
    go = controller.go
    customer = ids.customers["张三"]

    yield "first_run", lambda: go("first_run", reset=True)

    def unlock() -> None:
        files.save(
            Account(server_url="https://crm.example.com", username="rep1", display_name="王小明")
        )
        go("unlock", reset=True)

    yield "unlock", unlock
    if controller.session is None:
        controller.begin_session(session, background_sync=False)

    def initial() -> None:
        vm = InitialSyncViewModel(session)
        vm.received, vm.total = 340, 1000
        vm.message = tr("initial.progress", done=340, total=1000)
        screen = go("initial_sync", reset=True, run=False)
        screen.vm = vm
        screen.update()

    yield "initial_sync", initial
    yield "today", lambda: go("today", reset=True)
    yield "customers", lambda: go("customers", reset=True)

    def search() -> None:
        screen = go("customers", reset=True)
        screen.search.text = "zs"

    yield "customers_search_pinyin", search

    def detail() -> None:
        controller.screens["customers"].search.text = ""
        go("customer_detail", customer_id=customer)

    yield "customer_detail", detail

    def form_errors() -> None:
        screen = go("customer_form")
        screen.inputs["name"].input.text = ""
        screen.inputs["email"].input.text = "zhang@"
        screen.save()
        screen.scroll.scroll_y = 1

    yield "customer_form", form_errors
    yield "contact_form", lambda: go("contact_form", customer_id=customer)

    def log_visit() -> None:
        screen = go("log_visit", customer_id=customer)
        photo = work / "IMG_0043.jpg"
        photo.write_bytes(b"\\xff\\xd8\\xff\\xe0" + bytes(2_000_000))
        screen.vm.location_text = "上海 黄浦区南京东路 100 号"
        screen.vm.notes = "新品上架，拍摄货架陈列。"
        screen.vm.add_photo(str(photo))
        screen.render()

    yield "log_visit", log_visit
    visit_id = world.pending_visit
    if not getattr(world, "_photos", False):
        demo_photos(session, visit_id, work / "photos")
        world._photos = True
    yield "visit", lambda: go("visit", activity_id=visit_id)
    yield "log_activity", lambda: go("log_activity", customer_id=customer, kind="call")
    yield "pipeline", lambda: go("pipeline", reset=True)
    deal = ids.opportunities["年度办公设备采购"]
    yield "deal", lambda: go("deal", opportunity_id=deal)

    def close_lost() -> None:
        screen = go("deal", opportunity_id=deal)
        screen.move(ids.stages["Lost"])

    yield "deal_close_lost", close_lost
    yield "deal_form", lambda: go("deal_form", customer_id=customer)
    yield "tasks", lambda: go("tasks", reset=True)

    def task_undo() -> None:
        from mobile_app.viewmodels.actions import complete_task_with_undo

        screen = go("tasks", reset=True)
        task = next(iter(ids.tasks.values()))
        if complete_task_with_undo(session, task):
            screen.render()

    yield "tasks_undo", task_undo

    def reopen() -> None:
        session.undo.undo()

    reopen()
    yield "task_form", lambda: go("task_form", customer_id=customer)

    def date_picker() -> None:
        screen = go("task_form", customer_id=customer)
        screen.inputs["due_at"].day_button.dispatch("on_release")

    yield "date_picker", date_picker

    def customer_picker() -> None:
        screen = go("task_form")
        screen.inputs["customer_id"].button.dispatch("on_release")
        dialogs.current["search"].text = "zs"

    yield "customer_picker", customer_picker
    yield "more", lambda: go("more", reset=True)
    yield "leads", lambda: go("leads", reset=True)
    lead = ids.day.leads["周杰"]
    yield "lead", lambda: go("lead", lead_id=lead)
    yield "lead_form", lambda: go("lead_form")
    yield "lead_convert", lambda: go("lead_convert", lead_id=lead)
    yield "orders", lambda: go("orders", reset=True)

    def order() -> None:
        screen = go("order", customer_id=customer)
        vm = screen.vm
        vm.add_line(ids.day.products["商用笔记本 X14"])
        vm.add_line(ids.day.products["A4 复印纸（箱）"])
        vm.set_line(0, "quantity", "3")
        vm.set_line(0, "discount_pct", "5")
        vm.set_line(1, "quantity", "10")
        screen.render()

    yield "order", order
    yield "products", lambda: go("products", reset=True)
    yield "contracts", lambda: go("contracts", reset=True)
    contract = ids.contracts["HT-2026-0815"]
    yield "contract", lambda: go("contract", contract_id=contract)
    yield "knowledge", lambda: go("knowledge", reset=True)
    article = ids.day.articles["退货流程"]
    yield "article", lambda: go("article", article_id=article)
    yield "targets", lambda: go("targets", reset=True)
    yield "tickets", lambda: go("tickets", reset=True)
    ticket = ids.tickets["礼盒包装破损"]
    yield "ticket_detail", lambda: go("ticket_detail", ticket_id=ticket)
    yield "ticket_form", lambda: go("ticket_form", customer_id=customer)
    yield "conflicts", lambda: go("conflicts", reset=True)

    def rejected() -> None:
        if not getattr(world, "_evicted", False):  # a customer reassigned while offline
            from mobile_app.viewmodels.inbox import remember_names

            gone = ids.customers["黄磊"]
            session.store.collection("customers").update(gone, {"notes": "老板说下月补货 200 箱"})
            world.server.evict("customers", gone)
            remember_names(session)
            session.client.sync()
            world._evicted = True
            world._duplicate = demo_refused_conversion(world)  # a lead converted offline
        go("rejected", reset=True)

    yield "rejected", rejected

    def rejected_duplicate() -> None:
        from kivy.clock import Clock

        screen = go("rejected", reset=True)
        # read to the end: the refused conversion and the writes that wait for it
        Clock.schedule_once(lambda _dt: setattr(screen.scroll, "scroll_y", 0), 0)

    yield "rejected_duplicate", rejected_duplicate
    yield "settings", lambda: go("settings", reset=True)
    yield "sign_out", lambda: go("sign_out")

    def relogin() -> None:
        controller.banner = tr("session.lease")
        go("relogin", reset=True)

    yield "relogin", relogin
    controller.banner = ""
