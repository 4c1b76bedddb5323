"""Form widgets for dates, times and records (pickers, never typed formats), and the
builder that lays out any :class:`~mobile_app.viewmodels.forms.RecordForm`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import partial
from typing import Any

from kivy.metrics import dp
from kivy.uix.boxlayout import BoxLayout

from mobile_app.viewmodels.forms import RecordForm
from mobile_app.viewmodels.pickers import RecordPicker

from . import dialogs
from .widgets import ChoiceField, ErrorLabel, FlatButton, FormField, MutedLabel


class _Labelled(BoxLayout):
    def __init__(self, label: str, **kw: Any) -> None:
        super().__init__(orientation="vertical", size_hint_y=None, spacing=dp(2), **kw)
        self.bind(minimum_height=self.setter("height"))
        self.label = MutedLabel(text=label)
        self.add_widget(self.label)
        self.row = BoxLayout(size_hint_y=None, height=dp(40), spacing=dp(4))
        self.add_widget(self.row)
        self.error = ErrorLabel(text="")
        self.add_widget(self.error)

    def set_error(self, message: str) -> None:
        self.error.text = message


class DateField(_Labelled):
    """A date chosen from a calendar (``YYYY-MM-DD`` text; empty = none)."""

    def __init__(
        self,
        label: str,
        value: str,
        tr: Callable[..., str],
        today: date,
        on_value: Callable[[str], None],
    ) -> None:
        super().__init__(label)
        self.value = value
        self.button = FlatButton(text=value or tr("action.pick"))
        self.button.bind(on_release=lambda *_: dialogs.pick_date(tr, self.value, today, self._set))
        self.row.add_widget(self.button)
        self._tr = tr
        self._on_value = on_value

    def _set(self, value: str) -> None:
        self.value = value
        self.button.text = value or self._tr("action.pick")
        self._on_value(value)


class TimeField(_Labelled):
    """A time of day from the clock grid (``HH:MM``)."""

    def __init__(
        self, label: str, value: str, tr: Callable[..., str], on_value: Callable[[str], None]
    ) -> None:
        super().__init__(label)
        self.value = value
        self._tr = tr
        self._on_value = on_value
        self.button = FlatButton(text=value or tr("picker.time"))
        self.button.bind(on_release=lambda *_: dialogs.pick_time(tr, self.value, self._set))
        self.row.add_widget(self.button)

    def _set(self, value: str) -> None:
        self.value = value
        self.button.text = value or self._tr("picker.time")
        self._on_value(value)


class DateTimeField(_Labelled):
    """A date from the calendar and a time from the clock grid (``YYYY-MM-DD HH:MM``)."""

    def __init__(
        self,
        label: str,
        value: str,
        tr: Callable[..., str],
        today: date,
        on_value: Callable[[str], None],
    ) -> None:
        super().__init__(label)
        day, _, clock = value.partition(" ")
        self.day, self.clock = day, clock[:5]
        self._tr = tr
        self._on_value = on_value
        self.day_button = FlatButton(text=day or tr("picker.date"))
        self.time_button = FlatButton(text=self.clock or tr("picker.time"), size_hint_x=0.5)
        self.day_button.bind(
            on_release=lambda *_: dialogs.pick_date(tr, self.day, today, self._set_day)
        )
        self.time_button.bind(
            on_release=lambda *_: dialogs.pick_time(tr, self.clock, self._set_time)
        )
        self.row.add_widget(self.day_button)
        self.row.add_widget(self.time_button)

    def _set_day(self, value: str) -> None:
        self.day = value
        if value and not self.clock:
            self.clock = "09:00"
        self._emit()

    def _set_time(self, value: str) -> None:
        self.clock = value
        self._emit()

    def _emit(self) -> None:
        self.day_button.text = self.day or self._tr("picker.date")
        self.time_button.text = self.clock or self._tr("picker.time")
        self._on_value(f"{self.day} {self.clock}".strip() if self.day else "")


class RecordField(_Labelled):
    """A customer (or product) picked by searching characters or pinyin."""

    def __init__(
        self,
        label: str,
        picker: RecordPicker,
        value: str,
        tr: Callable[..., str],
        on_value: Callable[[str], None],
        title: str = "",
    ) -> None:
        super().__init__(label)
        self.picker = picker
        self.value = value
        self._tr = tr
        self._on_value = on_value
        self.button = FlatButton(text=picker.title_of(value) or tr("action.pick"))
        self.button.bind(
            on_release=lambda *_: dialogs.pick_record(
                tr, picker, title or tr("picker.customer"), self._set
            )
        )
        self.row.add_widget(self.button)

    def _set(self, record_id: str) -> None:
        self.value = record_id
        self.button.text = self.picker.title_of(record_id) or self._tr("action.pick")
        self._on_value(record_id)


FormWidget = FormField | ChoiceField | DateField | DateTimeField | RecordField


def build_form(screen: Any, vm: RecordForm, skip: tuple[str, ...] = ()) -> dict[str, FormWidget]:
    """Add one widget per field of ``vm`` to ``screen``'s content; the widgets by field."""
    tr = screen.c.tr
    session = vm.session
    widgets: dict[str, FormWidget] = {}
    for name in vm.FIELDS:
        if name in skip:
            continue
        kind = vm.kind(name)
        label = vm.label(name)
        value = vm.values.get(name, "")
        setter = partial(vm.set, name)
        widget: FormWidget
        if kind == "choice":
            widget = ChoiceField(label, vm.choices(name), value, on_value=setter)
        elif kind == "date":
            widget = DateField(label, value, tr, session.today(), setter)
        elif kind == "datetime":
            widget = DateTimeField(label, value, tr, session.today(), setter)
        elif kind == "customer":
            widget = RecordField(label, RecordPicker(session, "customers"), value, tr, setter)
        else:
            widget = FormField(
                label,
                value,
                multiline=kind == "multiline",
                input_filter="float" if kind == "number" else None,
                on_text=setter,
            )
        widget.set_error(vm.errors.get(name, ""))
        widgets[name] = widget
        screen.add(widget)
    return widgets


def show_errors(widgets: dict[str, FormWidget], errors: dict[str, str]) -> None:
    for name, widget in widgets.items():
        widget.set_error(errors.get(name, ""))
