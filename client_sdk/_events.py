"""Events a store publishes to subscribers (UI refresh, progress bars, badges).

Callbacks run synchronously on the thread that caused the change (the UI thread for
local writes, the sync thread for pulls); a UI toolkit schedules its own redraw from
there. A callback that raises is logged and skipped: observers never break a write.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ._status import SyncProgress, SyncStatus

log = logging.getLogger("client_sdk")


@dataclass(frozen=True, slots=True)
class RecordsChanged:
    """Records of ``collection`` changed; ``origin`` says whether locally or by a pull."""

    collection: str
    ids: tuple[str, ...]
    origin: Literal["local", "remote"]


@dataclass(frozen=True, slots=True)
class StatusChanged:
    status: SyncStatus


@dataclass(frozen=True, slots=True)
class ConflictsChanged:
    open_conflicts: int


@dataclass(frozen=True, slots=True)
class StoreWiped:
    """The store was erased (``reason``: ``"wipe"`` — the app asked — or ``"revoked"`` —
    an administrator revoked the device with a wipe). Every later call on it raises
    :class:`~client_sdk.StoreClosed`; open the path again for a fresh, empty store."""

    reason: str


Event = RecordsChanged | SyncProgress | StatusChanged | ConflictsChanged | StoreWiped
Listener = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock, _suppress_value_error():
                self._listeners.remove(listener)

        return unsubscribe

    def emit(self, event: object) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)  # type: ignore[arg-type]
            except Exception:
                log.exception("event listener failed on %s", type(event).__name__)


class _suppress_value_error:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool:
        return exc_type is ValueError
