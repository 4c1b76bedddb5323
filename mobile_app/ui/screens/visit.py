"""Log a visit (with photos), and one logged visit with its photos' upload status."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kivy.clock import Clock
from kivy.metrics import dp
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.filechooser import FileChooserListView
from kivy.uix.popup import Popup

from mobile_app.viewmodels.photos import PHOTO_PATTERNS, PhotoRow, PhotosViewModel
from mobile_app.viewmodels.visit import LogVisitViewModel, visit_summary

from ..forms import DateField, DateTimeField
from ..widgets import (
    ChoiceField,
    Column,
    ErrorLabel,
    FlatButton,
    FormField,
    FsButton,
    FsTextInput,
    ListItem,
    MutedLabel,
)
from .base import BaseScreen

#: ``on_photo(path, temporary)``: a picked file (False) or one the camera just wrote (True).
OnPhoto = Callable[[str, bool], None]


def start_folder() -> str:
    for candidate in (Path("/sdcard/DCIM"), Path.home() / "Pictures", Path.home()):
        if candidate.is_dir():
            return str(candidate)
    return str(Path.cwd())


class PhotoPicker(BoxLayout):
    """Take a photo (plyer camera, phones), choose an image file, or type a path (desktop)."""

    def __init__(self, screen: BaseScreen, on_photo: OnPhoto, **kw: Any) -> None:
        super().__init__(orientation="vertical", size_hint_y=None, spacing=dp(4), **kw)
        self.bind(minimum_height=self.setter("height"))
        self.screen = screen
        self.on_photo = on_photo
        camera = screen.c.camera
        buttons = BoxLayout(size_hint_y=None, height=dp(44), spacing=dp(6))
        self.camera_button: FsButton | None = None
        if camera.available:
            self.camera_button = FsButton(text=screen.t("photos.take"))
            self.camera_button.bind(on_release=lambda *_: self.take())
            buttons.add_widget(self.camera_button)
        self.choose_button = FlatButton(text=screen.t("photos.choose"), height=dp(44))
        self.choose_button.bind(on_release=lambda *_: self.choose())
        buttons.add_widget(self.choose_button)
        self.add_widget(buttons)
        self.path_input: FsTextInput | None = None
        self.attach_button: FsButton | None = None
        if not camera.available:
            row = BoxLayout(size_hint_y=None, height=dp(44), spacing=dp(6))
            self.path_input = FsTextInput(multiline=False, hint_text=screen.t("photos.path_hint"))
            self.attach_button = FsButton(
                text=screen.t("photos.attach"), size_hint_x=None, width=dp(84)
            )
            self.attach_button.bind(on_release=lambda *_: self._typed())
            row.add_widget(self.path_input)
            row.add_widget(self.attach_button)
            self.add_widget(row)
        self.popup: Popup | None = None

    def _typed(self) -> None:
        if self.path_input is not None and self.path_input.text.strip():
            path = self.path_input.text.strip()
            self.path_input.text = ""
            self.on_photo(path, False)

    def take(self) -> None:
        def done(path: str | None) -> None:
            if path:
                self.on_photo(path, True)

        self.screen.c.camera.take(done)

    def choose(self) -> None:
        """A file chooser filtered to images, in a popup."""
        content = BoxLayout(orientation="vertical", spacing=dp(6))
        chooser = FileChooserListView(path=start_folder(), filters=PHOTO_PATTERNS)
        content.add_widget(chooser)
        row = BoxLayout(size_hint_y=None, height=dp(44), spacing=dp(6))
        cancel = FlatButton(text=self.screen.t("action.cancel"), height=dp(44))
        attach = FsButton(text=self.screen.t("photos.attach"))
        row.add_widget(cancel)
        row.add_widget(attach)
        content.add_widget(row)
        popup = Popup(title=self.screen.t("photos.chooser_title"), content=content)

        def pick(*_: Any) -> None:
            popup.dismiss()
            if chooser.selection:
                self.on_photo(str(chooser.selection[0]), False)

        cancel.bind(on_release=lambda *_: popup.dismiss())
        attach.bind(on_release=pick)
        chooser.bind(on_submit=lambda _w, selection, _touch: pick())
        self.popup = popup
        popup.open()


def photo_item(row: PhotoRow) -> ListItem:
    return ListItem(
        title=row.name,
        subtitle=f"{row.status} · {row.detail}" if row.detail else row.status,
        alert=row.state == "failed",
        accent=row.state in ("queued", "uploading"),
    )


class LogVisitScreen(BaseScreen):
    screen_name = "log_visit"
    title_key = "visit.title"

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.vm: LogVisitViewModel | None = None
        self.inputs: dict[str, Any] = {}
        self.save_button: FsButton | None = None
        self.locate_button: FlatButton | None = None
        self.picker: PhotoPicker | None = None
        self.photo_box = Column()
        self.photo_error = ErrorLabel(text="")

    def on_pre_enter(self, *_: Any) -> None:
        session = self.c.session
        customer_id = self.params.get("customer_id")
        if session is not None and customer_id:
            self.vm = LogVisitViewModel(session, customer_id, self.c.location)
        self.reset_scroll()  # a new form starts at the top
        self.render()

    def build(self) -> None:
        vm = self.vm
        if vm is None:
            return
        self.add(MutedLabel(text=self.t("visit.customer", name=vm.customer_name)))
        self.inputs = {}

        def field(key: str, label: str, value: str, attr: str, **kw: Any) -> FormField:
            widget = FormField(label, value, on_text=lambda v: setattr(vm, attr, v), **kw)
            widget.set_error(vm.errors.get(key, ""))
            self.inputs[key] = widget
            self.add(widget)
            return widget

        session = vm.session
        check_in = DateTimeField(
            self.t("visit.check_in"),
            vm.check_in,
            self.c.tr,
            session.today(),
            lambda v: setattr(vm, "check_in", v),
        )
        check_in.set_error(vm.errors.get("occurred_at", ""))
        self.inputs["occurred_at"] = check_in
        self.add(check_in)
        location = field(
            "check_in",
            self.t("visit.place"),
            vm.location_text,
            "location_text",
        )
        where = self.buttons(
            [
                ("my_location", self.t("visit.locate"), lambda: self._locate(location)),
                ("place", self.t("visit.at_customer"), lambda: self._at_customer(location)),
            ],
            flat=True,
        )
        self.locate_button = where[self.t("visit.locate")]
        self.at_customer_button = where[self.t("visit.at_customer")]
        self.location_note = MutedLabel(text=vm.location_note)
        self.add(self.location_note)
        outcome = ChoiceField(
            self.t("visit.outcome"),
            vm.outcome_choices,
            vm.outcome,
            on_value=lambda v: setattr(vm, "outcome", v),
        )
        self.inputs["outcome"] = outcome
        self.add(outcome)
        field("notes", self.t("visit.notes"), vm.notes, "notes", multiline=True)
        follow = DateField(
            session.tr.field_label("activities", "next_follow_up"),
            vm.next_follow_up,
            self.c.tr,
            session.today(),
            lambda v: setattr(vm, "next_follow_up", v),
        )
        follow.set_error(vm.errors.get("next_follow_up", ""))
        self.inputs["next_follow_up"] = follow
        self.add(follow)
        self.picker = None
        if vm.photos_available:
            self.section(self.t("photos.title"))
            self.picker = PhotoPicker(self, self._add_photo)
            self.add(self.picker)
            self.add(self.photo_error)
            self.add(self.photo_box)
            self.render_photos()
        self.message = ErrorLabel(text=vm.message if vm.errors else "")
        self.add(self.message)
        self.save_button = FsButton(text=self.t("action.save"))
        self.save_button.bind(on_release=lambda *_: self.save())
        self.add(self.save_button)

    def render_photos(self) -> None:
        vm = self.vm
        self.photo_box.clear_widgets()
        if vm is None:
            return
        self.photo_error.text = vm.photo_error
        for index, (name, line) in enumerate(vm.photo_lines()):
            row = BoxLayout(size_hint_y=None, height=dp(52))
            row.add_widget(ListItem(title=name, subtitle=line, accent=True))
            remove = FlatButton(text="×", size_hint=(None, None), width=dp(48), height=dp(52))
            remove.bind(on_release=lambda _b, i=index: self._remove_photo(i))
            row.add_widget(remove)
            self.photo_box.add_widget(row)

    def _add_photo(self, path: str, temporary: bool) -> None:
        if self.vm is not None:
            self.vm.add_photo(path, temporary=temporary)
            self.render_photos()

    def _remove_photo(self, index: int) -> None:
        if self.vm is not None:
            self.vm.remove_photo(index)
            self.render_photos()

    def _locate(self, location: FormField) -> None:
        """Ask for the location permission (Android 6+) first, then read the GPS."""
        vm = self.vm
        if vm is None:
            return
        provider = self.c.location
        ensure = getattr(provider, "ensure", None)

        def located(granted: bool) -> None:
            if not granted and getattr(provider, "denied", False):
                vm.location_note = self.t("visit.permission_denied")
            else:
                vm.locate()
            location.input.text = vm.location_text
            self.location_note.text = vm.location_note

        if callable(ensure):
            ensure(located)
        else:
            located(True)

    def _at_customer(self, location: FormField) -> None:
        vm = self.vm
        if vm is not None:
            vm.use_customer_address()
            location.input.text = vm.location_text
            self.location_note.text = vm.location_note

    def save(self) -> None:
        vm = self.vm
        if vm is None:
            return
        if vm.save():
            if vm.photo_ids or vm.photo_error:
                self.c.trigger_uploads()
                self.c.back()  # the visit screen replaces the form in the history
                self.c.go("visit", activity_id=vm.activity_id, message=vm.photo_error)
            else:
                self.c.back()
            return
        for key, widget in self.inputs.items():
            widget.set_error(vm.errors.get(key, ""))
        self.message.text = vm.message


class VisitScreen(BaseScreen):
    """A logged visit: what was recorded, its photos with upload status, add more."""

    screen_name = "visit"
    title_key = "visit.open"

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.vm: PhotosViewModel | None = None
        self.picker: PhotoPicker | None = None
        self.photo_box = Column()
        self.photo_error = ErrorLabel(text="")
        self.rows: dict[str, ListItem] = {}
        self.retry_buttons: dict[str, FlatButton] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._redraw_pending = False

    def on_pre_enter(self, *_: Any) -> None:
        self._close_vm()
        session = self.c.session
        activity_id = self.params.get("activity_id")
        if session is not None and activity_id:
            self.vm = PhotosViewModel(session, activity_id)
            self.vm.error = self.params.get("message") or ""
            self._unsubscribe = self.vm.subscribe(self._on_change)
        self.reset_scroll()  # another visit: from the top, not the last one's scroll
        self.render()

    def on_leave(self, *_: Any) -> None:
        self._close_vm()

    def _close_vm(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.vm is not None:
            self.vm.close()
            self.vm = None

    def _on_change(self) -> None:
        """AttachmentChanged arrives on the upload thread: redraw on Kivy's thread."""
        if not self._redraw_pending:
            self._redraw_pending = True
            Clock.schedule_once(self._redraw)

    def _redraw(self, _dt: float) -> None:
        self._redraw_pending = False
        self.render_photos()

    def build(self) -> None:
        session = self.c.session
        vm = self.vm
        if session is None or vm is None:
            return
        title, lines = visit_summary(session, vm.record_id)
        self.title_label.text = title
        for line in lines:
            self.add(MutedLabel(text=line))
        self.section(self.t("photos.title"))
        self.picker = None
        if vm.available:
            self.picker = PhotoPicker(self, self._attach)
            self.add(self.picker)
        self.add(self.photo_error)
        self.add(self.photo_box)
        vm.refresh()
        self.render_photos()

    def render_photos(self) -> None:
        vm = self.vm
        self.photo_box.clear_widgets()
        self.rows, self.retry_buttons = {}, {}
        if vm is None:
            return
        self.photo_error.text = vm.error or vm.message
        if not vm.rows:
            self.photo_box.add_widget(MutedLabel(text=self.t("photos.none")))
        for row in vm.rows:
            item = photo_item(row)
            self.rows[row.id] = item
            if not row.can_retry:
                self.photo_box.add_widget(item)
                continue
            line = BoxLayout(size_hint_y=None, height=dp(52))
            line.add_widget(item)
            retry = FlatButton(
                text=self.t("photos.retry"), size_hint=(None, None), width=dp(72), height=dp(52)
            )
            retry.bind(on_release=lambda _b, aid=row.id: self._retry(aid))
            self.retry_buttons[row.id] = retry
            line.add_widget(retry)
            self.photo_box.add_widget(line)

    def _attach(self, path: str, temporary: bool) -> None:
        vm = self.vm
        if vm is None:
            return
        if vm.attach(path, temporary=temporary):
            self.c.trigger_uploads()
        self.render_photos()

    def _retry(self, attachment_id: str) -> None:
        if self.vm is not None:
            self.vm.retry(attachment_id)
            self.c.trigger_uploads()
            self.render_photos()
