"""Tuning of the sync runner: a value object with defaults that suit a phone."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SyncConfig:
    """Tuning of the sync runner; the defaults suit a phone on a mobile network."""

    push_batch: int = 200
    pull_limit: int = 1000
    #: The first pull page asks for this many changes, the next ones twice as many as the
    #: last, up to ``pull_limit``: the device starts applying after the server has made a
    #: short page, not a full one.
    first_pull_limit: int = 250
    max_attempts: int = 5
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    #: Fetch the next pull page while the current one is applied (overlaps the server's
    #: work with the device's; two pages in memory at most).
    prefetch: bool = True
    platform: str | None = "python"
    app_version: str | None = None
    #: Injected for tests (no real sleeping) and simulations.
    sleep: Callable[[float], None] = field(default=time.sleep)
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, initial * 2**attempt)]."""
        cap = min(self.backoff_max_s, self.backoff_initial_s * (2 ** max(0, attempt - 1)))
        return self.rng.uniform(0, cap)
