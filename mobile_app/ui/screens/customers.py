"""Customers: list with search and filters, detail, create/edit (visits: ``visit.py``)."""

from __future__ import annotations

from functools import partial
from typing import Any

from kivy.metrics import dp
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.utils import platform

from mobile_app.viewmodels.customers import (
    CustomerDetailViewModel,
    CustomerFormViewModel,
    CustomerListViewModel,
    DetailLine,
)
from mobile_app.viewmodels.links import mail_uri, navigate_uri, phone_numbers

from ..widgets import (
    FsSpinner,
    FsTextInput,
    MutedLabel,
)
from .base import BaseScreen
from .records import RecordFormScreen


class CustomersScreen(BaseScreen):
    screen_name = "customers"
    title_key = "customers.title"
    tab = "customers"
    live = True

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.vm: CustomerListViewModel | None = None
        toolbar = BoxLayout(
            orientation="vertical", size_hint_y=None, padding=(dp(8), 0), spacing=dp(4)
        )
        toolbar.bind(minimum_height=toolbar.setter("height"))
        self.search = FsTextInput(multiline=False)
        self.search.bind(text=lambda _w, text: self._on_search(text))
        toolbar.add_widget(self.search)
        self.filters = GridLayout(cols=3, size_hint_y=None, height=dp(40), spacing=dp(4))
        self.status_filter = FsSpinner()
        self.tier_filter = FsSpinner()
        self.owner_filter = FsSpinner()
        self.status_filter.bind(value=lambda _w, v: self._on_filter("status", v))
        self.tier_filter.bind(value=lambda _w, v: self._on_filter("tier", v))
        self.owner_filter.bind(value=lambda _w, v: self._on_filter("owner", v))
        toolbar.add_widget(self.filters)
        self.count_label = MutedLabel()
        toolbar.add_widget(self.count_label)
        index = self.body.children.index(self.scroll)
        self.body.add_widget(toolbar, index=index + 1)
        self._quiet = False

    def _list_vm(self) -> CustomerListViewModel | None:
        session = self.c.session
        if session is None:
            return None
        if self.vm is None or self.vm.session is not session:
            self.vm = CustomerListViewModel(session)
        return self.vm

    def _on_search(self, text: str) -> None:
        vm = self._list_vm()
        if vm is not None and not self._quiet and vm.query != text:
            vm.query = text
            self.render()

    def _on_filter(self, name: str, value: str) -> None:
        vm = self._list_vm()
        if vm is not None and not self._quiet and getattr(vm, name) != (value or None):
            setattr(vm, name, value or None)
            self.render()

    def build(self) -> None:
        vm = self._list_vm()
        if vm is None:
            return
        self.set_action("+ " + self.t("action.new"), lambda: self.c.go("customer_form"))
        self._quiet = True
        self.search.hint_text = self.t("customers.search")
        self.filters.clear_widgets()
        self.status_filter.set_choices(vm.status_choices, vm.status or "")
        self.tier_filter.set_choices(vm.tier_choices, vm.tier or "")
        self.filters.add_widget(self.status_filter)
        self.filters.add_widget(self.tier_filter)
        if vm.shows_owner_filter:
            self.owner_filter.set_choices(vm.owner_choices, vm.owner or "")
            self.filters.add_widget(self.owner_filter)
        self._quiet = False
        vm.refresh()
        self.count_label.text = vm.count_text
        if not vm.rows:
            self.empty(self.t("customers.empty"))
        for row in vm.rows:
            subtitle = " · ".join(x for x in (row.status_label, row.subtitle, row.follow_up) if x)
            if row.overdue:
                subtitle = f"{subtitle} ({self.t('customers.overdue')})"
            self.item(
                row.name,
                subtitle,
                lambda cid=row.id: self.c.go("customer_detail", customer_id=cid),
                alert=row.overdue,
                pending=row.pending,
            )


#: The customer screen's action buttons: (icon, label key, screen, extra params).
CUSTOMER_ACTIONS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("visit", "detail.log_visit", "log_visit", {}),
    ("call", "detail.call_log", "log_activity", {"kind": "call"}),
    ("note", "detail.log_other", "log_activity", {"kind": "meeting"}),
    ("pipeline", "detail.new_deal", "deal_form", {}),
    ("tasks", "detail.new_task", "task_form", {}),
    ("orders", "detail.new_order", "order", {}),
    ("leads", "detail.add_contact", "contact_form", {}),
    ("tickets", "detail.new_ticket", "ticket_form", {}),
)
#: Its sections: (title key, view-model attribute, screen a line opens, id parameter).
CUSTOMER_SECTIONS = (
    ("detail.contacts", "contacts", "contact_form", "contact_id"),
    ("detail.opportunities", "opportunities", "deal", "opportunity_id"),
    ("detail.tasks", "tasks", "task_form", "task_id"),
    ("detail.timeline", "timeline", "visit", "activity_id"),
    ("detail.orders", "orders", "order", "quote_id"),
    ("detail.contracts", "contracts", "contract", "contract_id"),
    ("detail.tickets", "tickets", "ticket_detail", "ticket_id"),
)


class CustomerDetailScreen(BaseScreen):
    screen_name = "customer_detail"
    live = True

    def build(self) -> None:
        session = self.c.session
        customer_id = self.params.get("customer_id")
        if session is None or not customer_id:
            return
        vm = CustomerDetailViewModel(session, customer_id)
        vm.refresh()
        self.vm = vm
        self.title_label.text = vm.name
        if vm.record is None:
            self.empty(self.t("customers.not_found"))
            return
        self.set_action(
            self.t("action.edit"), lambda: self.c.go("customer_form", customer_id=customer_id)
        )
        self.add(MutedLabel(text=vm.headline))
        reach = self.reach_specs(vm.record.fields)
        self.reach_buttons = self.buttons(reach, cols=2, flat=True) if reach else {}
        self.action_buttons = self.buttons(
            [
                (icon, self.t(key), partial(self.c.go, target, customer_id=customer_id, **extra))
                for icon, key, target, extra in CUSTOMER_ACTIONS
            ],
            cols=2,
        )
        for label, value in vm.info:
            self.add(MutedLabel(text=f"{label}: {value}"))
        for key, attr, target, param in CUSTOMER_SECTIONS:
            self.section(self.t(key))
            lines: list[DetailLine] = getattr(vm, attr)
            if not lines:
                self.empty(self.t("detail.none"))
            for line in lines:
                params: dict[str, Any] = {param: line.id}
                tap = partial(self.c.go, target, **params)
                self.item(line.title, line.subtitle, tap, pending=line.pending)

    def reach_specs(self, f: Any) -> list[tuple[str, str, Any]]:
        """Call / SMS for every number (mobile first), e-mail, navigate to the address."""
        open_uri = self.c.open_uri
        reach: list[tuple[str, str, Any]] = []
        for number in phone_numbers("customers", f):
            reach.append(("call", number.number, partial(open_uri, number.dial)))
            reach.append(("sms", self.t("action.sms"), partial(open_uri, number.sms)))
        if f.get("email"):
            reach.append(("mail", self.t("action.mail"), partial(open_uri, mail_uri(f["email"]))))
        where = navigate_uri(
            " ".join(str(f[k]) for k in ("city", "address") if f.get(k)),
            f.get("location"),
            android=platform == "android",
        )
        if where:
            reach.append(("navigate", self.t("action.navigate"), partial(open_uri, where)))
        return reach


class CustomerFormScreen(RecordFormScreen):
    screen_name = "customer_form"
    form_cls = CustomerFormViewModel
    id_param = "customer_id"

    def saved(self, record_id: str) -> None:
        if self.c.history and self.c.history[-1][0] == "customer_detail":
            self.c.history.pop()
        self.c.go("customer_detail", customer_id=record_id)
