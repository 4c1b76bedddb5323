"""The app's building blocks (styled in fieldsync.kv)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kivy.metrics import dp
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.gridlayout import GridLayout
from kivy.uix.label import Label
from kivy.uix.scrollview import ScrollView
from kivy.uix.spinner import Spinner
from kivy.uix.textinput import TextInput


class FsLabel(Label):
    pass


class MutedLabel(FsLabel):
    pass


class ErrorLabel(FsLabel):
    pass


class TitleLabel(FsLabel):
    pass


class SectionHeader(FsLabel):
    pass


class FsButton(Button):
    pass


class FlatButton(FsButton):
    selected = BooleanProperty(False)


class DangerButton(FsButton):
    pass


class FsTextInput(TextInput):
    has_error = BooleanProperty(False)


class FsSpinner(Spinner):
    """A choice field that shows labels but reports codes (``value``)."""

    value = StringProperty("")

    def __init__(self, choices: Sequence[tuple[str | None, str]] = (), **kw: Any) -> None:
        super().__init__(**kw)
        self._codes: list[str] = []
        self.set_choices(choices)
        self.bind(text=self._on_text)

    def set_choices(
        self, choices: Sequence[tuple[str | None, str]], value: str | None = None
    ) -> None:
        self._codes = [c or "" for c, _ in choices]
        self._labels = [label for _, label in choices]
        self.values = self._labels
        self.select(value if value is not None else self.value)

    def select(self, code: str | None) -> None:
        code = code or ""
        if code in self._codes:
            self.text = self._labels[self._codes.index(code)]
        elif self._labels:
            self.text = self._labels[0]
        self.value = code if code in self._codes else (self._codes[0] if self._codes else "")

    def _on_text(self, _w: Any, text: str) -> None:
        if text in self._labels:
            self.value = self._codes[self._labels.index(text)]


class ListItem(ButtonBehavior, BoxLayout):
    title = StringProperty("")
    subtitle = StringProperty("")
    alert = BooleanProperty(False)
    accent = BooleanProperty(False)
    pressed = BooleanProperty(False)

    def on_state(self, _w: Any, state: str) -> None:
        self.pressed = state == "down"


class SyncBar(BoxLayout):
    online = BooleanProperty(False)
    summary = StringProperty("")
    badge_text = StringProperty("")
    badge = NumericProperty(0)

    __events__ = ("on_inbox",)

    def on_inbox(self) -> None:
        pass


class NavButton(Button):
    active = BooleanProperty(False)


class Banner(ButtonBehavior, Label):
    """A message across the top (a reminder, "this phone was wiped"); tap to dismiss."""


class Snackbar(BoxLayout):
    """ "Task done · Undo" above the tab bar while an action can be taken back."""

    message = StringProperty("")
    undo_text = StringProperty("")

    __events__ = ("on_undo",)

    def on_undo(self) -> None:
        pass


class NavBar(BoxLayout):
    pass


class ScreenBody(BoxLayout):
    pass


class Column(BoxLayout):
    pass


class ChoiceRow(GridLayout):
    pass


def scroll_column() -> tuple[ScrollView, Column]:
    """A vertical scrolling column (the content area of most screens). Content shorter
    than the screen does not move at all: with Kivy's ``always_overscroll`` such content
    could be flung off the screen (the effect's bounds are inverted for it)."""
    scroll = ScrollView(do_scroll_x=False, bar_width=dp(4), always_overscroll=False)
    column = Column()
    scroll.add_widget(column)
    return scroll, column


class FormField(BoxLayout):
    """Label, input and the validation message under it."""

    def __init__(
        self,
        label: str,
        text: str = "",
        *,
        hint: str = "",
        multiline: bool = False,
        password: bool = False,
        input_filter: str | None = None,
        on_text: Callable[[str], None] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(orientation="vertical", size_hint_y=None, spacing=dp(2), **kw)
        self.bind(minimum_height=self.setter("height"))
        self.label = MutedLabel(text=label)
        self.input = FsTextInput(
            text=text,
            hint_text=hint,
            multiline=multiline,
            password=password,
            input_filter=input_filter,
        )
        self.error = ErrorLabel(text="")
        for w in (self.label, self.input, self.error):
            self.add_widget(w)
        if on_text is not None:
            self.input.bind(text=lambda _w, value: on_text(value))

    def set_error(self, message: str) -> None:
        self.error.text = message
        self.input.has_error = bool(message)


class ChoiceField(BoxLayout):
    """Label and a spinner of (code, label) choices."""

    def __init__(
        self,
        label: str,
        choices: Sequence[tuple[str | None, str]],
        value: str | None = None,
        on_value: Callable[[str], None] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(orientation="vertical", size_hint_y=None, spacing=dp(2), **kw)
        self.bind(minimum_height=self.setter("height"))
        self.label = MutedLabel(text=label)
        self.spinner = FsSpinner(choices=choices)
        self.spinner.select(value)
        self.error = ErrorLabel(text="")
        for w in (self.label, self.spinner, self.error):
            self.add_widget(w)
        if on_value is not None:
            self.spinner.bind(value=lambda _w, v: on_value(v))

    def set_error(self, message: str) -> None:
        self.error.text = message
