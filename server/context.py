"""Per-app runtime state: settings, database, token signer, login throttle, server clock.

One :class:`ServerContext` is built by :func:`server.app.create_app` and hung on
``app.state.fieldsync``; dependencies reach it through the request. Nothing is global,
so tests can run several apps (with different settings) in one process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from sync_protocol import CRM_SCHEMA, HybridLogicalClock, SchemaRegistry, Timestamp
from sync_protocol.hlc import wall_clock_ms

from .auth import TokenSigner
from .authcache import AuthCache
from .crm import push_rules
from .operations import Operations
from .repository.pull import LoopReader
from .repository.push import PushRules
from .settings import Settings
from .throttle import LoginThrottle


class ServerClock:
    """The server's hybrid logical clock, safe to share between request threads."""

    def __init__(self, node: str = "server", *, ahead_ms: int = 0) -> None:
        # The server accepts device timestamps up to ``max_drift_ms`` ahead of its wall
        # clock (clamping beyond), so stored HLCs can be that far ahead. Running the
        # server's own clock ``ahead_ms = max_drift_ms`` ahead keeps every server_hlc it
        # hands out at or above every HLC it has stored — across restarts and across
        # worker processes, with no shared state — so an edit made after a pull always
        # orders after what was pulled.
        self._clock = HybridLogicalClock(node, wall=lambda: wall_clock_ms() + ahead_ms)
        self._lock = threading.Lock()

    def now(self) -> str:
        with self._lock:
            return self._clock.now().encode()

    def receive(self, timestamp: Timestamp | str) -> None:
        with self._lock:
            self._clock.receive(timestamp)


@dataclass(slots=True)
class TestHooks:
    """Seams for tests of concurrency: called inside the push transaction just before
    it commits (after the counter is locked and rows are written)."""

    __test__ = False  # not a pytest class

    before_push_commit: Callable[[], None] | None = None


@dataclass(slots=True)
class ServerContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    #: Fleet-health recorder and background tasks (:mod:`server.operations`).
    ops: Operations
    signer: TokenSigner
    throttle: LoginThrottle
    clock: ServerClock = field(default_factory=ServerClock)
    schema: SchemaRegistry = CRM_SCHEMA
    hooks: TestHooks = field(default_factory=TestHooks)
    #: Tokens verified under the current auth generation (the pull path, :mod:`.authcache`).
    auth_cache: AuthCache = field(default_factory=AuthCache)
    #: The event loop's connection for polls (:class:`~.repository.pull.LoopReader`).
    loop_reader: LoopReader | None = None

    @property
    def rules(self) -> PushRules:
        """The schema's domain rules every write path runs (:mod:`server.crm`)."""
        return push_rules(self.schema)
