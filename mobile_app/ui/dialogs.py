"""Popups a phone app needs: confirm (optionally with a reason), date, time, and a
searchable record picker (customers by characters or pinyin, products)."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import date
from typing import Any

from kivy.metrics import dp
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.popup import Popup
from kivy.uix.scrollview import ScrollView

from mobile_app.viewmodels.pickers import RecordPicker

from .widgets import Column, DangerButton, FlatButton, FsButton, FsLabel, FsTextInput, ListItem

#: The dialog open right now (tests and screenshots reach it here).
current: dict[str, Any] = {}


def _popup(title: str, content: Any, height: float | None = None) -> Popup:
    popup = Popup(
        title=title,
        content=content,
        size_hint=(0.94, None) if height else (0.94, 0.9),
        height=height or 0,
        auto_dismiss=True,
    )
    current["popup"] = popup

    def dismissed(*_: Any) -> None:  # returning a value would veto the dismissal
        if current.get("popup") is popup:
            current.clear()

    popup.bind(on_dismiss=dismissed)
    return popup


def confirm(
    tr: Callable[..., str],
    message: str,
    on_yes: Callable[[str], None],
    *,
    reason_hint: str | None = None,
    danger: bool = False,
    yes_label: str | None = None,
) -> Popup:
    """Ask before a destructive or closing action; ``on_yes(reason)`` if confirmed."""
    box = BoxLayout(orientation="vertical", spacing=dp(8), padding=dp(4))
    label = FsLabel(text=message, color=(1, 1, 1, 1))
    box.add_widget(label)
    reason: FsTextInput | None = None
    if reason_hint is not None:
        reason = FsTextInput(multiline=False, hint_text=reason_hint)
        box.add_widget(reason)
    row = BoxLayout(size_hint_y=None, height=dp(44), spacing=dp(6))
    cancel = FlatButton(text=tr("action.cancel"), height=dp(44))
    yes_cls = DangerButton if danger else FsButton
    yes = yes_cls(text=yes_label or tr("action.confirm"))
    row.add_widget(cancel)
    row.add_widget(yes)
    box.add_widget(row)
    popup = _popup(tr("action.confirm"), box, dp(230 if reason is not None else 190))
    current.update(yes=yes, cancel=cancel, reason=reason)

    def accept(*_: Any) -> None:
        popup.dismiss(animation=False)
        on_yes(reason.text.strip() if reason is not None else "")

    cancel.bind(on_release=lambda *_: popup.dismiss(animation=False))
    yes.bind(on_release=accept)
    popup.open()
    return popup


def pick_date(
    tr: Callable[..., str], value: str, today: date, on_pick: Callable[[str], None]
) -> Popup:
    """A month calendar; tapping a day returns ``YYYY-MM-DD``."""
    try:
        shown = date.fromisoformat(value[:10]) if value else today
    except ValueError:
        shown = today
    state = {"year": shown.year, "month": shown.month}
    box = BoxLayout(orientation="vertical", spacing=dp(4))
    head = BoxLayout(size_hint_y=None, height=dp(40), spacing=dp(4))
    prev = FlatButton(text="‹", size_hint_x=None, width=dp(48))
    title = FsLabel(text="", halign="center", color=(1, 1, 1, 1))
    nxt = FlatButton(text="›", size_hint_x=None, width=dp(48))
    for w in (prev, title, nxt):
        head.add_widget(w)
    grid = GridLayout(cols=7, spacing=dp(2))
    box.add_widget(head)
    box.add_widget(grid)
    row = BoxLayout(size_hint_y=None, height=dp(44), spacing=dp(6))
    clear = FlatButton(text=tr("action.clear_value"), height=dp(44))
    today_button = FsButton(text=tr("action.today"))
    row.add_widget(clear)
    row.add_widget(today_button)
    box.add_widget(row)
    popup = _popup(tr("picker.date"), box, dp(420))
    days: dict[int, FlatButton] = {}
    current.update(days=days, today=today_button, clear=clear, next=nxt, prev=prev)

    def choose(text: str) -> None:
        popup.dismiss(animation=False)
        on_pick(text)

    def fill() -> None:
        grid.clear_widgets()
        days.clear()
        year, month = state["year"], state["month"]
        title.text = f"{year}-{month:02d}"
        zh = getattr(tr, "language", "zh") == "zh"
        names = ("一", "二", "三", "四", "五", "六", "日") if zh else calendar.day_abbr
        for name in names:
            grid.add_widget(FsLabel(text=name, halign="center", color=(1, 1, 1, 1)))
        first, count = calendar.monthrange(year, month)
        for _ in range(first):
            grid.add_widget(FsLabel(text=""))
        for day in range(1, count + 1):
            picked = date(year, month, day)
            button = FlatButton(text=str(day), selected=picked == shown)
            button.bind(on_release=lambda _b, d=picked: choose(d.isoformat()))
            days[day] = button
            grid.add_widget(button)

    def step(delta: int) -> None:
        month = state["month"] + delta
        state["year"] += (month - 1) // 12
        state["month"] = (month - 1) % 12 + 1
        fill()

    prev.bind(on_release=lambda *_: step(-1))
    nxt.bind(on_release=lambda *_: step(1))
    today_button.bind(on_release=lambda *_: choose(today.isoformat()))
    clear.bind(on_release=lambda *_: choose(""))
    fill()
    popup.open()
    return popup


def pick_time(tr: Callable[..., str], value: str, on_pick: Callable[[str], None]) -> Popup:
    """Hours then minutes (5-minute steps) as big buttons; returns ``HH:MM``."""
    box = BoxLayout(orientation="vertical", spacing=dp(4))
    label = FsLabel(text=value or "--:--", halign="center", color=(1, 1, 1, 1))
    box.add_widget(label)
    hours = GridLayout(cols=6, spacing=dp(2))
    minutes = GridLayout(cols=6, spacing=dp(2), size_hint_y=0.6)
    box.add_widget(hours)
    box.add_widget(minutes)
    popup = _popup(tr("picker.time"), box, dp(440))
    state = {"hour": value[:2] if len(value) >= 5 else "09"}
    hour_buttons: dict[int, FlatButton] = {}
    minute_buttons: dict[int, FlatButton] = {}
    current.update(hours=hour_buttons, minutes=minute_buttons)
    for h in range(24):
        b = FlatButton(text=f"{h:02d}", selected=state["hour"] == f"{h:02d}")
        hour_buttons[h] = b
        hours.add_widget(b)

        def set_hour(_b: Any, h: int = h) -> None:
            state["hour"] = f"{h:02d}"
            label.text = f"{state['hour']}:--"
            for k, other in hour_buttons.items():
                other.selected = k == h

        b.bind(on_release=set_hour)
    for m in range(0, 60, 5):
        b = FlatButton(text=f":{m:02d}")
        minute_buttons[m] = b
        minutes.add_widget(b)

        def done(_b: Any, m: int = m) -> None:
            popup.dismiss(animation=False)
            on_pick(f"{state['hour']}:{m:02d}")

        b.bind(on_release=done)
    popup.open()
    return popup


def pick_record(
    tr: Callable[..., str], picker: RecordPicker, title: str, on_pick: Callable[[str], None]
) -> Popup:
    """Search as you type (characters, pinyin, initials, phone) and tap a row."""
    box = BoxLayout(orientation="vertical", spacing=dp(4))
    search = FsTextInput(multiline=False, hint_text=tr("picker.search"))
    box.add_widget(search)
    scroll = ScrollView(do_scroll_x=False)
    column = Column()
    scroll.add_widget(column)
    box.add_widget(scroll)
    popup = _popup(title, box)
    current.update(search=search, rows=column)

    def fill() -> None:
        column.clear_widgets()
        if not picker.rows:
            column.add_widget(FsLabel(text=tr("picker.none"), color=(1, 1, 1, 1)))
        for row in picker.rows:
            item = ListItem(title=row.title, subtitle=row.subtitle)
            item.bind(on_release=lambda _i, rid=row.id: choose(rid))
            column.add_widget(item)

    def choose(record_id: str) -> None:
        popup.dismiss(animation=False)
        on_pick(record_id)

    def on_text(_w: Any, text: str) -> None:
        picker.set_query(text)
        fill()

    search.bind(text=on_text)
    picker.refresh()
    fill()
    popup.open()
    return popup
