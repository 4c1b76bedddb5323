"""Conflict inbox, rejected writes and settings."""

from __future__ import annotations

from functools import partial
from typing import Any

from kivy.metrics import dp
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout

from mobile_app.viewmodels.fields import choice_group, spec_for
from mobile_app.viewmodels.inbox import (
    ConflictInboxViewModel,
    RejectedRow,
    RejectedWritesViewModel,
)
from mobile_app.viewmodels.settings import SettingsViewModel
from sync_protocol import FieldType

from .. import dialogs
from ..widgets import (
    ChoiceField,
    Column,
    DangerButton,
    ErrorLabel,
    FlatButton,
    FormField,
    FsButton,
    FsLabel,
    FsTextInput,
    MutedLabel,
    SectionHeader,
)
from .base import BaseScreen


class ConflictsScreen(BaseScreen):
    screen_name = "conflicts"
    title_key = "conflicts.title"
    live = True

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.vm: ConflictInboxViewModel | None = None
        self.cards: dict[str, dict[str, Any]] = {}

    def build(self) -> None:
        session = self.c.session
        if session is None:
            return
        if self.vm is None or self.vm.session is not session:
            self.vm = ConflictInboxViewModel(session)
        vm = self.vm
        vm.refresh()
        rejected = self.c.sync_vm.rejected if self.c.sync_vm else 0
        if rejected:
            link = FlatButton(text=self.t("settings.rejected", n=rejected))
            link.bind(on_release=lambda *_: self.c.go("rejected"))
            self.add(link)
        if vm.message:
            self.add(MutedLabel(text=vm.message))
        if not vm.rows:
            self.empty(self.t("conflicts.empty"))
        self.cards = {}
        for row in vm.rows:
            card = Column(padding=(dp(8), dp(6)), spacing=dp(4))
            card.add_widget(SectionHeader(text=f"{row.record_title} · {row.field_label}"))
            values = GridLayout(cols=2, size_hint_y=None, spacing=dp(2))
            values.bind(minimum_height=values.setter("height"))
            for key, value in (
                ("conflicts.mine", row.mine),
                ("conflicts.theirs", row.theirs),
                ("conflicts.original", row.original),
            ):
                values.add_widget(MutedLabel(text=self.t(key), size_hint_x=0.3))
                values.add_widget(FsLabel(text=value))
            card.add_widget(values)
            buttons = GridLayout(cols=2, size_hint_y=None, height=dp(44), spacing=dp(4))
            mine = FsButton(text=self.t("conflicts.keep_mine"))
            mine.bind(on_release=lambda _b, cid=row.id: self._choose(cid, "mine"))
            theirs = FsButton(text=self.t("conflicts.keep_theirs"))
            theirs.bind(on_release=lambda _b, cid=row.id: self._choose(cid, "theirs"))
            buttons.add_widget(mine)
            buttons.add_widget(theirs)
            card.add_widget(buttons)
            typed = FsTextInput(multiline=False, hint_text=self.t("conflicts.type_value"))
            typed.text = vm.typed.get(row.id, "")
            typed.bind(text=lambda _w, v, cid=row.id: vm.type_value(cid, v))
            card.add_widget(typed)
            error = ErrorLabel(text=vm.errors.get(row.id, ""))
            card.add_widget(error)
            use = FlatButton(text=self.t("conflicts.use_typed"))
            use.bind(on_release=lambda _b, cid=row.id: self._choose(cid, "typed"))
            card.add_widget(use)
            self.cards[row.id] = {
                "mine": mine,
                "theirs": theirs,
                "input": typed,
                "use": use,
                "error": error,
            }
            self.add(card)

    def _choose(self, conflict_id: str, how: str) -> None:
        vm = self.vm
        if vm is None:
            return
        if how == "mine":
            vm.keep_mine(conflict_id)
        elif how == "theirs":
            vm.keep_theirs(conflict_id)
        elif not vm.use_typed(conflict_id):
            self.cards[conflict_id]["error"].text = vm.errors.get(conflict_id, "")
            return
        if self.c.sync_vm is not None:
            self.c.sync_vm.refresh()
        self.render()


class RejectedScreen(BaseScreen):
    screen_name = "rejected"
    title_key = "rejected.title"
    live = True

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.vm: RejectedWritesViewModel | None = None
        self.cards: dict[str, dict[str, Any]] = {}

    def build(self) -> None:
        session = self.c.session
        if session is None:
            return
        if self.vm is None or self.vm.session is not session:
            self.vm = RejectedWritesViewModel(session)
        vm = self.vm
        vm.refresh()
        if vm.message:
            self.add(MutedLabel(text=vm.message))
        if not vm.rows:
            self.empty(self.t("rejected.empty"))
        self.cards = {}
        for row in vm.rows:
            card = Column(padding=(dp(8), dp(6)), spacing=dp(4))
            card.add_widget(SectionHeader(text=row.title))
            card.add_widget(ErrorLabel(text=row.reason))
            inputs: dict[str, FormField | ChoiceField] = {}
            for name, text in row.fields.items():
                if name == "customer_id" or name.endswith("_id") or "fix" not in row.actions:
                    continue
                label = session.tr.field_label(row.collection, name)
                current = vm.edits.get(row.id, {}).get(name, text)
                spec = spec_for(row.collection, name)
                field: FormField | ChoiceField
                if spec is not None and spec.type is FieldType.ENUM:
                    group = choice_group(row.collection, name)
                    field = ChoiceField(
                        label,
                        [(c, session.tr.choice(group, c)) for c in spec.choices],
                        current,
                        on_value=partial(vm.edit, row.id, name),
                    )
                else:
                    field = FormField(label, current, on_text=partial(vm.edit, row.id, name))
                field.set_error(
                    vm.errors.get(row.id, {}).get(name) or row.field_errors.get(name, "")
                )
                inputs[name] = field
                card.add_widget(field)
            stacked = len(row.actions) > 2  # three choices: one per line, labels in full
            buttons = BoxLayout(
                orientation="vertical" if stacked else "horizontal",
                size_hint_y=None,
                height=dp(44) * (len(row.actions) if stacked else 1)
                + (dp(4) * (len(row.actions) - 1) if stacked else 0),
                spacing=dp(4),
            )
            card_buttons: dict[str, Any] = {"inputs": inputs}
            for action in row.actions:
                button = self._action_button(action, row)
                buttons.add_widget(button)
                card_buttons[action] = button
            card_buttons.setdefault("retry", card_buttons.get("fix") or card_buttons.get("resend"))
            if row.actions:  # a write waiting for another one has nothing of its own to do
                card.add_widget(buttons)
            self.cards[row.id] = card_buttons
            self.add(card)
        if vm.kept:
            self.section(self.t("rejected.kept_title"))
            self.kept_cards: dict[str, Any] = {}
            for row in vm.kept:
                card = Column(padding=(dp(8), dp(6)), spacing=dp(4))
                card.add_widget(SectionHeader(text=row.title))
                card.add_widget(FsLabel(text=row.text))
                discard = DangerButton(text=self.t("action.discard"))
                discard.bind(on_release=lambda _b, rid=row.id: self._discard(rid))
                card.add_widget(discard)
                self.kept_cards[row.id] = discard
                self.add(card)

    def _action_button(self, action: str, row: RejectedRow) -> Any:
        row_id = row.id
        if action == "discard":
            count = len(self.vm.discard_set(row.id)) if self.vm is not None else 1
            label = (
                self.t("rejected.discard_all", n=count) if count > 1 else self.t("action.discard")
            )
            button: Any = DangerButton(text=label)
            button.bind(on_release=lambda _b: self._confirm_discard(row))
        elif action == "keep_anyway":
            button = FsButton(text=self.t("rejected.keep_anyway"))
            button.bind(on_release=lambda _b: self._keep_anyway(row_id))
        elif action == "use_existing":
            name = next((m.name for m in row.matches if m.visible), "")
            button = FsButton(text=self.t("rejected.use_existing", name=name))
            button.bind(on_release=lambda _b: self._use_existing(row_id))
        elif action == "keep":
            button = FsButton(text=self.t("rejected.keep"))
            button.bind(on_release=lambda _b: self._keep(row_id))
        else:
            key = "action.retry" if action == "fix" else "rejected.resend"
            button = FsButton(text=self.t(key))
            button.bind(on_release=lambda _b: self._retry(row_id))
        return button

    def _keep(self, dead_letter_id: str) -> None:
        if self.vm is not None:
            self.vm.keep_as_note(dead_letter_id)
        if self.c.sync_vm is not None:
            self.c.sync_vm.refresh()
        self.render()

    def _retry(self, dead_letter_id: str) -> None:
        if self.vm is not None:
            self.vm.retry(dead_letter_id)
            self.c.sync_now()
        self.render()

    def _confirm_discard(self, row: RejectedRow) -> None:
        """Discarding cannot be undone: say what goes, and ask."""
        dialogs.confirm(
            self.c.tr,
            self.t(
                "rejected.discard_confirm",
                title=row.title,
                n=len(self.vm.discard_set(row.id)) if self.vm is not None else 1,
            ),
            lambda _r: self._discard(row.id),
            danger=True,
            yes_label=self.t("action.discard"),
        )

    def _keep_anyway(self, dead_letter_id: str) -> None:
        if self.vm is not None and self.vm.keep_anyway(dead_letter_id):
            self.c.sync_now()
        self.render()

    def _use_existing(self, dead_letter_id: str) -> None:
        if self.vm is not None and self.vm.use_existing(dead_letter_id):
            self.c.sync_now()
        self.render()

    def _discard(self, dead_letter_id: str) -> None:
        if self.vm is not None:
            self.vm.discard(dead_letter_id)
        if self.c.sync_vm is not None:
            self.c.sync_vm.refresh()
        self.render()


class SettingsScreen(BaseScreen):
    screen_name = "settings"
    title_key = "settings.title"

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.vm: SettingsViewModel | None = None
        self.language_buttons: dict[str, FlatButton] = {}

    def build(self) -> None:
        session = self.c.session
        if session is None:
            return
        if self.vm is None or self.vm.session is not session:
            self.vm = SettingsViewModel(
                session, self.c.files, on_logged_out=lambda: self.c.end_session(wipe=True)
            )
        vm = self.vm
        self.add(MutedLabel(text=vm.signed_in_as))
        self.section(self.t("settings.language"))
        row = GridLayout(cols=2, size_hint_y=None, height=dp(40), spacing=dp(4))
        self.language_buttons = {}
        for code, label in (("zh", "简体中文"), ("en", "English")):
            button = FlatButton(text=label, selected=vm.language == code)
            button.bind(on_release=lambda _b, c=code: vm.set_language(c))
            self.language_buttons[code] = button
            row.add_widget(button)
        self.add(row)
        self.section(self.t("settings.sync_now"))
        self.sync_button = FsButton(text=self.t("settings.sync_now"))
        self.sync_button.bind(on_release=lambda *_: self._sync())
        self.add(self.sync_button)
        self.sync_message = MutedLabel(text=vm.message)
        self.add(self.sync_message)
        bar = self.c.sync_vm
        for key, target, n in (
            ("settings.conflicts", "conflicts", bar.conflicts if bar else 0),
            ("settings.rejected", "rejected", bar.rejected if bar else 0),
        ):
            link = FlatButton(text=self.t(key, n=n))
            link.bind(on_release=lambda _b, s=target: self.c.go(s))
            self.add(link)
        self.section(self.t("settings.change_passphrase"))
        self.old = FormField(self.t("settings.old_passphrase"), password=True)
        self.new = FormField(self.t("settings.new_passphrase"), password=True)
        self.again = FormField(self.t("login.passphrase2"), password=True)
        for field in (self.old, self.new, self.again):
            self.add(field)
        change = FsButton(text=self.t("settings.change_passphrase"))
        change.bind(on_release=lambda *_: self._change())
        self.add(change)
        self.error = ErrorLabel(text=vm.error)
        self.add(self.error)
        logout = DangerButton(text=self.t("settings.logout"))
        logout.bind(on_release=lambda *_: self.c.go("sign_out"))
        self.logout_button = logout
        if self.c.revoked:
            again = FsButton(text=self.t("login.submit"))
            again.bind(on_release=lambda *_: self.c.go("relogin"))
            self.add(again)
        switch = FlatButton(text=self.t("settings.switch_user"))
        switch.bind(on_release=lambda *_: self.c.go("sign_out"))  # the same safeguards
        self.switch_button = switch
        self.add(switch)
        self.add(logout)

    def _sync(self) -> None:
        vm = self.vm
        if vm is None:
            return
        self.sync_button.disabled = True
        self.c.run_async(vm.sync_now, lambda _r, _e: self.render())

    def _change(self) -> None:
        vm = self.vm
        if vm is None:
            return
        vm.old_passphrase = self.old.input.text
        vm.new_passphrase = self.new.input.text
        vm.new_passphrase_again = self.again.input.text
        vm.change_passphrase()
        self.render()
