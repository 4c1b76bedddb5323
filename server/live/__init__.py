"""Live sync: ``GET /v1/sync/events`` pokes online devices when their scope changes.

* :mod:`.hub` — one process's streams; re-reads the counter, fans out in memory;
* :mod:`.commits` — notices this process's commits (connection marks, pool check-in);
* :mod:`.pg` — PostgreSQL LISTEN/NOTIFY between instances (one listener connection per
  process, coalesced NOTIFY after commit); SQLite wakes the hub in process and relies
  on the periodic re-read for other processes;
* :mod:`.routes` — the SSE endpoint.

See docs/protocol.md ("Live pokes") and docs/deploy.md.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from ..context import ServerContext
from . import commits, routes
from .hub import LiveHub
from .pg import PgChannel


class Live:
    """The hub, its PostgreSQL channel and hooks, started and stopped with the app."""

    def __init__(self, context: ServerContext) -> None:
        s = context.settings
        self.hub = LiveHub(
            context.engine,
            context.sessions,
            poll_s=s.live_poll_s,
            auth_check_s=s.live_auth_check_s,
            max_streams=s.live_max_streams,
        )
        self.channel: PgChannel | None = None
        if context.engine.dialect.name == "postgresql":
            self.channel = PgChannel(
                self.hub,
                context.engine,
                interval_s=s.live_notify_interval_ms / 1000,
                reconnect_s=s.live_reconnect_s,
            )
        self.context = context
        self._unhook: Callable[[], None] | None = None

    def _committed(self, wrote: bool, auth: bool) -> None:
        if self.channel is not None:
            self.channel.local_commit(wrote, auth)
            return
        if wrote:
            self.hub.kick_threadsafe()
        if auth:
            self.hub.kick_threadsafe(auth=True)

    async def start(self) -> None:
        """Hook the commits and start the hub (again after a :meth:`stop`: a test client
        may run the app's lifespan several times)."""
        if self._unhook is None:
            self._unhook = commits.install(
                self.context.engine, self.context.sessions, self._committed
            )
        jobs = () if self.channel is None else (self.channel.sender, self.channel.listener)
        await self.hub.start(*jobs)

    @property
    def hooked(self) -> bool:
        return self._unhook is not None

    async def stop(self) -> None:
        await self.hub.stop()
        if self._unhook is not None:
            self._unhook()
            self._unhook = None


def install_live(app: FastAPI, context: ServerContext) -> Live:
    live = Live(context)
    app.state.fieldsync_live = live.hub
    app.state.fieldsync_live_channel = live.channel
    app.state.fieldsync_live_runtime = live
    app.include_router(routes.router)
    return live


__all__ = ["Live", "LiveHub", "install_live"]
