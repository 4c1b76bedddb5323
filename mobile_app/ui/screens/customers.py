"""Customers: list with search and filters, detail, create/edit (visits: ``visit.py``)."""

from __future__ import annotations

from functools import partial
from typing import Any

from kivy.metrics import dp
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout

from mobile_app.viewmodels.customers import (
    CustomerDetailViewModel,
    CustomerFormViewModel,
    CustomerListViewModel,
    DetailLine,
)

from ..widgets import (
    ChoiceField,
    ErrorLabel,
    FormField,
    FsButton,
    FsSpinner,
    FsTextInput,
    MutedLabel,
)
from .base import BaseScreen


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
        self.set_action(
            self.t("action.edit"), lambda: self.c.go("customer_form", customer_id=customer_id)
        )
        self.add(MutedLabel(text=vm.headline))
        actions = GridLayout(cols=2, size_hint_y=None, height=dp(44), spacing=dp(6))
        visit = FsButton(text=self.t("detail.log_visit"))
        visit.bind(on_release=lambda *_: self.c.go("log_visit", customer_id=customer_id))
        ticket = FsButton(text=self.t("detail.new_ticket"))
        ticket.bind(on_release=lambda *_: self.c.go("ticket_form", customer_id=customer_id))
        actions.add_widget(visit)
        actions.add_widget(ticket)
        self.add(actions)
        for label, value in vm.info:
            self.add(MutedLabel(text=f"{label}: {value}"))
        sections: list[tuple[str, list[DetailLine], Any]] = [
            ("detail.contacts", vm.contacts, None),
            (
                "detail.opportunities",
                vm.opportunities,
                lambda i: self.c.go("deal", opportunity_id=i),
            ),
            ("detail.timeline", vm.timeline, lambda i: self.c.go("visit", activity_id=i)),
            ("detail.contracts", vm.contracts, None),
            ("detail.tickets", vm.tickets, lambda i: self.c.go("ticket_detail", ticket_id=i)),
        ]
        for key, lines, open_line in sections:
            self.section(self.t(key))
            if not lines:
                self.empty(self.t("detail.none"))
            for line in lines:
                tap = (lambda i=line.id, f=open_line: f(i)) if open_line else None
                self.item(line.title, line.subtitle, tap, pending=line.pending)


class CustomerFormScreen(BaseScreen):
    screen_name = "customer_form"

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.vm: CustomerFormViewModel | None = None
        self.inputs: dict[str, FormField | ChoiceField] = {}
        self.save_button: FsButton | None = None
        self.message: ErrorLabel | None = None

    def on_pre_enter(self, *_: Any) -> None:
        session = self.c.session
        if session is not None:
            self.vm = CustomerFormViewModel(session, self.params.get("customer_id"))
        self.render()

    def build(self) -> None:
        vm = self.vm
        if vm is None:
            return
        self.title_label.text = vm.title
        self.inputs = {}
        for name in vm.FIELDS:
            widget: FormField | ChoiceField
            if name in vm.CHOICE_FIELDS:
                widget = ChoiceField(
                    vm.label(name),
                    vm.choices(name),
                    vm.values[name],
                    on_value=partial(vm.set, name),
                )
            else:
                widget = FormField(
                    vm.label(name),
                    vm.values[name],
                    multiline=name == "notes",
                    hint="YYYY-MM-DD" if name == "next_follow_up" else "",
                    on_text=partial(vm.set, name),
                )
            widget.set_error(vm.errors.get(name, ""))
            self.inputs[name] = widget
            self.add(widget)
        self.message = ErrorLabel(text=vm.message if vm.errors else "")
        self.add(self.message)
        self.save_button = FsButton(text=self.t("action.save"))
        self.save_button.bind(on_release=lambda *_: self.save())
        self.add(self.save_button)

    def save(self) -> None:
        vm = self.vm
        if vm is None:
            return
        if vm.save():
            if self.c.history and self.c.history[-1][0] == "customer_detail":
                self.c.history.pop()
            self.c.go("customer_detail", customer_id=vm.saved_id)
            return
        for name, widget in self.inputs.items():
            widget.set_error(vm.errors.get(name, ""))
        if self.message is not None:
            self.message.text = vm.message
        first = next((w for n, w in self.inputs.items() if n in vm.errors), None)
        if first is not None:
            self.scroll.scroll_to(first, padding=dp(10), animate=False)
