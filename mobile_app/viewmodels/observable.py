"""A minimal listener list every view-model builds on."""

from __future__ import annotations

from collections.abc import Callable


class Observable:
    """A minimal listener list: ``subscribe(cb)`` returns the unsubscribe function."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def notify(self) -> None:
        for listener in list(self._listeners):
            listener()
