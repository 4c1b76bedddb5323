"""Undo for one-tap and destructive actions: ✓ on a task, a stage move, a delete.

A rep in a moving car mis-taps. Every action that changes data with one tap offers
its inverse for a few seconds ("Task done · Undo"); the screen shows the newest offer
in a snackbar. The inverse is itself an ordinary write (the task reopened, the deal
moved back with its own stage-change event, the deleted record written again with
the same id), so it syncs like any other change and the history stays honest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .observable import Observable

#: How long an offer stays on screen (seconds).
UNDO_SECONDS = 8.0


@dataclass
class UndoOffer:
    message: str
    undo: Callable[[], None]
    created: float = field(default_factory=time.monotonic)


class UndoQueue(Observable):
    """The newest undoable action (older offers are dropped when a new one arrives)."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, seconds: float = UNDO_SECONDS
    ) -> None:
        super().__init__()
        self._clock = clock
        self.seconds = seconds
        self.current: UndoOffer | None = None
        self.last_message = ""

    def offer(self, message: str, undo: Callable[[], None]) -> None:
        self.current = UndoOffer(message, undo, self._clock())
        self.notify()

    @property
    def active(self) -> bool:
        offer = self.current
        return offer is not None and self._clock() - offer.created < self.seconds

    def undo(self) -> bool:
        """Run the inverse of the newest action; ``False`` when there is none (or it expired)."""
        offer = self.current
        if offer is None or not self.active:
            self.current = None
            return False
        self.current = None
        offer.undo()
        self.last_message = offer.message
        self.notify()
        return True

    def dismiss(self) -> None:
        if self.current is not None:
            self.current = None
            self.notify()
