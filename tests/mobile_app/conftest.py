"""Fixtures for the app's tests: real client_sdk stores in temporary directories.

View-model tests need no window. App tests (``@pytest.mark.app``) share ONE Kivy window
and ONE controller for the whole pytest process (``kivy_app``): Kivy cannot open a second
window in a process, and the kv rules are loaded once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from mobile_app.demo import DemoIds, DemoWorld, build_demo, fill_demo
from mobile_app.i18n import Translator
from mobile_app.viewmodels.account import sdk_backend
from mobile_app.viewmodels.base import CurrentUser, Session

#: A pinned "now" (10:00 UTC, a Tuesday) so Today's overdue/due lists are predictable.
NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


def pinned_clock() -> datetime:
    return NOW


@pytest.fixture
def tr() -> Translator:
    return Translator("en")


@pytest.fixture
def session(tmp_path: Path, tr: Translator) -> Iterator[Session]:
    """A real encrypted store (fast KDF) with no data, no server."""
    store = sdk_backend(fast_kdf=True).open_store(tmp_path / "store.db", "test-passphrase")
    s = Session(
        store=store, user=CurrentUser("u-rep1", "rep1", "Rep One"), tr=tr, clock=pinned_clock
    )
    yield s
    with contextlib.suppress(Exception):
        store.close()


@pytest.fixture
def demo(session: Session) -> DemoIds:
    """The demo book written into ``session``'s store (pending local writes)."""
    return fill_demo(session.store, session.today(), user_id=session.user.id)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[DemoWorld]:
    """A store synced with the SDK's fake server: two conflicts, a rejected write, a visit unsent."""
    w = build_demo(tmp_path / "world", NOW.astimezone().date(), language="en")
    w.session.clock = pinned_clock
    yield w
    with contextlib.suppress(Exception):
        w.session.store.close()


def today() -> date:
    return NOW.astimezone().date()


def names(rows: Any) -> list[str]:
    return [r.name for r in rows]


# -- one Kivy window and App for the whole process ---------------------------------------
class AppDriver:
    """Drives the real FieldsyncApp in the offscreen window: taps, typing, waiting."""

    def __init__(self, app: Any, backend_state: dict[str, Any]) -> None:
        self.app = app
        self.backend_state = backend_state

    @property
    def controller(self) -> Any:
        return self.app.controller

    @property
    def screen(self) -> Any:
        return self.controller.current

    def pump(self, frames: int = 2) -> None:
        from kivy.base import EventLoop

        for _ in range(frames):
            EventLoop.idle()

    def wait_until(self, condition: Any, timeout: float = 20.0) -> None:
        import time

        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            self.pump(1)
            time.sleep(0.01)

    def tap(self, target: Any) -> None:
        """A finger down and up on the middle of a widget (scrolled into view first).

        ``target`` is the widget, or a function that finds it: a live screen rebuilds
        itself when its data changes (a sync, the search index built after one), which
        replaces its widgets — a widget looked up before may be detached by the time it
        is tapped, so a function is asked again on every attempt."""
        from kivy.tests.common import UnitTestTouch
        from kivy.uix.scrollview import ScrollView
        from kivy.uix.widget import Widget

        def find() -> Any:
            return target if isinstance(target, Widget) else target()

        def scroll_of(widget: Any) -> Any:
            parent = widget.parent
            for _ in range(50):  # the Window is its own parent: walk a bounded chain
                if parent is None:
                    return None
                if isinstance(parent, ScrollView):
                    return parent
                parent = parent.parent
            return None

        self.pump(1)
        for attempt in range(20):  # a fresh layout may need a few frames to settle
            widget = find()
            scroll = scroll_of(widget)
            if scroll is not None and scroll.viewport_size[1] > scroll.height:
                if attempt >= 3:  # a fling left over from an earlier tap fights scroll_to
                    for effect in (scroll.effect_x, scroll.effect_y):
                        if effect is not None:
                            effect.cancel()
                            effect.velocity = 0
                scroll.scroll_to(widget, padding=10, animate=False)
            elif scroll is not None and attempt >= 3:
                # the content fits: nothing to scroll to. (Kivy's scroll_to then moves
                # scroll_y by a whole unit per call, and the overscroll effect, whose
                # bounds are inverted for short content, carries it off screen.)
                effect = scroll.effect_y
                if effect is not None:
                    effect.cancel()
                    effect.velocity = 0
                    effect.value = effect.min
                scroll.scroll_y = 1
            self.pump(2)
            x, y = widget.to_window(*widget.center)
            self.pump(2)
            settled = (x, y) == tuple(widget.to_window(*widget.center))
            attached = widget.get_root_window() is not None
            if settled and attached and self.controller.sm.collide_point(x, y):
                break
        assert attached and self.controller.sm.collide_point(x, y), (
            f"{widget} is off screen at {x},{y}; attached: {attached}"
            f"; scroll: {scroll is not None}; screen: {self.controller.sm.current}"
        )
        touch = UnitTestTouch(x, y)
        touch.touch_down()  # a quick tap: up before the ScrollView's scroll timeout
        touch.touch_up()
        self.pump(3)

    def type(self, text_input: Any, text: str) -> None:
        """Focus a text field by tapping it, then type ``text`` as the keyboard/IME would."""
        from kivy.core.window import Window

        for _ in range(3):  # a loaded machine can stretch a tap past the scroll timeout
            self.tap(text_input)
            if text_input.focus:
                break

        assert text_input.focus, (
            "tapping the field did not focus it",
            text_input.disabled,
            [type(w).__name__ for w in Window.children],
            text_input.get_root_window() is not None,
        )
        Window.dispatch("on_textinput", text)
        self.pump(2)

    def items(self, container: Any | None = None) -> list[Any]:
        """The ListItems in the current screen's content, top to bottom."""
        from mobile_app.ui.widgets import ListItem

        root = container or self.screen.content
        return [w for w in root.walk(restrict=True) if isinstance(w, ListItem)]

    def begin(self, world: DemoWorld) -> None:
        self.controller.begin_session(world.session, background_sync=False)
        self.pump(3)

    def end(self) -> None:
        from mobile_app.ui import dialogs

        popup = dialogs.current.get("popup")
        if popup is not None:
            popup.dismiss(animation=False)
        self.controller.banner = ""
        self.controller.end_session(navigate=False)
        # leave nothing for the next test: no saved account or store, no server
        self.controller.files.forget()
        self.backend_state["server"] = None
        self.backend_state["live"] = False
        self.pump(1)

    def find(self, text: str, root: Any | None = None) -> Any:
        """The first widget whose (markup-free) text ends with ``text``."""
        import re

        for widget in (root or self.screen).walk(restrict=True):
            label = getattr(widget, "text", None)
            if isinstance(label, str) and re.sub(r"\[/?[a-z]+[^\]]*\]", "", label).strip().endswith(
                text
            ):
                return widget
        raise AssertionError(f"no widget says {text!r}")


@pytest.fixture(scope="session")
def kivy_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppDriver]:
    from kivy.config import Config

    Config.set("graphics", "width", "360")
    Config.set("graphics", "height", "640")
    from kivy.base import EventLoop
    from kivy.core.window import Window

    from client_sdk import SyncClient, SyncConfig
    from mobile_app.main import FieldsyncApp
    from mobile_app.viewmodels.account import Backend
    from mobile_app.viewmodels.links import RecordingLauncher
    from mobile_app.viewmodels.visit import NoLocation

    state: dict[str, Any] = {"server": None, "live": False}
    real = sdk_backend(fast_kdf=True)

    def make_client(store: Any, _url: str) -> Any:
        return SyncClient(store, state["server"].transport(), SyncConfig(sleep=lambda _s: None))

    def subscribe_live(client: Any, url: str, on_poke: Any, on_state: Any) -> Any:
        """Live pokes only in a test that serves them (``backend_state["live"]``)."""
        if not state.get("live") or real.subscribe_live is None:
            raise TypeError("no live server in this test: polling only")
        return real.subscribe_live(client, url, on_poke, on_state)

    backend = Backend(
        open_store=real.open_store, make_client=make_client, subscribe_live=subscribe_live
    )
    app = FieldsyncApp(
        backend=backend,
        data_dir=tmp_path_factory.mktemp("app-data"),
        tr=Translator("en"),
        controller_options={
            "location": NoLocation(),
            "auto_sync_s": None,
            "clock": pinned_clock,
            "launcher": RecordingLauncher(),
            "undo_s": 600.0,  # a loaded machine must not expire the snackbar mid-test
        },
    )
    app._run_prepare()
    Window.size = (360, 640)
    EventLoop.idle()
    driver = AppDriver(app, state)
    yield driver
    driver.controller.end_session(navigate=False)
    app.stop()
