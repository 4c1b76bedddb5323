"""Leads: the list, one lead (call, qualify, convert), and the conversion form."""

from __future__ import annotations

from typing import Any

from kivy.metrics import dp

from mobile_app.viewmodels.actions import delete_with_undo, may_delete
from mobile_app.viewmodels.leads import LeadConvertViewModel, LeadListViewModel, set_lead_status
from mobile_app.viewmodels.links import mail_uri, phone_numbers

from ..widgets import (
    ChoiceField,
    ErrorLabel,
    FlatButton,
    FormField,
    FsButton,
    FsSpinner,
    FsTextInput,
    MutedLabel,
)
from .base import BaseScreen


class LeadsScreen(BaseScreen):
    screen_name = "leads"
    title_key = "leads.title"
    live = True

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.vm: LeadListViewModel | None = None
        self.search = FsTextInput(multiline=False, size_hint_y=None, height=dp(40))
        self.search.bind(text=lambda _w, text: self._search(text))
        self.filter = FsSpinner()
        self.filter.bind(value=lambda _w, v: self._filter(v))
        self._quiet = False

    def _list_vm(self) -> LeadListViewModel | None:
        session = self.c.session
        if session is None:
            return None
        if self.vm is None or self.vm.session is not session:
            self.vm = LeadListViewModel(session)
        return self.vm

    def _search(self, text: str) -> None:
        vm = self._list_vm()
        if vm is not None and not self._quiet and vm.query != text:
            vm.query = text
            self.render()

    def _filter(self, value: str) -> None:
        vm = self._list_vm()
        if vm is not None and not self._quiet and (value or None) != vm.status:
            vm.status = value or None
            self.render()

    def build(self) -> None:
        vm = self._list_vm()
        if vm is None:
            return
        self.set_action("+ " + self.t("action.new"), lambda: self.c.go("lead_form"))
        self._quiet = True
        self.search.hint_text = self.t("customers.search")
        self.filter.set_choices(vm.status_choices, vm.status or "")
        self._quiet = False
        for widget in (self.search, self.filter):
            if widget.parent is not None:
                widget.parent.remove_widget(widget)
            self.add(widget)
        vm.refresh()
        if not vm.rows:
            self.empty(self.t("leads.empty"))
        for row in vm.rows:
            self.item(
                row.name,
                " · ".join(b for b in (row.status_label, row.subtitle) if b),
                lambda lid=row.id: self.c.go("lead", lead_id=lid),
                pending=row.pending,
            )


class LeadDetailScreen(BaseScreen):
    screen_name = "lead"
    live = True

    def build(self) -> None:
        session = self.c.session
        lead_id = self.params.get("lead_id")
        if session is None or not lead_id:
            return
        lead = session.store.collection("leads").get(lead_id)
        if lead is None:
            self.empty(self.t("customers.not_found"))
            return
        tr = session.tr
        f = lead.fields
        self.title_label.text = str(f.get("name") or "")
        self.set_action(self.t("action.edit"), lambda: self.c.go("lead_form", lead_id=lead_id))
        self.add(MutedLabel(text=tr.choice("lead_status", f.get("status"))))
        reach: list[tuple[str, str, Any]] = []
        for number in phone_numbers("leads", f):
            reach.append(("call", number.number, lambda u=number.dial: self.c.open_uri(u)))
            reach.append(("sms", tr("action.sms"), lambda u=number.sms: self.c.open_uri(u)))
        if f.get("email"):
            reach.append(("mail", tr("action.mail"), lambda: self.c.open_uri(mail_uri(f["email"]))))
        if reach:
            self.reach_buttons = self.buttons(reach, cols=2, flat=True)
        for name in ("company", "email", "source", "notes"):
            if f.get(name):
                value = tr.choice("source", f[name]) if name == "source" else str(f[name])
                self.add(MutedLabel(text=f"{tr.field_label('leads', name)}: {value}"))
        self.status_buttons: dict[str, Any] = {}
        if f.get("status") == "converted":
            customer = session.store.collection("customers").get(
                str(f.get("converted_customer_id") or "")
            )
            if customer is not None:
                self.item(
                    tr("leads.went_to", name=customer.fields.get("name", "")),
                    "",
                    lambda: self.c.go("customer_detail", customer_id=customer.id),
                )
            return
        self.convert_button = self.buttons(
            [("leads", tr("leads.convert"), lambda: self.c.go("lead_convert", lead_id=lead_id))]
        )[tr("leads.convert")]
        specs = [
            ("check", tr("leads.contacted"), lambda: self._status("contacted")),
            ("star", tr("leads.qualify"), lambda: self._status("qualified")),
            ("warning", tr("leads.disqualify"), lambda: self._status("disqualified")),
        ]
        self.status_buttons = self.buttons(specs, flat=True)
        if may_delete(session, "leads", lead_id):
            delete = FlatButton(text=tr("action.delete"))
            delete.bind(on_release=lambda *_: self._delete())
            self.add(delete)

    def _status(self, status: str) -> None:
        session = self.c.session
        if session is not None:
            set_lead_status(session, self.params["lead_id"], status)
            self.render()

    def _delete(self) -> None:
        session = self.c.session
        if session is not None and delete_with_undo(session, "leads", self.params["lead_id"]):
            self.c.back()


class LeadConvertScreen(BaseScreen):
    screen_name = "lead_convert"
    title_key = "leads.convert_title"

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.vm: LeadConvertViewModel | None = None
        self.inputs: dict[str, Any] = {}
        self.convert_button: FsButton | None = None

    def prepare(self) -> None:
        session = self.c.session
        lead_id = self.params.get("lead_id")
        self.vm = LeadConvertViewModel(session, lead_id) if session and lead_id else None

    def build(self) -> None:
        vm = self.vm
        if vm is None:
            return
        tr = vm.session.tr
        self.inputs = {}
        if vm.matches:
            choices = [("", tr("leads.new_customer"))] + [
                (m.id, tr("leads.use_existing", name=m.name)) for m in vm.matches
            ]
            existing = ChoiceField(
                tr.entity_label("customers"),
                choices,
                vm.existing_customer_id,
                on_value=lambda v: setattr(vm, "existing_customer_id", v),
            )
            self.inputs["existing"] = existing
            self.add(existing)

        def field(key: str, label: str, attr: str, **kw: Any) -> FormField:
            widget = FormField(
                label, getattr(vm, attr), on_text=lambda v: setattr(vm, attr, v), **kw
            )
            widget.set_error(vm.errors.get(key, ""))
            self.inputs[key] = widget
            self.add(widget)
            return widget

        field("name", tr("leads.customer_name"), "customer_name")
        field("contact", tr("leads.contact_name"), "contact_name")
        self.section(tr.entity_label("opportunities"))
        field("deal", tr("leads.deal_name"), "deal_name")
        field("amount", tr.field_label("opportunities", "amount"), "amount", input_filter="float")
        from ..forms import DateField

        close = DateField(
            tr.field_label("opportunities", "expected_close_date"),
            vm.close_date,
            self.c.tr,
            vm.session.today(),
            lambda v: setattr(vm, "close_date", v),
        )
        close.set_error(vm.errors.get("expected_close_date", ""))
        self.inputs["expected_close_date"] = close
        self.add(close)
        if vm.stages:
            stage = ChoiceField(
                tr.field_label("opportunities", "stage_id"),
                vm.stages,
                vm.stage_id,
                on_value=lambda v: setattr(vm, "stage_id", v),
            )
            self.add(stage)
        self.message = ErrorLabel(text=vm.message)
        self.add(self.message)
        self.convert_button = FsButton(text=tr("leads.convert"))
        self.convert_button.bind(on_release=lambda *_: self.convert())
        self.add(self.convert_button)

    def convert(self) -> None:
        vm = self.vm
        if vm is None:
            return
        if vm.convert():
            self.c.history = [h for h in self.c.history if h[0] not in ("lead_convert",)]
            self.c.go("customer_detail", customer_id=vm.result["customer"])
            return
        self.render()
