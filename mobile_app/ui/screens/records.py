"""Record forms (lead, contact, deal, task), the task list, and logging an activity."""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

from kivy.metrics import dp
from kivy.uix.boxlayout import BoxLayout

from mobile_app.viewmodels.actions import complete_task_with_undo, delete_with_undo, may_delete
from mobile_app.viewmodels.activities import LogActivityViewModel
from mobile_app.viewmodels.contacts import ContactFormViewModel
from mobile_app.viewmodels.deals import DealFormViewModel
from mobile_app.viewmodels.forms import RecordForm
from mobile_app.viewmodels.leads import LeadFormViewModel
from mobile_app.viewmodels.links import mail_uri, phone_numbers
from mobile_app.viewmodels.tasks import TaskFormViewModel, TaskListViewModel

from ..forms import DateField, FormWidget, TimeField, build_form, show_errors
from ..icons import glyph
from ..widgets import ChoiceField, ErrorLabel, FlatButton, FormField, FsButton, FsSpinner, ListItem
from .base import BaseScreen


class RecordFormScreen(BaseScreen):
    """Create/edit one record through a :class:`RecordForm` (the form names the fields)."""

    form_cls: ClassVar[type[RecordForm]] = RecordForm
    id_param: ClassVar[str] = "record_id"

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.vm: RecordForm | None = None
        self.inputs: dict[str, FormWidget] = {}
        self.save_button: FsButton | None = None
        self.message = ErrorLabel(text="")

    def make_vm(self) -> RecordForm:
        session = self.c.session
        assert session is not None
        params = {k: v for k, v in self.params.items() if k != self.id_param and v}
        return self.form_cls(session, self.params.get(self.id_param), **params)

    def prepare(self) -> None:
        self.vm = self.make_vm() if self.c.session is not None else None

    def build(self) -> None:
        vm = self.vm
        if vm is None:
            return
        self.title_label.text = vm.title
        self.inputs = build_form(self, vm)
        self.message = ErrorLabel(text=vm.message if vm.errors or vm.duplicates else "")
        self.add(self.message)
        self.save_button = FsButton(text=self.t("action.save"))
        self.save_button.bind(on_release=lambda *_: self.save())
        self.add(self.save_button)
        if not vm.is_new and vm.record_id and may_delete(vm.session, vm.collection, vm.record_id):
            delete = FlatButton(text=self.t("action.delete"))
            delete.bind(on_release=lambda *_: self.delete())
            self.delete_button = delete
            self.add(delete)

    def save(self) -> None:
        vm = self.vm
        if vm is None:
            return
        if vm.save():
            self.saved(str(vm.saved_id))
            return
        show_errors(self.inputs, vm.errors)
        self.message.text = vm.message
        first = next((w for n, w in self.inputs.items() if n in vm.errors), None)
        target = first if first is not None else self.message
        self.scroll.scroll_to(target, padding=dp(10), animate=False)

    def saved(self, record_id: str) -> None:
        self.c.back()

    def delete(self) -> None:
        vm = self.vm
        if vm is not None and vm.record_id:
            delete_with_undo(vm.session, vm.collection, vm.record_id)
            self.c.back()


class LeadFormScreen(RecordFormScreen):
    screen_name = "lead_form"
    form_cls = LeadFormViewModel
    id_param = "lead_id"

    def saved(self, record_id: str) -> None:
        if self.c.history and self.c.history[-1][0] == "lead":
            self.c.history.pop()
        self.c.go("lead", lead_id=record_id)


class ContactFormScreen(RecordFormScreen):
    """Add or edit a contact; an existing one starts with call / SMS / e-mail buttons."""

    screen_name = "contact_form"
    form_cls = ContactFormViewModel
    id_param = "contact_id"

    def build(self) -> None:
        vm = self.vm
        record = vm.current() if vm is not None else None
        self.reach_buttons: dict[str, Any] = {}
        if record is not None:
            f = record.fields
            reach: list[tuple[str, str, Any]] = []
            for number in phone_numbers("contacts", f):
                reach.append(("call", number.number, lambda u=number.dial: self.c.open_uri(u)))
                reach.append(("sms", self.t("action.sms"), lambda u=number.sms: self.c.open_uri(u)))
            if f.get("email"):
                uri = mail_uri(str(f["email"]))
                reach.append(("mail", self.t("action.mail"), lambda: self.c.open_uri(uri)))
            if reach:
                self.reach_buttons = self.buttons(reach, cols=2, flat=True)
        super().build()


class DealFormScreen(RecordFormScreen):
    screen_name = "deal_form"
    form_cls = DealFormViewModel
    id_param = "opportunity_id"

    def saved(self, record_id: str) -> None:
        if self.c.history and self.c.history[-1][0] == "deal":
            self.c.history.pop()
        self.c.go("deal", opportunity_id=record_id)


class TaskFormScreen(RecordFormScreen):
    screen_name = "task_form"
    form_cls = TaskFormViewModel
    id_param = "task_id"


class TasksScreen(BaseScreen):
    screen_name = "tasks"
    title_key = "tasks.title"
    tab = "tasks"
    live = True

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.filter = FsSpinner()
        self.filter.bind(value=lambda _w, v: self._filter(v))
        self._value = "open"
        self._quiet = False
        self.done_buttons: dict[str, FlatButton] = {}

    def _filter(self, value: str) -> None:
        if not self._quiet and value and value != self._value:
            self._value = value
            self.render()

    def build(self) -> None:
        session = self.c.session
        if session is None:
            return
        vm = TaskListViewModel(session)
        vm.set_filter(self._value)
        self.vm = vm
        self.set_action("+ " + self.t("action.new"), lambda: self.c.go("task_form"))
        self._quiet = True
        self.filter.set_choices(vm.filter_choices, self._value)
        self._quiet = False
        if self.filter.parent is not None:
            self.filter.parent.remove_widget(self.filter)
        self.add(self.filter)
        if not vm.rows:
            self.empty(self.t("tasks.empty"))
        self.done_buttons = {}
        for row in vm.rows:
            line = BoxLayout(size_hint_y=None, height=dp(56))
            item = ListItem(
                title=row.title, subtitle=row.subtitle, alert=row.late, accent=row.pending
            )
            item.bind(on_release=lambda _w, tid=row.id: self.c.go("task_form", task_id=tid))
            line.add_widget(item)
            if row.status == "open":
                done = FlatButton(
                    text=glyph("check"),
                    font_name="FieldsyncIcons",
                    size_hint=(None, None),
                    width=dp(52),
                    height=dp(56),
                )
                done.bind(on_release=lambda _b, tid=row.id: self._complete(tid))
                self.done_buttons[row.id] = done
                line.add_widget(done)
            self.add(line)

    def _complete(self, task_id: str) -> None:
        session = self.c.session
        if session is not None and complete_task_with_undo(session, task_id):
            self.render()


class LogActivityScreen(BaseScreen):
    """Log a call, e-mail, meeting or note for a customer (visits: ``log_visit``)."""

    screen_name = "log_activity"

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.vm: LogActivityViewModel | None = None
        self.inputs: dict[str, Any] = {}
        self.message = ErrorLabel(text="")

    def prepare(self) -> None:
        session = self.c.session
        customer_id = self.params.get("customer_id")
        self.vm = None
        if session is not None and customer_id:
            self.vm = LogActivityViewModel(session, customer_id, self.params.get("kind") or "call")

    def build(self) -> None:
        vm = self.vm
        if vm is None:
            return
        session = vm.session
        self.title_label.text = vm.title
        self.inputs = {}
        kind = ChoiceField(self.t("activity.type"), vm.type_choices, vm.kind, on_value=self._kind)
        self.add(kind)
        day = DateField(
            self.t("activity.date"),
            vm.day,
            self.c.tr,
            session.today(),
            lambda v: setattr(vm, "day", v),
        )
        clock = TimeField(
            self.t("activity.time"), vm.clock, self.c.tr, lambda v: setattr(vm, "clock", v)
        )
        self.inputs |= {"day": day, "occurred_at": clock}
        self.add(day)
        self.add(clock)
        contacts = vm.contact_choices()
        if len(contacts) > 1:
            contact = ChoiceField(
                session.tr.field_label("activities", "contact_id"),
                contacts,
                vm.contact_id,
                on_value=lambda v: setattr(vm, "contact_id", v),
            )
            self.add(contact)
        for name, attr, multiline in (
            ("subject", "subject", False),
            ("duration_minutes", "duration", False),
            ("notes", "notes", True),
        ):
            widget = FormField(
                session.tr.field_label("activities", name),
                getattr(vm, attr),
                multiline=multiline,
                on_text=partial(setattr, vm, attr),
            )
            self.inputs[name] = widget
            self.add(widget)
        outcome = ChoiceField(
            self.t("visit.outcome"),
            vm.outcome_choices,
            vm.outcome,
            on_value=lambda v: setattr(vm, "outcome", v),
        )
        self.add(outcome)
        follow = DateField(
            session.tr.field_label("activities", "next_follow_up"),
            vm.next_follow_up,
            self.c.tr,
            session.today(),
            lambda v: setattr(vm, "next_follow_up", v),
        )
        self.inputs["next_follow_up"] = follow
        self.add(follow)
        for name, widget in self.inputs.items():
            widget.set_error(vm.errors.get(name, ""))
        self.message = ErrorLabel(text=vm.message if vm.errors else "")
        self.add(self.message)
        self.save_button = FsButton(text=self.t("action.save"))
        self.save_button.bind(on_release=lambda *_: self.save())
        self.add(self.save_button)

    def _kind(self, kind: str) -> None:
        if self.vm is not None and kind and kind != self.vm.kind:
            self.vm.kind = kind
            self.title_label.text = self.vm.title

    def save(self) -> None:
        vm = self.vm
        if vm is None:
            return
        if vm.save():
            self.c.back()
            return
        for name, widget in self.inputs.items():
            widget.set_error(vm.errors.get(name, ""))
        self.message.text = vm.message
