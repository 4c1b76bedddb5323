"""Navigation and the session's lifetime: which screen shows, and syncing in the background.

The controller owns the ScreenManager, the current :class:`Session` (an unlocked store
plus sync client) and the sync bar's view-model. Sync runs on a worker thread — at
start, every ``auto_sync_s`` seconds, on "sync now" and whenever the server pokes — and
store events (from any thread) are marshalled onto Kivy's main thread before a widget
is touched.

**Live.** While online the controller holds the server's event stream
(``Backend.subscribe_live``, the SDK's ``LiveSubscription``): a poke ("your scope has
changes") syncs at once — once more right after a sync already running — so a
manager's edit is on the rep's screen within a second. While the stream is up the
timer only polls every ``LIVE_POLL_S`` (a safety net); when it drops (offline, server
restarting, a proxy that cuts streams) the app syncs once and polls every
``auto_sync_s`` again until the stream is back.

It also carries what outlives one screen: the Undo snackbar's offer, the banner (task
reminders where the platform has no notifications; "this phone was wiped / revoked"),
the platform services (open a URI, notify, location) and the session's end — a
device revoked *without* wipe keeps the session readable (the rep exports and signs
out); a store wiped under the app returns to first run with a message.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kivy.clock import Clock
from kivy.uix.screenmanager import NoTransition, ScreenManager

from mobile_app.i18n import Translator
from mobile_app.viewmodels.account import (
    AccountFiles,
    Backend,
    account_language,
    preload_search,
)
from mobile_app.viewmodels.base import Session
from mobile_app.viewmodels.inbox import KeptNotes, remember_names
from mobile_app.viewmodels.links import LauncherPort
from mobile_app.viewmodels.photos import attachments_of
from mobile_app.viewmodels.ports import LivePort, UploadsPort
from mobile_app.viewmodels.sync_bar import SyncBarViewModel
from mobile_app.viewmodels.tasks import due_reminders
from mobile_app.viewmodels.visit import LocationProvider, NoLocation

from .camera import NoCamera
from .platform import NoNotifier, PlatformLauncher
from .screens import ALL_SCREENS
from .screens.base import BaseScreen

#: How often task reminders are checked (seconds).
REMINDER_CHECK_S = 60.0
#: How often the app still polls while the live stream is up (a safety net only).
LIVE_POLL_S = 300.0


class AppController:
    def __init__(
        self,
        backend: Backend,
        files: AccountFiles,
        tr: Translator,
        *,
        location: LocationProvider | None = None,
        clock: Callable[[], datetime] | None = None,
        auto_sync_s: float | None = 30.0,
        camera: Any = None,
        launcher: LauncherPort | None = None,
        notifier: Any = None,
        undo_s: float | None = None,
    ) -> None:
        self.backend = backend
        self.files = files
        self.tr = tr
        self.location: LocationProvider = location or NoLocation()
        self.camera: Any = camera or NoCamera()
        self.launcher: LauncherPort = launcher or PlatformLauncher()
        self.notifier: Any = notifier or NoNotifier()
        self.banner = ""
        self.undo_s = undo_s
        self.announced: set[str] = set()
        self.revoked = False
        self.uploads: UploadsPort | None = None
        self.clock = clock
        self.auto_sync_s = auto_sync_s
        self.default_server_url: str | None = None
        self.session: Session | None = None
        self.sync_vm: SyncBarViewModel | None = None
        self.history: list[tuple[str, dict[str, Any]]] = []
        self.sm = ScreenManager(transition=NoTransition())
        self.screens: dict[str, BaseScreen] = {}
        for cls in ALL_SCREENS:
            screen = cls(self)
            self.screens[screen.name] = screen
            self.sm.add_widget(screen)
        self._sync_thread: threading.Thread | None = None
        self._index_thread: threading.Thread | None = None
        #: A sync is running; a poke came during it (the sync thread goes round once
        #: more). Both guarded by ``_sync_lock``: a poke is never dropped in between.
        self._sync_lock = threading.Lock()
        self._syncing = False
        self._sync_again = False
        self.live: LivePort | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._auto_event: Any = None
        self._reminder_event: Any = None
        self._undo_event: Any = None
        self._render_pending = False
        tr.subscribe(lambda _lang: self.render_current())

    # -- start and session -----------------------------------------------------------
    def start(self) -> None:
        account = self.files.load()
        if account is None:
            self.go("first_run", reset=True)
            return
        language = account_language(account)
        if language:
            self.tr.set_language(language)
        self.go("unlock", reset=True)

    def begin_session(
        self, session: Session, *, initial_sync: bool = False, background_sync: bool = True
    ) -> None:
        self.end_session(wipe=False, navigate=False)
        if self.clock is not None:
            session.clock = self.clock
        self.session = session
        if self.undo_s is not None:
            session.undo.seconds = self.undo_s
        self.revoked = False
        self._load_kept_notes(session)
        self._unsubscribe.append(session.undo.subscribe(self._on_undo_offer))
        self.sync_vm = SyncBarViewModel(session)
        self._unsubscribe.append(self.sync_vm.subscribe(self._on_sync_state))
        self._unsubscribe.append(self.sync_vm.close)
        self._unsubscribe.append(session.store.subscribe(self._on_store_event))
        self.sync_vm.refresh()
        status: Any = session.store.status()
        if getattr(status, "revoked", False):
            self.revoked = True
            self.banner = self.tr("session.revoked")
        if getattr(status, "locked", False):
            self.lease_expired()
            return
        if initial_sync:
            self.go("initial_sync", reset=True)
            return
        self.go("today", reset=True)
        if background_sync:
            self.start_background_sync()

    def _load_kept_notes(self, session: Session) -> None:
        """Refused writes kept as notes: their ids live in account.json (no content)."""
        account = self.files.load()
        ids = list(account.extra.get("kept_notes", [])) if account else []

        def save(kept: list[str]) -> None:
            current = self.files.load()
            if current is not None:
                current.extra["kept_notes"] = kept
                self.files.save(current)

        session.extras["kept_notes"] = KeptNotes(ids, save)

    def start_background_sync(self) -> None:
        self._start_uploads()
        self.sync_now()
        self._poll_every(self.auto_sync_s)
        self._start_live()
        if self._reminder_event is None:
            self.check_reminders()
            self._reminder_event = Clock.schedule_interval(
                lambda _dt: self.check_reminders(), REMINDER_CHECK_S
            )

    def _poll_every(self, seconds: float | None) -> None:
        if self._auto_event is not None:
            self._auto_event.cancel()
            self._auto_event = None
        if seconds:
            self._auto_event = Clock.schedule_interval(lambda _dt: self.sync_now(), seconds)

    # -- live pokes ------------------------------------------------------------------
    def _start_live(self) -> None:
        session = self.session
        subscribe = self.backend.subscribe_live
        if session is None or session.client is None or subscribe is None or self.live:
            return
        if not session.server_url.startswith(("http://", "https://")) or self.revoked:
            return
        try:
            self.live = subscribe(
                session.client, session.server_url, self._on_poke, self._on_live_state
            )
        except TypeError:  # a client that cannot stream (a demo, a fake): polling only
            self.live = None

    def _stop_live(self) -> None:
        live, self.live = self.live, None
        if live is not None:
            live.stop(timeout_s=1.0)  # a daemon thread; never hold the UI for long

    def _on_poke(self) -> None:
        """The server has changes for this phone (the subscription's thread)."""
        Clock.schedule_once(lambda _dt: self.sync_now(again=True))

    def _on_live_state(self, connected: bool) -> None:
        Clock.schedule_once(lambda _dt: self._live_state(connected))

    def _live_state(self, connected: bool) -> None:
        if self.session is None or self.live is None:
            return
        if connected:
            self._poll_every(max(self.auto_sync_s, LIVE_POLL_S) if self.auto_sync_s else None)
        else:
            self._poll_every(self.auto_sync_s)
            self.sync_now(again=True)  # whatever was announced while the stream was down

    def _start_uploads(self) -> None:
        """Photos upload on their own thread beside the record sync (never inside it)."""
        session = self.session
        if session is None or self.uploads is not None:
            return
        attachments = attachments_of(session)
        if attachments is None:
            return
        from mobile_app.viewmodels.account import sdk_uploads

        self.uploads = sdk_uploads(
            attachments,
            session.client,
            session.extras.get("attachment_transport"),
            interval_s=self.auto_sync_s or 30.0,
        )
        if self.uploads is not None:
            self.uploads.start()

    def trigger_uploads(self) -> None:
        """Upload now (after a photo was attached, after a sync found the network)."""
        if self.uploads is not None:
            if not self.uploads.running:  # it stops itself on an auth error; try again
                self.uploads.start()
            self.uploads.trigger()

    def end_session(self, *, wipe: bool = False, navigate: bool = True) -> None:
        self._stop_live()
        for event in (self._auto_event, self._reminder_event, self._undo_event):
            if event is not None:
                event.cancel()
        self._auto_event = self._reminder_event = self._undo_event = None
        uploads, self.uploads = self.uploads, None
        if uploads is not None:
            uploads.stop()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        session, self.session, self.sync_vm = self.session, None, None
        if session is not None and not wipe:
            thread = self._sync_thread
            if thread is not None and thread.is_alive():
                thread.join(timeout=10)
            with contextlib.suppress(Exception):
                session.store.close()
        if navigate:
            self.start()

    # -- navigation ------------------------------------------------------------------
    @property
    def current(self) -> BaseScreen:
        return self.screens[self.sm.current]

    def go(self, name: str, *, reset: bool = False, **params: Any) -> BaseScreen:
        screen = self.screens[name]
        if reset:
            self.history = []
        elif self.sm.current and self.sm.current != name:
            self.history.append((self.sm.current, dict(self.current.params)))
        screen.params = params
        if self.sm.current == name:
            screen.on_pre_enter()  # a fresh visit: new params, new view-model
            screen.reset_scroll()
        else:
            self.sm.current = name
        return screen

    def back(self) -> None:
        if not self.history:
            self.go("today", reset=True)
            return
        name, params = self.history.pop()
        screen = self.screens[name]
        screen.params = params
        if self.sm.current == name:
            screen.render()
        else:
            self.sm.current = name

    def open_inbox(self) -> None:
        vm = self.sync_vm
        self.go("rejected" if vm and vm.rejected and not vm.conflicts else "conflicts")

    def render_current(self) -> None:
        if self.sm.current:
            self.current.render()

    # -- sync ------------------------------------------------------------------------
    def sync_now(
        self, done: Callable[[bool, str], None] | None = None, *, again: bool = False
    ) -> None:
        """Sync on a worker thread (one at a time); ``done(ok, error)`` on the main thread.
        ``again``: when a sync is already running, go round once more after it (a poke
        may announce what that sync's pull has already passed)."""
        session = self.session
        if session is None or session.client is None:
            return
        with self._sync_lock:
            if self._syncing:
                self._sync_again = self._sync_again or again
                return
            if self.revoked:
                return  # revoked without wipe: the work stays readable; no more syncing
            self._syncing = True
            self._sync_again = False
        client = session.client
        with contextlib.suppress(Exception):  # a closed store: the sync will say so
            remember_names(session)  # a refused write must still name its customer

        def work() -> None:
            ok, error = True, ""
            try:
                while True:
                    client.sync()
                    with self._sync_lock:  # a poke from now on starts a sync of its own
                        if not self._sync_again:
                            self._syncing = False
                            break
                        self._sync_again = False
            except Exception as exc:  # offline, server down: the sync bar says so
                with self._sync_lock:
                    self._syncing = self._sync_again = False
                ok, error = False, str(exc) or type(exc).__name__
                Clock.schedule_once(lambda _dt, e=exc: self._sync_failed(e))
            if ok:
                self.trigger_uploads()  # online: the photos' turn, on their own thread
            Clock.schedule_once(lambda _dt: self._after_sync(ok, error, done))
            if ok:
                self._build_search_index(session)

        self._sync_thread = threading.Thread(target=work, name="fieldsync-sync", daemon=True)
        self._sync_thread.start()

    def _build_search_index(self, session: Session) -> None:
        """After a sync, build the search indexes (``store.preload()``, a no-op once built)
        on a thread of their own — not the UI thread, and not the sync thread either, so
        signing out (which waits for the sync thread) never waits for an index build: the
        store closes under it and the first search builds the index instead."""
        with self._sync_lock:
            running = self._index_thread
            if running is not None and running.is_alive():
                return
            self._index_thread = threading.Thread(
                target=preload_search, args=(session.store,), name="fieldsync-index", daemon=True
            )
            self._index_thread.start()

    def _after_sync(self, ok: bool, error: str, done: Callable[[bool, str], None] | None) -> None:
        if self.sync_vm is not None:
            self.sync_vm.refresh()
        if done is not None:
            done(ok, error)

    def _sync_failed(self, exc: BaseException) -> None:
        """A revoked device stops syncing; a wiped store ends the session (first run)."""
        session = self.session
        if session is None:
            return
        closed = bool(getattr(session.store, "closed", False))
        revoked = type(exc).__name__ == "DeviceRevoked"
        if revoked and not getattr(exc, "wiped", False) and not closed:
            self.mark_revoked()
            return
        if closed:
            self.session_lost("session.wiped")
        elif type(exc).__name__ == "StoreLocked":
            self.lease_expired()

    def mark_revoked(self) -> None:
        """Revoked without wipe: the work stays readable and exportable; no more syncing."""
        self.revoked = True
        self._stop_live()
        self.banner = self.tr("session.revoked")
        self.render_current()

    def relogged_in(self) -> None:
        self.revoked = False
        self.banner = ""
        self.go("today", reset=True)
        self.sync_now()
        self._start_live()

    def lease_expired(self) -> None:
        """Offline past the server's lease: sign in online to unlock (the work is kept)."""
        self.banner = self.tr("session.lease")
        if self.sm.current != "relogin":
            self.go("relogin", reset=True)

    def store_gone(self, exc: BaseException) -> bool:
        """A screen failed because the store is closed (wiped mid-session): first run."""
        session = self.session
        closed = session is not None and getattr(session.store, "closed", False)
        if type(exc).__name__ == "StoreClosed" or closed:
            Clock.schedule_once(lambda _dt: self.session_lost("session.wiped"))
            return True
        if type(exc).__name__ == "StoreLocked":
            Clock.schedule_once(lambda _dt: self.lease_expired())
            return True
        return False

    def session_lost(self, message_key: str) -> None:
        if self.session is None:
            return
        self.end_session(wipe=True, navigate=False)
        self.files.forget()
        self.banner = self.tr(message_key)
        self.start()

    # -- banner, undo, reminders, platform -------------------------------------------
    def export_folder(self) -> Any:
        """Where "export" writes: the app's external files folder on Android (reachable
        over USB, no storage permission needed), else beside the store. The rep chose to
        take this data off the encrypted store."""
        from pathlib import Path

        from kivy.utils import platform

        if platform == "android":  # pragma: no cover - a phone only
            try:
                from jnius import autoclass

                activity = autoclass("org.kivy.android.PythonActivity").mActivity
                return Path(activity.getExternalFilesDir(None).getAbsolutePath()) / "exports"
            except Exception:
                pass
        return self.files.data_dir / "exports"

    def dismiss_banner(self) -> None:
        self.banner = ""
        if self.sm.current:
            self.current.update_overlays()

    def _on_undo_offer(self) -> None:
        if self._undo_event is not None:
            self._undo_event.cancel()
        seconds = self.session.undo.seconds if self.session is not None else 8.0
        self._undo_event = Clock.schedule_once(lambda _dt: self._expire_undo(), seconds)
        if self.sm.current:
            self.current.update_overlays()

    def _expire_undo(self) -> None:
        self._undo_event = None
        if self.session is not None:
            self.session.undo.dismiss()
        if self.sm.current:
            self.current.update_overlays()

    def undo(self) -> None:
        if self.session is not None and self.session.undo.undo():
            self.render_current()

    def check_reminders(self) -> None:
        """Announce tasks whose reminder time has come: a notification, else the banner."""
        session = self.session
        if session is None:
            return
        try:
            due = due_reminders(session, self.announced)
        except Exception:
            return
        in_app: list[str] = []
        for reminder in due:
            self.announced.add(reminder.key)
            title = self.tr("reminder.title", title=reminder.title)
            if not self.notifier.notify(title, reminder.message):
                in_app.append(f"{title} · {reminder.message}" if reminder.message else title)
        if in_app:
            self.banner = "\n".join(
                in_app[:3] + ([f"+{len(in_app) - 3}"] if len(in_app) > 3 else [])
            )
        if due and self.sm.current:
            self.current.update_overlays()

    def open_uri(self, uri: str | None) -> None:
        if uri and not self.launcher.open(uri):
            self.banner = self.tr("launch.failed", uri=uri)
            if self.sm.current:
                self.current.update_overlays()

    def wait_for_sync(self, timeout: float = 30.0) -> None:
        thread = self._sync_thread
        if thread is not None:
            thread.join(timeout)

    def wait_for_index(self, timeout: float = 30.0) -> None:
        """Wait for the search-index build started after the last sync (tests)."""
        thread = self._index_thread
        if thread is not None:
            thread.join(timeout)

    def run_async(
        self, work: Callable[[], Any], done: Callable[[Any, BaseException | None], None]
    ) -> None:
        """Run ``work`` off the UI thread; ``done(result, error)`` back on it."""

        def worker() -> None:
            result: Any = None
            error: BaseException | None = None
            try:
                result = work()
            except Exception as exc:
                error = exc
            Clock.schedule_once(lambda _dt: done(result, error))

        threading.Thread(target=worker, name="fieldsync-work", daemon=True).start()

    # -- events from the store (any thread) --------------------------------------------
    def _on_sync_state(self) -> None:
        Clock.schedule_once(lambda _dt: self._update_bars())

    def _update_bars(self) -> None:
        if self.sm.current:
            self.current.update_sync_bar()

    def _on_store_event(self, event: Any) -> None:
        if getattr(event, "origin", None) == "remote" and not self._render_pending:
            self._render_pending = True
            Clock.schedule_once(self._render_after_pull, 0.3)

    def _render_after_pull(self, _dt: float) -> None:
        self._render_pending = False
        if self.session is not None and getattr(self.current, "live", False):
            self.current.render()
