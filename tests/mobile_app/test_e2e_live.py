"""Live updates on the real app: a manager's edit through the manager API appears on the
rep's screen (offscreen Kivy window, real server process, real encrypted store) because
the server poked the phone — the app's poll timer is off in these tests, so nothing
else could bring it. When the stream goes away (the server restarts and then refuses
event streams) the app falls back to polling at its normal interval and the next edit
still arrives; while the stream was up the timer only ran as a slow safety net.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mobile_app.i18n import Translator
from mobile_app.ui.controller import LIVE_POLL_S
from mobile_app.viewmodels.account import (
    AccountFiles,
    FirstRunViewModel,
    InitialSyncViewModel,
    sdk_backend,
)
from mobile_app.viewmodels.base import Session
from tests.support.server_proc import ServerProcess

from .conftest import AppDriver
from .test_e2e_day import Manager

pytestmark = [pytest.mark.e2e, pytest.mark.app]


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A real server with a small demo book (rep1's customers), stopped after the test."""
    proc = ServerProcess(
        sqlite_url, seed_demo=True, demo_customers=12, log_path=tmp_path / "server.log"
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _rep_session(url: str, tmp_path: Path) -> Session:
    backend = sdk_backend("live phone", fast_kdf=True, max_attempts=1)
    first = FirstRunViewModel(backend, AccountFiles(tmp_path / "phone"), Translator("en"))
    first.server_url = url
    first.username, first.password = "rep1", "fieldsync-demo"
    first.passphrase = first.passphrase_again = "live-passphrase"
    session = first.submit()
    assert session is not None, first.error
    assert InitialSyncViewModel(session).run()
    return session


def _rename(manager: Manager, customer_id: str, name: str) -> None:
    current = httpx.get(
        f"{manager.url}/v1/manager/records/customers/{customer_id}",
        headers=manager.headers,
        timeout=10,
    )
    assert current.status_code == 200, current.text
    r = httpx.patch(
        f"{manager.url}/v1/manager/records/customers/{customer_id}",
        json={"fields": {"name": name}},
        headers={**manager.headers, "If-Match": f'"{current.json()["version"]}"'},
        timeout=10,
    )
    assert r.status_code == 200, r.text


def _shows(driver: AppDriver, text: str) -> bool:
    for widget in driver.screen.walk(restrict=True):
        label = getattr(widget, "text", None)
        if isinstance(label, str) and text in re.sub(r"\[/?[a-z]+[^\]]*\]", "", label):
            return True
    return False


def _open_customers(driver: AppDriver) -> Any:
    driver.controller.go("customers")
    driver.pump(3)
    vm = driver.screen.vm
    assert vm is not None and vm.rows, "the rep's customers are on screen"
    return vm.rows[0]


def test_a_managers_edit_reaches_the_reps_screen_by_a_poke(
    server: ServerProcess, tmp_path: Path, kivy_app: AppDriver
) -> None:
    c = kivy_app.controller
    try:
        session = _rep_session(server.url, tmp_path)
        session.tr = c.tr
        kivy_app.backend_state["live"] = True
        assert c.auto_sync_s is None  # no poll timer at all in this app
        c.begin_session(session)  # background sync: the first sync and the stream
        kivy_app.wait_until(lambda: c.live is not None and c.live.connected)
        row = _open_customers(kivy_app)
        assert _shows(kivy_app, row.name)
        manager = Manager(server.url)
        for n in range(2):  # the second edit: pokes keep coming on the same stream
            name = f"实时改名 Live {n}"
            started = time.monotonic()
            _rename(manager, row.id, name)
            kivy_app.wait_until(lambda name=name: _shows(kivy_app, name), timeout=30)
            print(
                f"edit {n} on the rep's screen {time.monotonic() - started:.2f} s after the PATCH"
            )
        assert c.live is not None and c.live.pokes >= 2
    finally:
        kivy_app.end()


def test_without_a_stream_the_app_polls_again(
    server: ServerProcess, tmp_path: Path, kivy_app: AppDriver
) -> None:
    c = kivy_app.controller
    c.auto_sync_s = 1.0  # this test's "normal" poll interval
    try:
        session = _rep_session(server.url, tmp_path)
        session.tr = c.tr
        kivy_app.backend_state["live"] = True
        c.begin_session(session)
        kivy_app.wait_until(lambda: c.live is not None and c.live.connected)
        kivy_app.wait_until(lambda: c._auto_event is not None)
        kivy_app.pump(2)
        assert c._auto_event.timeout == LIVE_POLL_S  # the stream is up: a slow safety net
        row = _open_customers(kivy_app)

        # The server restarts and from now on refuses event streams (503): the app
        # notices the stream is gone and polls every auto_sync_s again.
        server.stop()
        kivy_app.wait_until(lambda: c.live is not None and not c.live.connected)
        server.extra_env["FIELDSYNC_LIVE_MAX_STREAMS"] = "0"
        server.start()
        kivy_app.wait_until(lambda: c._auto_event is not None and c._auto_event.timeout == 1.0)
        _rename(Manager(server.url), row.id, "轮询改名 Polled")
        kivy_app.wait_until(lambda: _shows(kivy_app, "轮询改名 Polled"), timeout=30)
        assert c.live is not None and not c.live.connected
    finally:
        c.auto_sync_s = None
        kivy_app.end()


class _SlowClient:
    """A sync client whose first sync waits until released (a sync in flight)."""

    def __init__(self) -> None:
        import threading

        self.syncs = 0
        self.release = threading.Event()

    def sync(self) -> None:
        self.syncs += 1
        if self.syncs == 1:
            assert self.release.wait(10)

    def login(self, *_a: Any, **_k: Any) -> None: ...

    def logout(self) -> None: ...


def test_a_poke_during_a_sync_is_not_dropped(kivy_app: AppDriver, world: Any) -> None:
    """A poke that lands while a sync runs (its pull may be past the announced change)
    makes the sync go round once more; a plain "sync now" meanwhile does not."""
    c = kivy_app.controller
    kivy_app.begin(world)
    client = _SlowClient()
    world.session.client = client
    try:
        c.sync_now()
        c.sync_now()  # "sync now" while syncing: nothing more
        assert client.syncs == 1
        c.sync_now(again=True)  # a poke while syncing: once more afterwards
        c.sync_now(again=True)  # two pokes: still once more
        client.release.set()
        c.wait_for_sync(10)
        assert client.syncs == 2
        c.sync_now(again=True)  # idle: a sync of its own
        c.wait_for_sync(10)
        assert client.syncs == 3
    finally:
        client.release.set()
        kivy_app.end()
