"""Quotes and orders: the list, and the order builder with lines and live totals."""

from __future__ import annotations

from functools import partial
from typing import Any

from kivy.metrics import dp
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout

from mobile_app.viewmodels.actions import delete_with_undo, may_delete
from mobile_app.viewmodels.orders import OrderBuilderViewModel, OrderListViewModel
from mobile_app.viewmodels.pickers import RecordPicker

from .. import dialogs
from ..forms import RecordField
from ..widgets import (
    ChoiceField,
    Column,
    ErrorLabel,
    FlatButton,
    FormField,
    FsButton,
    FsLabel,
    MutedLabel,
    SectionHeader,
)
from .base import BaseScreen


class OrdersScreen(BaseScreen):
    screen_name = "orders"
    title_key = "orders.title"
    live = True

    def build(self) -> None:
        session = self.c.session
        if session is None:
            return
        vm = OrderListViewModel(session, self.params.get("customer_id"))
        vm.refresh()
        self.set_action(
            "+ " + self.t("action.new"),
            lambda: self.c.go("order", customer_id=self.params.get("customer_id") or ""),
        )
        if not vm.rows:
            self.empty(self.t("orders.empty"))
        for row in vm.rows:
            self.item(
                row.title,
                row.subtitle,
                lambda qid=row.id: self.c.go("order", quote_id=qid),
                pending=row.pending,
            )


class OrderScreen(BaseScreen):
    screen_name = "order"
    title_key = "orders.new"

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.vm: OrderBuilderViewModel | None = None
        self.lines_box = Column(padding=(0, 0))
        self.totals_label = FsLabel(bold=True)
        self.line_inputs: list[dict[str, FormField]] = []
        self.line_totals: list[MutedLabel] = []

    def prepare(self) -> None:
        session = self.c.session
        self.vm = None
        if session is not None:
            self.vm = OrderBuilderViewModel(
                session, self.params.get("quote_id"), self.params.get("customer_id") or ""
            )

    def build(self) -> None:
        vm = self.vm
        if vm is None:
            return
        tr = vm.session.tr
        self.title_label.text = vm.number
        self.customer = RecordField(
            tr("orders.customer"),
            RecordPicker(vm.session, "customers"),
            vm.customer_id,
            self.c.tr,
            lambda v: setattr(vm, "customer_id", v),
        )
        self.customer.set_error(vm.errors.get("customer_id", ""))
        self.add(self.customer)
        if not vm.editable:
            self.add(
                ErrorLabel(
                    text=tr(
                        "orders.locked",
                        kind=tr.choice("quote_kind", vm.kind),
                        status=tr.choice("quote_status", vm.status),
                    )
                )
            )
        self.add(
            ChoiceField(
                tr("orders.kind"),
                [(k, tr.choice("quote_kind", k)) for k in ("order", "quote")],
                vm.kind,
                on_value=lambda v: setattr(vm, "kind", v or "order"),
            )
        )
        self.add(SectionHeader(text=tr("orders.lines")))
        if self.lines_box.parent is not None:
            self.lines_box.parent.remove_widget(self.lines_box)
        self.add(self.lines_box)
        self.render_lines()
        self.add_line_button = FlatButton(text=tr("orders.add_line"))
        self.add_line_button.bind(on_release=lambda *_: self.pick_product())
        self.add_line_button.disabled = not vm.editable
        self.add(self.add_line_button)
        if self.totals_label.parent is not None:
            self.totals_label.parent.remove_widget(self.totals_label)
        self.add(self.totals_label)
        self.update_totals()
        self.message = ErrorLabel(
            text=vm.errors.get("lines", "") or (vm.message if vm.errors else "")
        )
        self.add(self.message)
        buttons = GridLayout(cols=2, size_hint_y=None, height=dp(44), spacing=dp(6))
        self.save_button = FsButton(text=self.t("action.save"), disabled=not vm.editable)
        self.save_button.bind(on_release=lambda *_: self.save())
        self.place_button = FsButton(text=tr("orders.place"), disabled=not vm.editable)
        self.place_button.bind(on_release=lambda *_: self.place())
        buttons.add_widget(self.save_button)
        buttons.add_widget(self.place_button)
        self.add(buttons)
        if vm.quote_id and may_delete(vm.session, "quotes", vm.quote_id):
            delete = FlatButton(text=self.t("action.delete"))
            delete.bind(on_release=lambda *_: self.delete())
            self.add(delete)

    def render_lines(self) -> None:
        vm = self.vm
        self.lines_box.clear_widgets()
        self.line_inputs, self.line_totals = [], []
        if vm is None:
            return
        tr = vm.session.tr
        for index, line in enumerate(vm.lines):
            head = BoxLayout(size_hint_y=None, height=dp(32))
            head.add_widget(FsLabel(text=line.product_name, bold=True))
            remove = FlatButton(text="×", size_hint=(None, None), width=dp(44), height=dp(32))
            remove.bind(on_release=lambda _b, i=index: self.remove_line(i))
            remove.disabled = not vm.editable
            head.add_widget(remove)
            self.lines_box.add_widget(head)
            row = GridLayout(cols=3, size_hint_y=None, spacing=dp(4))
            row.bind(minimum_height=row.setter("height"))
            inputs: dict[str, FormField] = {}
            for name, key in (
                ("quantity", "orders.quantity"),
                ("unit_price", "orders.price"),
                ("discount_pct", "orders.discount"),
            ):
                field = FormField(
                    tr(key),
                    getattr(line, name),
                    input_filter="float",
                    on_text=partial(self._edit, index, name),
                )
                field.set_error(line.errors.get(name, ""))
                field.input.disabled = not vm.editable
                inputs[name] = field
                row.add_widget(field)
            self.lines_box.add_widget(row)
            total = MutedLabel(text=tr("orders.line_total", total=vm.line_total_text(index)))
            self.line_totals.append(total)
            self.lines_box.add_widget(total)
            self.line_inputs.append(inputs)

    def _edit(self, index: int, name: str, text: str) -> None:
        vm = self.vm
        if vm is None or index >= len(vm.lines):
            return
        vm.set_line(index, name, text)
        self.line_totals[index].text = vm.session.tr(
            "orders.line_total", total=vm.line_total_text(index)
        )
        self.update_totals()

    def update_totals(self) -> None:
        if self.vm is not None:
            self.totals_label.text = self.vm.totals_text

    def pick_product(self) -> None:
        vm = self.vm
        if vm is None:
            return
        picker = RecordPicker(vm.session, "products")
        dialogs.pick_record(self.c.tr, picker, self.t("picker.product"), self._add)

    def _add(self, product_id: str) -> None:
        if self.vm is not None and self.vm.add_line(product_id):
            self.render_lines()
            self.update_totals()

    def remove_line(self, index: int) -> None:
        if self.vm is not None:
            self.vm.remove_line(index)
            self.render_lines()
            self.update_totals()

    def save(self) -> None:
        vm = self.vm
        if vm is None:
            return
        if vm.save():
            self.c.back()
            return
        self.render()

    def place(self) -> None:
        vm = self.vm
        if vm is None:
            return
        dialogs.confirm(self.c.tr, self.t("orders.place") + "?", lambda _r: self._place())

    def _place(self) -> None:
        vm = self.vm
        if vm is not None and vm.place():
            self.c.back()
            return
        self.render()

    def delete(self) -> None:
        vm = self.vm
        if vm is not None and vm.quote_id:
            delete_with_undo(vm.session, "quotes", vm.quote_id)
            self.c.back()
