"""The machinery behind one open store, shared by its faces and the sync runner.

:class:`~client_sdk.Store` and :class:`~client_sdk.Collection` are thin faces over a
``StoreCore``; the runner and the attachments use it too. It holds the local store, the
views (read on demand, never cached), the event bus, the hybrid logical clock, and the store's states that
are not data: closed, revoked (syncing stopped by an administrator) and the offline
lease (locked when the device has not reached the server for too long).

Callers hold ``lock`` (the local store's) around anything that reads and then writes.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sync_protocol import HybridLogicalClock, SchemaRegistry

from ._clock import Clock, wall_ms
from ._errors import StoreClosed, StoreLocked
from ._events import EventBus, RecordsChanged, StoreWiped
from ._ids import new_device_id
from ._local.base import LocalStore
from ._local.views import SearchKeys, Views

DAY_S = 86_400.0
_LEASE, _REVOKED, _HLC = "lease", "revoked", "hlc"


class StoreCore:
    def __init__(
        self,
        local: LocalStore,
        schema: SchemaRegistry,
        *,
        device_id: str,
        clock: Clock,
        search_keys: SearchKeys | None,
    ) -> None:
        self.local = local
        self.lock = local.lock
        self.schema = schema
        self.device_id = device_id
        self.clock = clock
        self.views = Views(local, schema, search_keys)
        self.views.check_index()
        self.bus = EventBus()
        self.online = False
        self.closed = False
        self.vault_dirs: set[Path] = set()
        last = local.meta.get(_HLC)
        self.hlc = HybridLogicalClock(
            device_id, wall=wall_ms(clock), last=last.decode() if last else None
        )
        lease = local.meta.get_secret(_LEASE) or {}
        self._lease_days: float | None = lease.get("days")
        self._contact: float | None = lease.get("contact")
        self.revoked = local.meta.get(_REVOKED) == b"1"
        self._group = threading.local()

    # -- states -------------------------------------------------------------------------
    def check_open(self) -> None:
        if self.closed or self.local.closed:
            raise StoreClosed("the store is closed")

    def check_usable(self) -> None:
        """Open, and not locked by the offline lease (records may be read and written)."""
        self.check_open()
        if self.locked:
            raise StoreLocked(
                f"this device has not reached the server for over {self._lease_days:g} days: "
                "sync or sign in online to unlock its data"
            )

    @property
    def locked(self) -> bool:
        if not self._lease_days or self._contact is None:
            return False
        return self.clock.time() > self._contact + self._lease_days * DAY_S

    @property
    def lease_days(self) -> float | None:
        return self._lease_days

    def reached_server(self) -> None:
        """Record a successful exchange with the server now (it unlocks the store)."""
        self._contact = self.clock.time()
        self.local.meta.set_secret(_LEASE, {"days": self._lease_days, "contact": self._contact})

    def set_lease(self, days: float | None) -> None:
        """The offline lease the server published (``None``/0: no lease)."""
        self._lease_days = float(days) if days else None
        self.reached_server()

    def renew_device_id(self) -> None:
        """Become a new device (same data, new id and HLC node, clock reading kept): the
        server binds a device id to the user who registered it, so another user signing
        in on this phone does so as a new device."""
        device_id = new_device_id()
        self.local.meta.set("device_id", device_id.encode())
        last = self.hlc.last.encode()
        self.device_id = device_id
        self.hlc = HybridLogicalClock(device_id, wall=wall_ms(self.clock), last=last)

    def set_revoked(self, revoked: bool) -> None:
        self.revoked = revoked
        self.local.meta.set(_REVOKED, b"1" if revoked else None)

    # -- events -------------------------------------------------------------------------
    def emit(self, event: Any) -> None:
        buffered = getattr(self._group, "events", None)
        if buffered is not None and isinstance(event, RecordsChanged):
            buffered.append(event)  # a group's changes are published when it commits
            return
        self.bus.emit(event)

    def changed(self, collection: str, ids: Iterable[str], origin: str) -> None:
        ids_t = tuple(ids)
        if ids_t:
            self.emit(RecordsChanged(collection, ids_t, "local" if origin == "local" else "remote"))

    # -- mutation groups ----------------------------------------------------------------
    def group_id(self) -> str | None:
        return getattr(self._group, "id", None)

    def begin_group(self, group_id: str) -> None:
        self._group.id, self._group.events = group_id, []

    def end_group(self, *, publish: bool) -> None:
        events: list[Any] = getattr(self._group, "events", None) or []
        self._group.id = self._group.events = None
        if publish:
            for event in events:
                self.bus.emit(event)

    # -- lifecycle ------------------------------------------------------------------------
    def default_vault_dir(self) -> Path | None:
        path = self.local.path
        return Path(f"{path}.attachments") if path is not None else None

    def close(self) -> None:
        with self.lock:
            if not self.closed:
                self.closed = True
                self.local.close()

    def erase(self, reason: str) -> None:
        """Destroy the key material, every table, the files and the attachment chunks."""
        with self.lock:
            self.closed = True
            self.local.destroy()
            for directory in {*self.vault_dirs, self.default_vault_dir()}:
                if directory is not None:
                    with contextlib.suppress(OSError):
                        shutil.rmtree(directory, ignore_errors=True)
        self.bus.emit(StoreWiped(reason))
