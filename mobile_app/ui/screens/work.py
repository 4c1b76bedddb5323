"""Today, the pipeline (and one deal), and tickets."""

from __future__ import annotations

from functools import partial
from typing import Any

from kivy.metrics import dp
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout

from mobile_app.viewmodels.links import dial_uri
from mobile_app.viewmodels.pickers import RecordPicker
from mobile_app.viewmodels.pipeline import PipelineViewModel
from mobile_app.viewmodels.tickets import TicketsViewModel
from mobile_app.viewmodels.today import TodayViewModel

from .. import dialogs
from ..forms import DateField, RecordField
from ..icons import ICON_FONT, glyph
from ..widgets import (
    ChoiceField,
    ErrorLabel,
    FlatButton,
    FormField,
    FsButton,
    FsLabel,
    FsSpinner,
    FsTextInput,
    ListItem,
    MutedLabel,
    TitleLabel,
)
from .base import BaseScreen


def session_of(vm: TicketsViewModel) -> Any:
    return vm.session


class TodayScreen(BaseScreen):
    screen_name = "today"
    title_key = "today.title"
    tab = "today"
    live = True

    def build(self) -> None:
        session = self.c.session
        if session is None:
            return
        vm = TodayViewModel(session)
        vm.refresh()
        self.vm = vm
        self.title_label.text = f"{self.t('today.title')} · {session.today().isoformat()}"
        self.done_buttons: dict[str, FlatButton] = {}
        self.call_buttons: dict[str, FlatButton] = {}
        for title, items in vm.sections:
            self.section(f"{title} ({len(items)})")
            if not items:
                self.empty(self.t("today.nothing"))
            for item in items:
                row = BoxLayout(size_hint_y=None, height=dp(56))
                widget = ListItem(title=item.title, subtitle=item.subtitle, alert=item.late)
                if item.collection == "contracts":
                    widget.bind(
                        on_release=lambda _w, kid=item.id: self.c.go("contract", contract_id=kid)
                    )
                else:
                    widget.bind(
                        on_release=lambda _w, cid=item.customer_id: self.c.go(
                            "customer_detail", customer_id=cid
                        )
                    )
                row.add_widget(widget)
                side: FlatButton | None = None
                if item.collection == "tasks":
                    side = FlatButton(text=glyph("check"), font_name=ICON_FONT)
                    side.bind(on_release=lambda _b, tid=item.id: self._complete(tid))
                    self.done_buttons[item.id] = side
                elif item.phone:
                    side = FlatButton(text=glyph("call"), font_name=ICON_FONT)
                    side.bind(on_release=lambda _b, p=item.phone: self.c.open_uri(dial_uri(p)))
                    self.call_buttons[item.id] = side
                if side is not None:
                    side.size_hint = (None, None)
                    side.width, side.height = dp(52), dp(56)
                    row.add_widget(side)
                self.add(row)

    def _complete(self, task_id: str) -> None:
        self.vm.complete_task(task_id)
        self.render()


class PipelineScreen(BaseScreen):
    screen_name = "pipeline"
    title_key = "pipeline.title"
    tab = "pipeline"
    live = True

    def build(self) -> None:
        session = self.c.session
        if session is None:
            return
        vm = PipelineViewModel(session)
        vm.refresh()
        self.vm = vm
        if not vm.columns:
            self.empty(self.t("pipeline.no_stages"))
        for column in vm.columns:
            self.section(f"{column.stage.name} · {column.total_text}")
            for deal in column.deals:
                bits = [deal.customer, deal.amount, deal.probability, deal.close_date]
                self.item(
                    deal.name,
                    " · ".join(b for b in bits if b),
                    lambda oid=deal.id: self.c.go("deal", opportunity_id=oid),
                    pending=deal.pending,
                )


class DealScreen(BaseScreen):
    """One opportunity: move its stage, edit amount, probability and close date."""

    screen_name = "deal"
    title_key = "pipeline.edit"

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.vm: PipelineViewModel | None = None
        self.stage_buttons: dict[str, FlatButton] = {}
        self.inputs: dict[str, Any] = {}
        self.save_button: FsButton | None = None

    def on_pre_enter(self, *_: Any) -> None:
        session = self.c.session
        if session is not None:
            self.vm = PipelineViewModel(session)
            self.vm.refresh()
            self.vm.message = ""
        self.render()

    def build(self) -> None:
        vm = self.vm
        opportunity_id = self.params.get("opportunity_id")
        if vm is None or not opportunity_id:
            return
        vm.select(opportunity_id)
        card = next((d for col in vm.columns for d in col.deals if d.id == opportunity_id), None)
        if card is not None:
            self.add(TitleLabel(text=card.name))
            self.add(
                MutedLabel(
                    text=" · ".join(b for b in (card.customer, card.amount, card.probability) if b)
                )
            )
        self.section(self.t("pipeline.move"))
        grid = GridLayout(cols=2, size_hint_y=None, spacing=dp(4))
        grid.bind(minimum_height=grid.setter("height"))
        current = vm.stage_of(opportunity_id)
        self.stage_buttons = {}
        for stage in vm.stages:
            button = FlatButton(text=stage.name, selected=stage.id == current)
            button.bind(on_release=lambda _b, sid=stage.id: self.move(sid))
            self.stage_buttons[stage.id] = button
            grid.add_widget(button)
        self.add(grid)
        self.move_error = ErrorLabel(text=vm.errors.get("lost_reason", ""))
        self.add(self.move_error)
        if vm.message:
            self.add(MutedLabel(text=vm.message))
        self.set_action(
            self.t("action.edit"), lambda: self.c.go("deal_form", opportunity_id=opportunity_id)
        )
        self.section(self.t("pipeline.edit"))
        self.inputs = {}
        for key, label in (
            ("amount", "pipeline.amount"),
            ("probability", "pipeline.probability"),
        ):
            widget = FormField(
                self.t(label),
                vm.edit_values.get(key, ""),
                input_filter="float",
                on_text=partial(vm.edit_values.__setitem__, key),
            )
            widget.set_error(vm.errors.get(key, ""))
            self.inputs[key] = widget
            self.add(widget)
        close = DateField(
            self.c.tr.field_label("opportunities", "expected_close_date"),
            vm.edit_values.get("expected_close_date", ""),
            self.c.tr,
            vm.session.today(),
            partial(vm.edit_values.__setitem__, "expected_close_date"),
        )
        close.set_error(vm.errors.get("expected_close_date", ""))
        self.inputs["expected_close_date"] = close
        self.add(close)
        self.save_button = FsButton(text=self.t("action.save"))
        self.save_button.bind(on_release=lambda *_: self.save())
        self.add(self.save_button)

    def move(self, stage_id: str) -> None:
        """Won/Lost close the deal: ask first (Lost also asks why). Others move at once
        (with Undo in the snackbar)."""
        vm = self.vm
        opportunity_id = self.params.get("opportunity_id")
        if vm is None or not opportunity_id or vm.stage_of(opportunity_id) == stage_id:
            return
        if not vm.closes(stage_id):
            vm.move(opportunity_id, stage_id)
            self.render()
            return
        stage = next(s for s in vm.stages if s.id == stage_id)

        def confirmed(reason: str) -> None:
            if vm.move(opportunity_id, stage_id, lost_reason=reason):
                self.render()
            else:
                self.render()
                self.move_error.text = vm.errors.get("lost_reason", "")

        dialogs.confirm(
            self.c.tr,
            self.t("deals.close_lost" if stage.is_lost else "deals.close_won"),
            confirmed,
            reason_hint=self.c.tr.field_label("opportunities", "lost_reason")
            if stage.is_lost
            else None,
            danger=stage.is_lost,
        )

    def save(self) -> None:
        vm = self.vm
        if vm is None:
            return
        saved = vm.save_edit()
        edits = dict(vm.edit_values)
        errors = dict(vm.errors)
        self.render()
        if not saved:
            vm.edit_values.update(edits)
            vm.errors = errors
            for key, widget in self.inputs.items():
                if isinstance(widget, FormField):
                    widget.input.text = edits.get(key, "")
                widget.set_error(errors.get(key, ""))


class TicketsScreen(BaseScreen):
    screen_name = "tickets"
    title_key = "tickets.title"
    live = True

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.status_filter = FsSpinner()
        self.status_filter.bind(value=lambda _w, v: self._filter(v))
        self._filter_value = ""
        self._quiet = False

    def _filter(self, value: str) -> None:
        if not self._quiet and value != self._filter_value:
            self._filter_value = value
            self.render()

    def build(self) -> None:
        session = self.c.session
        if session is None:
            return
        vm = TicketsViewModel(session)
        vm.set_filter(self._filter_value or None)
        self.set_action("+ " + self.t("action.new"), lambda: self.c.go("ticket_form"))
        self._quiet = True
        self.status_filter.set_choices(
            [("", self.t("customers.all")), *vm.status_choices], self._filter_value
        )
        self._quiet = False
        if self.status_filter.parent is not None:
            self.status_filter.parent.remove_widget(self.status_filter)
        self.add(self.status_filter)
        if not vm.rows:
            self.empty(self.t("tickets.empty"))
        for row in vm.rows:
            bits = [row.customer, row.status_label, row.priority_label]
            if row.satisfaction:
                bits.append("★" * int(row.satisfaction))
            self.item(
                row.title,
                " · ".join(b for b in bits if b),
                lambda tid=row.id: self.c.go("ticket_detail", ticket_id=tid),
                alert=row.priority_label == session.tr.choice("priority", "urgent"),
                pending=row.pending,
            )


class TicketDetailScreen(BaseScreen):
    screen_name = "ticket_detail"
    live = False  # a pull must not wipe a half-typed comment

    def build(self) -> None:
        session = self.c.session
        ticket_id = self.params.get("ticket_id")
        if session is None or not ticket_id:
            return
        vm = TicketsViewModel(session)
        vm.refresh()
        vm.select(ticket_id)
        self.vm = vm
        row = vm.selected
        if row is None:
            return
        self.title_label.text = row.title
        self.add(MutedLabel(text=f"{row.customer} · {row.priority_label}"))
        ticket = session.store.collection("tickets").get(ticket_id)
        description = str(ticket.fields.get("description") or "") if ticket else ""
        self.description_label = FsLabel(text=description)
        if description:
            self.add(self.description_label)
        self.kb_button = self.buttons(
            [
                (
                    "knowledge",
                    self.t("tickets.knowledge"),
                    lambda: self.c.go("knowledge", ticket_id=ticket_id),
                )
            ],
            flat=True,
        )[self.t("tickets.knowledge")]
        self.section(self.t("tickets.status"))
        grid = GridLayout(cols=2, size_hint_y=None, spacing=dp(4))
        grid.bind(minimum_height=grid.setter("height"))
        self.status_buttons: dict[str, FlatButton] = {}
        for code, label in vm.status_choices:
            button = FlatButton(text=label, selected=code == row.status)
            button.bind(on_release=lambda _b, c=code: self._status(c))
            self.status_buttons[code] = button
            grid.add_widget(button)
        self.add(grid)
        self.section(self.t("tickets.rating"))
        stars = GridLayout(cols=5, size_hint_y=None, height=dp(40), spacing=dp(4))
        self.rating_buttons: dict[int, FlatButton] = {}
        for score in range(1, 6):
            button = FlatButton(text=f"{score}★", selected=row.satisfaction == score)
            button.bind(on_release=lambda _b, s=score: self._rate(s))
            self.rating_buttons[score] = button
            stars.add_widget(button)
        self.add(stars)
        if vm.message:
            self.add(MutedLabel(text=vm.message))
        self.section(self.t("tickets.comments"))
        if not vm.comments:
            self.empty(self.t("detail.none"))
        for comment in vm.comments:
            self.item(comment.body, comment.when, pending=comment.pending)
        self.comment_input = FsTextInput(multiline=True, hint_text=self.t("tickets.comment"))
        self.add(self.comment_input)
        send = FsButton(text=self.t("tickets.send"))
        send.bind(on_release=lambda *_: self._comment())
        self.send_button = send
        self.add(send)

    def _status(self, status: str) -> None:
        self.vm.set_status(self.params["ticket_id"], status)
        self.render()

    def _rate(self, score: int) -> None:
        self.vm.rate(self.params["ticket_id"], score)
        message = self.vm.message
        self.render()
        self.vm.message = message

    def _comment(self) -> None:
        if self.vm.add_comment(self.params["ticket_id"], self.comment_input.text):
            self.render()


class TicketFormScreen(BaseScreen):
    screen_name = "ticket_form"
    title_key = "tickets.new"

    def on_pre_enter(self, *_: Any) -> None:
        session = self.c.session
        if session is not None:
            self.vm = TicketsViewModel(session)
            self.vm.new_customer_id = self.params.get("customer_id") or ""
        self.render()

    def build(self) -> None:
        vm: TicketsViewModel | None = getattr(self, "vm", None)
        if vm is None:
            return
        self.customer = RecordField(
            self.t("tickets.customer"),
            RecordPicker(session_of(vm), "customers"),
            vm.new_customer_id,
            self.c.tr,
            lambda v: setattr(vm, "new_customer_id", v),
        )
        self.customer.set_error(vm.errors.get("customer_id", ""))
        self.add(self.customer)
        self.title_field = FormField(
            self.t("tickets.subject"), vm.new_title, on_text=lambda v: setattr(vm, "new_title", v)
        )
        self.title_field.set_error(vm.errors.get("title", ""))
        self.add(self.title_field)
        self.add(
            FormField(
                self.t("tickets.description"),
                vm.new_description,
                multiline=True,
                on_text=lambda v: setattr(vm, "new_description", v),
            )
        )
        self.add(
            ChoiceField(
                self.t("tickets.priority"),
                vm.priority_choices,
                vm.new_priority,
                on_value=lambda v: setattr(vm, "new_priority", v),
            )
        )
        self.add(ErrorLabel(text=""))
        save = FsButton(text=self.t("action.save"))
        save.bind(on_release=lambda *_: self.save())
        self.save_button = save
        self.add(save)

    def save(self) -> None:
        ticket_id = self.vm.create()
        if ticket_id is None:
            self.render()
            return
        self.c.go("ticket_detail", ticket_id=ticket_id)
