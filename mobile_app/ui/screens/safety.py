"""Sign out / switch user: what would be lost, then sync, export, or discard — in that order."""

from __future__ import annotations

from typing import Any

from mobile_app.viewmodels.safety import SignOutViewModel
from mobile_app.viewmodels.settings import erase_session

from .. import dialogs
from ..icons import with_icon
from ..widgets import DangerButton, ErrorLabel, FsButton, FsLabel, MutedLabel
from .base import BaseScreen


class SignOutScreen(BaseScreen):
    screen_name = "sign_out"
    title_key = "loss.title"

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.vm: SignOutViewModel | None = None

    def prepare(self) -> None:
        session = self.c.session
        self.vm = None
        if session is not None:
            self.vm = SignOutViewModel(
                session,
                wipe=lambda: erase_session(session, self.c.files),
                export_folder=self.c.export_folder(),
            )

    def build(self) -> None:
        vm = self.vm
        if vm is None:
            return
        self.add(FsLabel(text=vm.headline, bold=True))
        self.loss_lines = [MutedLabel(text=f"• {line}") for line in vm.lines]
        for label in self.loss_lines:
            self.add(label)
        self.message = MutedLabel(text=vm.message)
        self.add(self.message)
        self.error = ErrorLabel(text=vm.error)
        self.add(self.error)
        self.sync_button = self.export_button = self.discard_button = None
        self.sign_out_button: FsButton | None = None
        if vm.summary.empty:
            self.sign_out_button = FsButton(
                text=with_icon("logout", self.t("loss.sign_out")), markup=True
            )
            self.sign_out_button.bind(on_release=lambda *_: self._sign_out(False))
            self.add(self.sign_out_button)
            return
        self.sync_button = FsButton(text=with_icon("sync", self.t("loss.sync")), markup=True)
        self.sync_button.bind(on_release=lambda *_: self._sync())
        self.add(self.sync_button)
        self.export_button = FsButton(text=with_icon("export", self.t("loss.export")), markup=True)
        self.export_button.bind(on_release=lambda *_: self._export())
        self.add(self.export_button)
        self.discard_button = DangerButton(text=self.t("loss.discard"))
        self.discard_button.bind(on_release=lambda *_: self._ask_discard())
        self.add(self.discard_button)

    def _sync(self) -> None:
        vm = self.vm
        if vm is None or self.sync_button is None:
            return
        self.sync_button.disabled = True
        self.c.run_async(vm.sync_first, lambda _r, _e: self.render())

    def _export(self) -> None:
        if self.vm is not None:
            self.vm.export()
            self.render()

    def _ask_discard(self) -> None:
        vm = self.vm
        if vm is None:
            return
        message = "\n".join([self.t("loss.would_lose"), *vm.lines])
        dialogs.confirm(
            self.c.tr,
            message,
            lambda _r: self._sign_out(True),
            danger=True,
            yes_label=self.t("loss.discard"),
        )

    def _sign_out(self, discard: bool) -> None:
        vm = self.vm
        if vm is None:
            return
        if vm.sign_out(discard=discard):
            self.c.end_session(wipe=True)
        else:
            self.render()
