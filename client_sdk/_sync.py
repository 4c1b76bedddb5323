"""The sync client — the public face: sign in, sync (push then pull), sign out.

One :meth:`SyncClient.sync` pushes the outbox oldest first in batches (each answer
folded into the store in one transaction: acknowledged writes leave the outbox, refused
ones go to the dead letters) and then pulls pages from the stored checkpoint until up
to date (each page applied with its checkpoint in one transaction). The work is done by
:class:`._runner.Runner`; what each answer means is decided by :mod:`._engine`.

Failures: no answer → retried with backoff, then :class:`NetworkError`; ``401`` → the
token is refreshed once and the same request repeated; ``device_revoked`` →
:class:`DeviceRevoked` (the store is erased only when the server asks for a wipe);
``410 resync_required`` → a full re-pull that keeps pending writes; ``413`` → smaller
push batches; ``429``/``5xx`` → retried (``Retry-After`` honoured).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from sync_protocol import ErrorCode, LoginRequest, SyncInfo, UserInfo

from ._attention import unsent_work
from ._config import SyncConfig
from ._engine.health import NETWORK, Health
from ._errors import DeviceRevoked, NetworkError, SDKError, ServerError, SyncError, WouldLoseWork
from ._local import apply
from ._local.batches import DEVICE_NAME, HEALTH
from ._runner import Request, Runner
from ._session import Session, read_tokens
from ._status import SyncReport
from ._store import Store
from ._transports import Transport, TransportResponse

log = logging.getLogger("client_sdk")

#: How often a sync asks the server for its limits (the offline lease among them).
INFO_EVERY_S = 12 * 3600.0
_OWNER, _INFO_AT = "replica_owner", "info_at"
#: The server binds a device id to its first user; another user gets this code.
DEVICE_ID_TAKEN = "device_id_taken"


class SyncClient:
    """Synchronises one :class:`Store` with a Fieldsync server through a transport."""

    def __init__(
        self, store: Store, transport: Transport, config: SyncConfig | None = None
    ) -> None:
        self.store = store
        self.config = config or SyncConfig()
        self._core = store._core
        self._session = Session(self._core)
        self._runner = Runner(self._core, transport, self.config, self._session)
        self._lock = threading.RLock()

    @property
    def transport(self) -> Transport:
        return self._runner.transport

    @transport.setter
    def transport(self, transport: Transport) -> None:
        self._runner.transport = transport

    # -- signing in and out ---------------------------------------------------------------
    def login(
        self,
        username: str,
        password: str,
        totp: str | None = None,
        device_name: str | None = None,
        *,
        force: bool = False,
    ) -> UserInfo:
        """Sign in and keep the tokens (sealed) in the store; returns who signed in.

        When another user signs in on a store holding someone else's data, that data is
        dropped first — refused with :class:`WouldLoseWork` while it holds unsent work,
        unless ``force=True``. A successful sign-in also resumes syncing after a revoke
        and unlocks a store locked by the offline lease.
        """
        core = self._core
        with self._lock:
            core.check_open()
            try:
                response = self._login(username, password, totp, device_name)
            except ServerError as exc:
                if exc.code != DEVICE_ID_TAKEN:
                    raise
                # The device id belongs to another user (a shared phone): the server never
                # hands it over, so this user signs in as a new device — after making
                # sure the other user's unsent work is not silently dropped.
                self._refuse_loss(force)
                with core.lock:
                    core.renew_device_id()
                response = self._login(username, password, totp, device_name)
            try:
                user_id = str(read_tokens(response.content)["user"]["id"])
            except (ValueError, KeyError) as exc:
                raise ServerError(str(exc), code="internal_error", status=response.status) from None
            with core.lock:
                owner = core.local.meta.get_secret(_OWNER) or self._session.user_id()
                if owner not in (None, user_id):
                    self._refuse_loss(force)
                    log.warning("another user signed in: dropping the previous user's data")
                    apply.reset_replica(core.local)
                    core.views.drop()
                user = self._session.accept(response.content)
                core.local.meta.set_secret(_OWNER, user_id)
                core.local.meta.set_secret(DEVICE_NAME, device_name)
                core.set_revoked(False)
                core.reached_server()
            self._learn_limits(force=True)
            return user

    def _login(
        self, username: str, password: str, totp: str | None, device_name: str | None
    ) -> TransportResponse:
        request = LoginRequest(
            username=username,
            password=password,
            device_id=self._core.device_id,
            device_name=device_name,
            platform=self.config.platform,
            app_version=self.config.app_version,
            totp=totp,
        )
        body = request.model_dump(mode="json")
        return self._runner.call(Request("POST", "/v1/auth/login", body), auth=False)

    def _refuse_loss(self, force: bool) -> None:
        """Refuse to drop another user's unsent work unless ``force``."""
        work = unsent_work(self._core)
        if work and not force:
            raise WouldLoseWork(
                "another user's unsent work is on this device: export it, or sign in "
                "with force=True",
                work,
            )

    def logout(self) -> None:
        """Forget the tokens (and tell the server, when it can be reached). The store's
        data stays; wipe it with :meth:`Store.wipe` if the device is handed on."""
        tokens = self._session.tokens()
        if tokens:
            body = {"refresh_token": tokens.get("refresh_token"), "device_id": self._core.device_id}
            with contextlib.suppress(SyncError):
                self._runner.call(Request("POST", "/v1/auth/logout", body), retry=False)
        self._session.forget()

    def refresh(self) -> None:
        """Exchange the refresh token for new tokens (done automatically on a 401)."""
        self._runner.refresh()

    @property
    def user(self) -> UserInfo | None:
        return self._session.user()

    @property
    def logged_in(self) -> bool:
        return self._session.tokens() is not None

    def info(self) -> SyncInfo:
        """The server's protocol range, schema versions and limits."""
        response = self._runner.call(Request("GET", "/v1/sync/info"))
        return SyncInfo.model_validate_json(response.content)

    def _learn_limits(self, *, force: bool = False) -> None:
        """Ask for the server's limits (best effort): the offline lease is one of them."""
        core = self._core
        raw = core.local.meta.get(_INFO_AT)
        if not force and raw is not None and core.clock.time() - float(raw) < INFO_EVERY_S:
            return
        try:
            info = self._runner.call(Request("GET", "/v1/sync/info"), retry=False).json()
            lease = (info.get("limits") or {}).get("offline_lease_days")
        except (SDKError, ValueError, AttributeError):
            return
        with core.lock:
            core.set_lease(lease if isinstance(lease, int | float) else None)
            core.local.meta.set(_INFO_AT, repr(core.clock.time()).encode())

    # -- sync -----------------------------------------------------------------------------
    def sync(self) -> SyncReport:
        """Push the outbox, then pull until up to date. Raises :class:`SyncError` subclasses."""
        return self._run(push=True, pull=True)

    def push(self) -> SyncReport:
        return self._run(push=True, pull=False)

    def pull(self) -> SyncReport:
        return self._run(push=False, pull=True)

    def _run(self, *, push: bool, pull: bool) -> SyncReport:
        core, runner = self._core, self._runner
        with self._lock:
            core.check_open()
            if core.revoked:
                raise DeviceRevoked(
                    "this device was revoked: sign in again once an administrator allows it",
                    code=ErrorCode.DEVICE_REVOKED.value,
                    status=403,
                    details={"wipe": False},
                )
            started = time.monotonic()
            report = SyncReport()
            try:
                if push:
                    runner.push(report)
                if pull:
                    runner.pull(report)
            except DeviceRevoked:
                raise
            except SyncError as exc:
                if not self.store.closed:
                    self._note_failure(exc)
                    runner.emit_status()
                raise
            report.duration_s = time.monotonic() - started
            with core.lock:
                report.checkpoint = apply.finish_run(core.local, core.clock.time())
                core.reached_server()
            self._learn_limits()
            runner.emit_status()
            return report

    def _note_failure(self, exc: SyncError) -> None:
        core = self._core
        code = NETWORK if isinstance(exc, NetworkError) else exc.code
        with core.lock, core.local.transaction():
            health = Health.read(core.local.meta.get_secret(HEALTH))
            failed = health.failed(code, int(core.clock.time() * 1000))
            core.local.meta.set_secret(HEALTH, failed.as_json())
            core.local.meta.set_secret(apply.LAST_ERROR, f"{exc.code}: {exc.message}")

    def close(self) -> None:
        self._runner.transport.close()
