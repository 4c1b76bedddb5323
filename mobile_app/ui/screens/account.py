"""First run, unlock and the initial sync's progress bar."""

from __future__ import annotations

from functools import partial
from typing import Any

from kivy.metrics import dp
from kivy.uix.progressbar import ProgressBar

from mobile_app.viewmodels.account import (
    FirstRunViewModel,
    InitialSyncViewModel,
    ReloginViewModel,
    UnlockViewModel,
)
from mobile_app.viewmodels.base import Session

from ..widgets import ErrorLabel, FlatButton, FormField, FsButton, MutedLabel
from .base import BaseScreen


class FirstRunScreen(BaseScreen):
    screen_name = "first_run"
    title_key = "login.title"
    chrome = False

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.vm: FirstRunViewModel | None = None
        self.fields: dict[str, FormField] = {}
        self.submit_button: FsButton | None = None
        self.error_label: ErrorLabel | None = None

    def on_pre_enter(self, *_: Any) -> None:
        self.vm = FirstRunViewModel(self.c.backend, self.c.files, self.c.tr)
        if self.c.default_server_url:
            self.vm.server_url = self.c.default_server_url
        self.render()

    def build(self) -> None:
        vm = self.vm
        if vm is None:
            return
        specs = [
            ("server_url", "login.server", False),
            ("username", "login.username", False),
            ("password", "login.password", True),
        ]
        if vm.needs_totp:
            specs.append(("totp", "login.totp", False))
        specs += [
            ("passphrase", "login.passphrase", True),
            ("passphrase_again", "login.passphrase2", True),
        ]
        self.fields = {}
        for attr, key, secret in specs:
            field = FormField(
                self.t(key),
                getattr(vm, attr),
                password=secret,
                on_text=partial(setattr, vm, attr),
            )
            self.fields[attr] = field
            self.add(field)
        self.add(MutedLabel(text=self.t("login.passphrase_hint")))
        self.error_label = ErrorLabel(text=vm.error)
        self.add(self.error_label)
        self.submit_button = FsButton(text=self.t("login.submit"), disabled=vm.busy)
        self.submit_button.bind(on_release=lambda *_: self.submit())
        self.add(self.submit_button)
        row = FlatButton(text="中文 / English")
        row.bind(
            on_release=lambda *_: self.c.tr.set_language(
                "en" if self.c.tr.language == "zh" else "zh"
            )
        )
        self.add(row)

    def submit(self) -> None:
        vm = self.vm
        if vm is None or vm.busy:
            return
        vm.busy = True
        if self.submit_button is not None:
            self.submit_button.disabled = True
        self.c.run_async(vm.submit, self._submitted)

    def _submitted(self, session: Session | None, error: BaseException | None) -> None:
        vm = self.vm
        if vm is not None:
            vm.busy = False
            if error is not None:
                vm.error = str(error)
        if session is None:
            self.render()
            return
        self.c.begin_session(session, initial_sync=True)


class UnlockScreen(BaseScreen):
    screen_name = "unlock"
    title_key = "unlock.title"
    chrome = False

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.vm: UnlockViewModel | None = None
        self.passphrase: FormField | None = None
        self.submit_button: FsButton | None = None

    def on_pre_enter(self, *_: Any) -> None:
        account = self.c.files.load()
        self.vm = (
            UnlockViewModel(self.c.backend, self.c.files, account, self.c.tr) if account else None
        )
        self.render()

    def build(self) -> None:
        vm = self.vm
        if vm is None:
            return
        self.add(MutedLabel(text=vm.greeting))
        self.passphrase = FormField(self.t("unlock.passphrase"), "", password=True)
        self.passphrase.set_error(vm.error)
        self.add(self.passphrase)
        self.submit_button = FsButton(text=self.t("unlock.submit"))
        self.submit_button.bind(on_release=lambda *_: self.submit())
        self.add(self.submit_button)

    def submit(self) -> None:
        vm = self.vm
        if vm is None or self.passphrase is None:
            return
        vm.passphrase = self.passphrase.input.text
        session = vm.submit()
        if session is None:
            self.render()
            return
        self.c.begin_session(session)


class InitialSyncScreen(BaseScreen):
    screen_name = "initial_sync"
    title_key = "initial.title"
    chrome = False

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.vm: InitialSyncViewModel | None = None
        self.bar = ProgressBar(max=1.0, size_hint_y=None, height=dp(24))
        self.message = MutedLabel()
        self.continue_button = FsButton()
        self.continue_button.bind(on_release=lambda *_: self.finish())

    def on_pre_enter(self, *_: Any) -> None:
        session = self.c.session
        if session is not None and self.params.get("run", True):
            self.vm = InitialSyncViewModel(session)
            self.vm.subscribe(lambda: self._schedule_update())
            self.c.run_async(self.vm.run, lambda _r, _e: self.update())
        self.render()

    def _schedule_update(self) -> None:
        from kivy.clock import Clock

        Clock.schedule_once(lambda _dt: self.update())

    def build(self) -> None:
        for widget in (self.bar, self.message, self.continue_button):
            if widget.parent is not None:
                widget.parent.remove_widget(widget)
            self.add(widget)
        self.continue_button.text = self.t("initial.continue")
        self.update()

    def update(self) -> None:
        vm = self.vm
        if vm is None:
            return
        self.bar.value = vm.fraction
        self.message.text = vm.message
        self.continue_button.disabled = not (vm.done or vm.failed)

    def finish(self) -> None:
        self.c.go("today", reset=True)
        self.c.start_background_sync()


class ReloginScreen(BaseScreen):
    """Sign in online again (offline lease over, or revoked without wipe); work is kept."""

    screen_name = "relogin"
    title_key = "login.submit"
    chrome = False

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.vm: ReloginViewModel | None = None
        self.password: FormField | None = None
        self.submit_button: FsButton | None = None

    def prepare(self) -> None:
        session = self.c.session
        self.vm = ReloginViewModel(session) if session is not None else None

    def build(self) -> None:
        vm = self.vm
        if vm is None:
            return
        self.add(MutedLabel(text=vm.greeting))
        self.password = FormField(self.t("login.password"), "", password=True)
        self.password.set_error(vm.error)
        self.add(self.password)
        self.totp: FormField | None = None
        if vm.needs_totp:
            self.totp = FormField(self.t("login.totp"), "")
            self.add(self.totp)
        self.submit_button = FsButton(text=self.t("login.submit"))
        self.submit_button.bind(on_release=lambda *_: self.submit())
        self.add(self.submit_button)
        out = FlatButton(text=self.t("settings.logout"))
        out.bind(on_release=lambda *_: self.c.go("sign_out"))
        self.add(out)

    def submit(self) -> None:
        vm = self.vm
        if vm is None or self.password is None:
            return
        vm.password = self.password.input.text
        if self.totp is not None:
            vm.totp = self.totp.input.text
        if vm.submit():
            self.c.relogged_in()
        else:
            self.render()
