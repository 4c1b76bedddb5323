"""Live pokes: hold ``GET /v1/sync/events`` open while online, poll when not.

The server's stream never carries records; it says the device's scope has changes up to
a checkpoint (docs/protocol.md, 2.13). :class:`LiveSubscription` reads it on a daemon
thread and calls ``on_poke`` when the announced checkpoint differs from the store's —
the caller then syncs as usual (``BackgroundSync.trigger``, or the app's own timer).
When the stream cannot be held (offline, refused, a proxy that cuts it, a silent
connection past ``stale_after_s``) it reconnects with backoff and full jitter; polling
goes on meanwhile, so a poke is only ever a shortcut.

:func:`subscribe` wires one to a :class:`~client_sdk.BackgroundSync`: while the stream
is up the background sync polls only every ``live_interval_s`` (a safety net), and at
its normal interval again as soon as the stream is down.

``error`` events end the stream like a request would be answered: ``token_expired`` /
``unauthorized`` → one token refresh, then reconnect; ``device_revoked`` → one last
poke (the sync that follows raises :class:`~client_sdk.DeviceRevoked` and wipes only if
asked) and the subscription stops.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable
from typing import Any

import httpx

from ._background import BackgroundSync
from ._errors import AuthError, SDKError
from ._local import apply
from ._sync import SyncClient

log = logging.getLogger("client_sdk")

EVENTS_PATH = "/v1/sync/events"
_REFRESH = frozenset({"token_expired", "unauthorized"})
_STOP = frozenset({"device_revoked"})


class LiveSubscription:
    """``on_poke()`` whenever the server announces changes this store has not pulled."""

    def __init__(
        self,
        client: SyncClient,
        on_poke: Callable[[], None],
        *,
        base_url: str,
        http: httpx.Client | None = None,
        stale_after_s: float = 45.0,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 60.0,
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        self.client = client
        self.on_poke = on_poke
        self.on_state = on_state
        self.url = base_url.rstrip("/") + EVENTS_PATH
        self.stale_after_s = stale_after_s
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self._own = http is None
        self._http = http or httpx.Client(
            timeout=httpx.Timeout(stale_after_s, connect=min(stale_after_s, 10.0))
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._response: httpx.Response | None = None
        self.connected = False
        #: Pokes passed on, events read, streams opened (for tests and status screens).
        self.pokes = 0
        self.events = 0
        self.connections = 0
        self.last_error: str | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="fieldsync-live", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            response.close()  # unblocks the reading thread
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        if self._own:
            self._http.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the stream -----------------------------------------------------------------------
    def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            outcome = self._stream_once()
            if outcome == "stop":
                return
            if outcome == "again":
                failures = 0
                continue
            failures += 1
            ceiling = min(self.reconnect_max_s, self.reconnect_min_s * 2 ** min(failures, 10))
            self._stop.wait(random.uniform(self.reconnect_min_s / 2, ceiling))

    def _set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            if self.on_state is not None:
                self.on_state(connected)

    def _stream_once(self) -> str:
        """One connection: ``again`` (reconnect now), ``retry`` (after backoff), ``stop``."""
        try:
            token = self.client._session.access_token()
        except AuthError:
            return "retry"  # not signed in yet (or any more): polling reports it
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        try:
            with self._http.stream("GET", self.url, headers=headers) as response:
                self._response = response
                if response.status_code != 200:
                    response.read()
                    return self._refused(response.status_code, _error_code(response.content))
                self.connections += 1
                self._set_connected(True)
                return self._read(response)
        except (httpx.HTTPError, OSError, RuntimeError) as exc:
            self.last_error = type(exc).__name__
            return "stop" if self._stop.is_set() else "retry"
        finally:
            self._response = None
            self._set_connected(False)

    def _read(self, response: httpx.Response) -> str:
        name, data = "message", ""
        for line in response.iter_lines():
            if self._stop.is_set():
                return "stop"
            if line:
                field, _, value = line.partition(":")
                if field == "event":
                    name = value.strip()
                elif field == "data":
                    data += value.strip()
                continue
            if data:
                outcome = self._event(name, data)
                if outcome is not None:
                    return outcome
            name, data = "message", ""
        return "retry"  # the server ended the stream (restart, deploy)

    def _event(self, name: str, data: str) -> str | None:
        self.events += 1
        try:
            body: dict[str, Any] = json.loads(data)
        except ValueError:
            return None
        if name in ("ready", "changes"):
            if body.get("checkpoint") != self._local_checkpoint():
                self.pokes += 1
                self.on_poke()
            return None
        if name == "error":
            code = str((body.get("error") or {}).get("code", ""))
            self.last_error = code
            return self._refused(403 if code in _STOP else 401 if code in _REFRESH else 503, code)
        return None  # heartbeat, or an event this SDK does not know yet

    def _refused(self, status: int, code: str) -> str:
        self.last_error = code or str(status)
        if code in _STOP:
            self.on_poke()  # the sync that follows meets the revocation and acts on it
            return "stop"
        if status == 401 or code in _REFRESH:
            try:
                self.client.refresh()
            except AuthError:
                self.on_poke()  # signed out for good: let the sync report it
                return "stop"
            except SDKError:
                return "retry"
            return "again"
        return "retry"

    def _local_checkpoint(self) -> str | None:
        core = self.client._core
        with core.lock:
            if core.closed or core.local.closed:
                return None
            return apply.checkpoint(core.local)


def _error_code(content: bytes) -> str:
    try:
        return str(json.loads(content)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


def subscribe(
    background: BackgroundSync,
    *,
    base_url: str,
    live_interval_s: float = 300.0,
    http: httpx.Client | None = None,
    **options: Any,
) -> LiveSubscription:
    """Poke ``background`` from the server's stream; poll every ``live_interval_s`` while
    the stream is up and at ``background``'s own interval while it is down. Started."""
    polling_s = background.interval_s

    def on_state(connected: bool) -> None:
        background.interval_s = max(polling_s, live_interval_s) if connected else polling_s
        if not connected:
            background.trigger()  # whatever was announced while the stream was down

    live = LiveSubscription(
        background.client,
        background.trigger,
        base_url=base_url,
        http=http,
        on_state=on_state,
        **options,
    )
    live.start()
    return live
