"""The frame every in-app screen shares: sync bar, banner, header, scrolling content,
the Undo snackbar and the tab bar.

A screen is thin: ``render()`` reads its view-model and rebuilds the widgets; taps call
view-model actions and re-render. Screens are re-rendered when entered, when the
language switches and when the store reports changes from a sync. Every screen opens
at the top (entering one never keeps the last record's scroll position). A store that
was closed or wiped under a screen (an administrator's wipe mid-session) sends the
app back to first run instead of failing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kivy.metrics import dp
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import Screen
from kivy.uix.widget import Widget

from mobile_app.ui.icons import icon_markup
from mobile_app.ui.widgets import (
    Banner,
    FlatButton,
    FsButton,
    ListItem,
    MutedLabel,
    NavBar,
    NavButton,
    ScreenBody,
    SectionHeader,
    Snackbar,
    SyncBar,
    TitleLabel,
    scroll_column,
)

if TYPE_CHECKING:
    from mobile_app.ui.controller import AppController

NAV_TABS = (
    ("today", "nav.today", "today"),
    ("customers", "nav.customers", "customers"),
    ("pipeline", "nav.pipeline", "pipeline"),
    ("tasks", "nav.tasks", "tasks"),
    ("more", "nav.more", "more"),
)


class BaseScreen(Screen):
    screen_name = ""
    title_key = ""
    #: The tab highlighted in the tab bar (``None``: a sub-screen with a back button).
    tab: str | None = None
    chrome = True

    def __init__(self, controller: AppController, **kw: Any) -> None:
        super().__init__(name=self.screen_name, **kw)
        self.c = controller
        self.params: dict[str, Any] = {}
        self.body = ScreenBody()
        self.add_widget(self.body)
        self.sync_bar: SyncBar | None = None
        if self.chrome:
            self.sync_bar = SyncBar()
            self.sync_bar.bind(on_inbox=lambda *_: controller.open_inbox())
            self.body.add_widget(self.sync_bar)
        self.banner = Banner()
        self.banner.bind(on_release=lambda *_: controller.dismiss_banner())
        self.body.add_widget(self.banner)
        self.header = BoxLayout(
            size_hint_y=None, height=dp(48), padding=(dp(8), dp(4)), spacing=dp(6)
        )
        self.back_button: FlatButton | None = None
        if self.tab is None and self.chrome:
            self.back_button = FlatButton(size_hint_x=None, width=dp(64))
            self.back_button.bind(on_release=lambda *_: controller.back())
            self.header.add_widget(self.back_button)
        self.title_label = TitleLabel()
        self.header.add_widget(self.title_label)
        self.action_button: FsButton | None = None
        self.body.add_widget(self.header)
        self.scroll, self.content = scroll_column()
        self.body.add_widget(self.scroll)
        self.snackbar = Snackbar()
        self.snackbar.bind(on_undo=lambda *_: controller.undo())
        self.body.add_widget(self.snackbar)
        self.nav_buttons: dict[str, NavButton] = {}
        if self.chrome:
            nav = NavBar()
            for key, _label, _icon in NAV_TABS:
                button = NavButton(active=key == self.tab)
                button.bind(on_release=lambda _b, k=key: controller.go(k, reset=True))
                self.nav_buttons[key] = button
                nav.add_widget(button)
            self.body.add_widget(nav)

    # -- helpers for subclasses ------------------------------------------------------
    def t(self, key: str, **values: object) -> str:
        return self.c.tr(key, **values)

    def set_action(self, label: str, callback: Any) -> FsButton:
        if self.action_button is None:
            self.action_button = FsButton(size_hint=(None, None), width=dp(84), height=dp(38))
            self.header.add_widget(self.action_button)
        self.action_button.text = label
        self.action_button.unbind(on_release=self._action)
        self._action_callback = callback
        self.action_button.bind(on_release=self._action)
        return self.action_button

    def _action(self, *_: Any) -> None:
        self._action_callback()

    def add(self, widget: Widget) -> Widget:
        self.content.add_widget(widget)
        return widget

    def section(self, title: str) -> None:
        self.add(SectionHeader(text=title))

    def item(
        self,
        title: str,
        subtitle: str = "",
        on_tap: Any = None,
        *,
        alert: bool = False,
        pending: bool = False,
    ) -> ListItem:
        if pending:
            subtitle = (
                f"{subtitle} · ↑ {self.t('detail.pending')}"
                if subtitle
                else f"↑ {self.t('detail.pending')}"
            )
        widget = ListItem(title=title, subtitle=subtitle, alert=alert, accent=pending)
        if on_tap is not None:
            widget.bind(on_release=lambda *_: on_tap())
        self.add(widget)
        return widget

    def buttons(
        self, specs: list[tuple[str, str, Any]], *, cols: int = 0, flat: bool = False
    ) -> dict[str, FsButton]:
        """A row (or grid) of icon buttons: ``(icon, label, on_tap)``; the buttons by label."""
        from kivy.uix.gridlayout import GridLayout

        from mobile_app.ui.icons import with_icon

        n = cols or min(len(specs), 3)
        grid = GridLayout(cols=n, size_hint_y=None, spacing=dp(6))
        grid.bind(minimum_height=grid.setter("height"))
        out: dict[str, FsButton] = {}
        for icon, label, on_tap in specs:
            cls = FlatButton if flat else FsButton
            button = cls(text=with_icon(icon, label), markup=True, height=dp(44))
            button.bind(on_release=lambda _b, f=on_tap: f())
            grid.add_widget(button)
            out[label] = button
        self.add(grid)
        return out

    def reset_scroll(self) -> None:
        """Back to the top, with no movement left over from the last visit to this screen
        (a fling or overscroll still running would scroll against the old height)."""
        effect = self.scroll.effect_y
        if effect is not None:
            effect.cancel()
            effect.velocity = 0
            effect.value = effect.min
        self.scroll.scroll_y = 1

    def empty(self, text: str) -> None:
        self.add(MutedLabel(text=text))

    # -- lifecycle -------------------------------------------------------------------
    def on_pre_enter(self, *_: Any) -> None:
        self.prepare()
        self.reset_scroll()  # every screen opens at the top
        self.render()

    def on_enter(self, *_: Any) -> None:
        self.reset_scroll()  # again once laid out: the content height is known now

    def prepare(self) -> None:
        """Make this visit's view-model from ``params`` (subclasses)."""

    def render(self) -> None:
        self.title_label.text = self.t(self.title_key) if self.title_key else ""
        if self.back_button is not None:
            self.back_button.markup = True
            self.back_button.text = f"{icon_markup('back')} {self.t('action.back')}"
        for key, label, icon in NAV_TABS:
            if key in self.nav_buttons:
                self.nav_buttons[key].text = f"{icon_markup(icon, '20sp')}\n{self.t(label)}"
        self.update_sync_bar()
        self.update_overlays()
        self.content.clear_widgets()
        try:
            self.build()
        except Exception as exc:
            if not self.c.store_gone(exc):
                raise

    def update_overlays(self) -> None:
        """The banner (reminders, session messages) and the Undo snackbar."""
        self.banner.text = self.c.banner
        undo = self.c.session.undo if self.c.session is not None else None
        offer = undo.current if undo is not None and undo.active else None
        self.snackbar.message = offer.message if offer else ""
        self.snackbar.undo_text = self.t("action.undo")

    def build(self) -> None:
        """Fill ``self.content`` from the view-model (subclasses)."""

    def update_sync_bar(self) -> None:
        vm = self.c.sync_vm
        if self.sync_bar is None or vm is None:
            return
        self.sync_bar.online = vm.online
        self.sync_bar.summary = vm.summary
        self.sync_bar.badge_text = vm.badge_text
        self.sync_bar.badge = vm.badge
