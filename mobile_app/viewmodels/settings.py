"""Settings: language, sync now, change the passphrase, sign out.

Signing out wipes this phone's store (the data is the company's, not the phone's). It
never does so while anything would be lost — unsent or refused writes, open conflicts,
unsent photos — unless the rep chose to discard them on the sign-out sheet, which shows
what would be lost and offers to sync or export first (:mod:`.safety`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from mobile_app.i18n import Language

from .account import MIN_PASSPHRASE, AccountFiles
from .base import Observable, Session
from .safety import loss_summary


class SettingsViewModel(Observable):
    def __init__(
        self,
        session: Session,
        files: AccountFiles | None = None,
        on_logged_out: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.files = files
        self.on_logged_out = on_logged_out
        self.message = ""
        self.error = ""
        self.old_passphrase = ""
        self.new_passphrase = ""
        self.new_passphrase_again = ""
        self.logged_out = False

    @property
    def language(self) -> Language:
        return self.session.tr.language

    @property
    def signed_in_as(self) -> str:
        tr = self.session.tr
        user = self.session.user
        return tr(
            "settings.signed_in_as",
            user=user.display_name or user.username,
            role=tr(f"role.{user.role}"),
            server=self.session.server_url or "—",
        )

    def set_language(self, language: Language) -> None:
        self.session.tr.set_language(language)
        if self.files is not None:
            account = self.files.load()
            if account is not None:
                account.language = language
                self.files.save(account)
        self.notify()

    def sync_now(self) -> bool:
        """One sync round; blocks (the screen runs it off the UI thread)."""
        tr = self.session.tr
        client = self.session.client
        self.error = ""
        try:
            if client is None:
                raise RuntimeError("no server configured")
            report: Any = client.sync()
        except Exception as exc:
            self.message = ""
            self.error = tr("settings.sync_failed", reason=str(exc) or type(exc).__name__)
            self.notify()
            return False
        self.message = tr(
            "settings.synced",
            sent=getattr(report, "pushed", 0),
            received=getattr(report, "pulled", 0),
        )
        self.notify()
        return True

    def change_passphrase(self) -> bool:
        tr = self.session.tr
        self.message = ""
        if len(self.new_passphrase) < MIN_PASSPHRASE:
            self.error = tr("login.err.short", n=MIN_PASSPHRASE)
        elif self.new_passphrase != self.new_passphrase_again:
            self.error = tr("login.err.mismatch")
        else:
            try:
                self.session.store.change_passphrase(self.old_passphrase, self.new_passphrase)
            except Exception as exc:
                wrong = type(exc).__name__ == "WrongPassphrase"
                self.error = tr("unlock.err.wrong") if wrong else str(exc)
            else:
                self.error = ""
                self.message = tr("settings.passphrase_changed")
        self.old_passphrase = self.new_passphrase = self.new_passphrase_again = ""
        self.notify()
        return not self.error

    def log_out(self, *, discard: bool = False) -> bool:
        """Wipe the local store and forget the account — refused while anything would be
        lost, unless ``discard`` (the rep chose it on the sign-out sheet)."""
        summary = loss_summary(self.session)
        if not summary.empty and not discard:
            lost = "; ".join(summary.lines(self.session))
            self.error = self.session.tr("settings.logout_pending", what=lost)
            self.notify()
            return False
        erase_session(self.session, self.files)
        self.logged_out = True
        self.notify()
        if self.on_logged_out:
            self.on_logged_out()
        return True


def erase_session(session: Session, files: AccountFiles | None) -> None:
    """Sign out on the server (when reachable) and erase the phone's copy and account."""
    client = session.client
    if client is not None:
        # offline: the server forgets the device's token when it expires
        with contextlib.suppress(Exception):
            client.logout()
    if session.attachments is not None:
        with contextlib.suppress(Exception):
            session.attachments.wipe()  # the photos' chunk files go with the key
    # the SDK refuses to discard unsent work unless forced: the caller showed the rep
    # what would be lost (sign-out sheet) and the rep chose, or nothing was unsent
    session.store.wipe(force=True)
    if files is not None:
        files.forget()
