"""The sync runner: log in, push the outbox, pull changes — resumably.

One :meth:`SyncClient.sync` is *push then pull*:

1. **Push** the outbox oldest first in batches. Each answer is folded into the store in
   one transaction (acknowledged writes leave the outbox, refused ones go to the
   dead-letter list, the others continue). A lost answer is harmless: the entries stay
   queued with the same mutation ids and the server answers ``duplicate`` next time.
2. **Pull** pages from the stored checkpoint until ``has_more`` is false, storing the
   checkpoint with each page (see :mod:`._replica`).

Failures: no answer → retried with exponential backoff and full jitter, then
:class:`NetworkError` (status goes offline); ``401`` → the access token is refreshed once
and the *same* request retried (a pull resumes from the same checkpoint); ``403
device_revoked`` → the store is wiped and :class:`DeviceRevoked` raised; ``410
resync_required`` → a fresh full pull that keeps pending writes; ``413`` → smaller push
batches; ``429``/``5xx`` → retried like network failures (``Retry-After`` honoured);
``clock_skew`` (warning or refusal) → ``status.clock_warning``.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from sync_protocol import (
    ErrorCode,
    HybridLogicalClock,
    LoginRequest,
    PullRequest,
    PushRequest,
    PushResponse,
    RefreshRequest,
    SyncInfo,
    TokenResponse,
    UserInfo,
)

from ._errors import (
    AuthError,
    DeviceRevoked,
    NetworkError,
    ServerError,
    StoreClosed,
    SyncError,
)
from ._events import ConflictsChanged, StatusChanged
from ._ids import new_device_id
from ._outbox import apply_results, take_batch, to_mutation
from ._replica import PulledPage, apply_page, begin_resync, finish_resync, parse_page, reset_replica
from ._status import SyncProgress, SyncReport
from ._store import Store
from ._transport import Transport, TransportRequest, TransportResponse

log = logging.getLogger("client_sdk")

_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class SyncConfig:
    """Tuning of the sync runner; the defaults suit a phone on a mobile network."""

    push_batch: int = 200
    pull_limit: int = 1000
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


class _ResyncSignal(ServerError):
    pass


class SyncClient:
    """Synchronises one :class:`Store` with a Fieldsync server through a transport."""

    def __init__(
        self, store: Store, transport: Transport, config: SyncConfig | None = None
    ) -> None:
        self.store = store
        self.transport = transport
        self.config = config or SyncConfig()
        self._lock = threading.RLock()
        self._tokens: dict[str, Any] | None = None

    # -- authentication -------------------------------------------------------------------
    def login(
        self,
        username: str,
        password: str,
        totp: str | None = None,
        device_name: str | None = None,
    ) -> UserInfo:
        """Log in and keep the tokens (sealed) in the store; returns who logged in.

        If a different user logs in on a store holding someone else's data, that data is
        dropped first (records, pending writes, checkpoint).
        """
        request = LoginRequest(
            username=username,
            password=password,
            device_id=self.store.device_id,
            device_name=device_name,
            platform=self.config.platform,
            app_version=self.config.app_version,
            totp=totp,
        )
        try:
            response = self._call(
                "POST", "/v1/auth/login", request.model_dump(mode="json"), auth=False
            )
        except ServerError as exc:
            if exc.code != ErrorCode.DEVICE_ID_TAKEN.value:
                raise
            # The device id is registered to another user (a shared phone): the server
            # never hands it over, so this user signs in as a new device.
            _renew_device_id(self.store)
            request = request.model_copy(update={"device_id": self.store.device_id})
            response = self._call(
                "POST", "/v1/auth/login", request.model_dump(mode="json"), auth=False
            )
        tokens = TokenResponse.model_validate_json(response.content)
        previous = self._load_tokens()
        if previous and previous.get("user", {}).get("id") not in (None, tokens.user.id):
            log.warning("another user logged in: dropping the previous user's local data")
            reset_replica(self.store)
        self._save_tokens(tokens)
        return tokens.user

    def logout(self) -> None:
        """Forget the tokens (and tell the server, when it can be reached)."""
        tokens = self._load_tokens()
        if tokens:
            with contextlib.suppress(SyncError):
                self._call(
                    "POST",
                    "/v1/auth/logout",
                    {
                        "refresh_token": tokens.get("refresh_token"),
                        "device_id": self.store.device_id,
                    },
                    retry=False,
                )
        self._tokens = None
        if not self.store.closed:
            self.store.secret_set("tokens", None)

    @property
    def user(self) -> UserInfo | None:
        tokens = self._load_tokens()
        return UserInfo.model_validate(tokens["user"]) if tokens and tokens.get("user") else None

    @property
    def logged_in(self) -> bool:
        return self._load_tokens() is not None

    def _load_tokens(self) -> dict[str, Any] | None:
        if self._tokens is None and not self.store.closed:
            self._tokens = self.store.secret_get("tokens")
        return self._tokens

    def _save_tokens(self, tokens: TokenResponse) -> None:
        data = {
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_at": self.store.clock.time() + tokens.expires_in,
            "user": tokens.user.model_dump(mode="json"),
        }
        self.store.secret_set("tokens", data)
        self._tokens = data

    def refresh(self) -> None:
        """Exchange the refresh token for new tokens (done automatically on a 401)."""
        tokens = self._load_tokens()
        if not tokens:
            raise AuthError("not logged in", code=ErrorCode.UNAUTHORIZED.value, status=401)
        request = RefreshRequest(
            refresh_token=tokens["refresh_token"], device_id=self.store.device_id
        )
        try:
            response = self._call(
                "POST", "/v1/auth/refresh", request.model_dump(mode="json"), auth=False
            )
        except AuthError:
            if not self.store.closed:
                self.store.secret_set("tokens", None)
            self._tokens = None
            raise
        self._save_tokens(TokenResponse.model_validate_json(response.content))

    # -- requests -------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        auth: bool = True,
        retry: bool = True,
        report: SyncReport | None = None,
    ) -> TransportResponse:
        attempt = 0
        refreshed = False
        while True:
            headers: dict[str, str] = {}
            if auth:
                tokens = self._load_tokens()
                if not tokens:
                    raise AuthError("not logged in", code=ErrorCode.UNAUTHORIZED.value, status=401)
                headers["Authorization"] = f"Bearer {tokens['access_token']}"
            try:
                response = self.transport.send(TransportRequest(method, path, body, headers))
            except NetworkError:
                self._set_online(False)
                attempt += 1
                if not retry or attempt >= self.config.max_attempts:
                    raise
                if report is not None:
                    report.retries += 1
                self.config.sleep(self.config.backoff(attempt))
                continue
            self._set_online(True)
            if 200 <= response.status < 300:
                return response
            code, message, details = _error_of(response)
            if response.status == 401:
                if auth and not refreshed and self._load_tokens():
                    self.refresh()
                    refreshed = True
                    if report is not None:
                        report.token_refreshes += 1
                    continue
                raise AuthError(message, code=code, status=401, details=details)
            if code == ErrorCode.DEVICE_REVOKED.value:
                self._revoked()
                raise DeviceRevoked(message, code=code, status=response.status, details=details)
            if response.status == 410 or code == ErrorCode.RESYNC_REQUIRED.value:
                raise _ResyncSignal(message, code=code, status=response.status, details=details)
            if response.status == 403:
                raise AuthError(message, code=code, status=403, details=details)
            if retry and response.status in _RETRYABLE_STATUS:
                attempt += 1
                if attempt < self.config.max_attempts:
                    if report is not None:
                        report.retries += 1
                    wait = self.config.backoff(attempt)
                    after = response.headers.get("retry-after") or details.get("retry_after_s")
                    with contextlib.suppress(TypeError, ValueError):
                        wait = max(wait, float(after)) if after is not None else wait
                    self.config.sleep(min(wait, self.config.backoff_max_s))
                    continue
            raise ServerError(message, code=code, status=response.status, details=details)

    def _revoked(self) -> None:
        log.warning("this device was revoked by an administrator: wiping the local store")
        self._tokens = None
        if not self.store.closed:
            self.store.wipe()

    def _set_online(self, online: bool) -> None:
        if self.store.online != online:
            self.store.online = online
            self._emit_status()

    def _emit_status(self) -> None:
        if not self.store.closed:
            with contextlib.suppress(StoreClosed):
                self.store.emit(StatusChanged(self.store.status()))

    def info(self) -> SyncInfo:
        """The server's protocol range, schema versions and limits."""
        return SyncInfo.model_validate_json(self._call("GET", "/v1/sync/info").content)

    # -- sync -----------------------------------------------------------------------------
    def sync(self) -> SyncReport:
        """Push the outbox, then pull until up to date. Raises :class:`SyncError` subclasses."""
        return self._run(push=True, pull=True)

    def push(self) -> SyncReport:
        return self._run(push=True, pull=False)

    def pull(self) -> SyncReport:
        return self._run(push=False, pull=True)

    def _run(self, *, push: bool, pull: bool) -> SyncReport:
        with self._lock:
            started = time.monotonic()
            report = SyncReport()
            try:
                if push:
                    self._push(report)
                if pull:
                    self._pull(report)
            except DeviceRevoked:
                raise
            except SyncError as exc:
                if not self.store.closed:
                    self.store.secret_set("last_error", f"{exc.code}: {exc.message}")
                    self._emit_status()
                raise
            report.duration_s = time.monotonic() - started
            report.checkpoint = self.store.meta_get("checkpoint")
            self.store.meta_set("last_sync_at", repr(self.store.clock.time()))
            self.store.secret_set("last_error", None)
            self._emit_status()
            return report

    def _push(self, report: SyncReport) -> None:
        store = self.store
        rows = store.storage.execute("SELECT MAX(seq), COUNT(*) FROM outbox")
        last_seq, total = rows[0]
        if last_seq is None:
            return
        batch_size = max(1, self.config.push_batch)
        done = 0
        while True:
            batch = [p for p in take_batch(store, batch_size) if p.seq <= last_seq]
            if not batch:
                return
            request = PushRequest(
                device_id=store.device_id,
                schema_version=store.schema.version,
                mutations=[to_mutation(p) for p in batch],
                pending_total=int(store.storage.execute("SELECT COUNT(*) FROM outbox")[0][0]),
            )
            try:
                response = self._call(
                    "POST",
                    "/v1/sync/push",
                    request.model_dump(mode="json", exclude_none=True),
                    report=report,
                )
            except ServerError as exc:
                if exc.code == ErrorCode.BATCH_TOO_LARGE.value and batch_size > 1:
                    batch_size = max(1, batch_size // 2)
                    continue
                if exc.code == ErrorCode.CLOCK_SKEW.value:
                    store.secret_set("clock_warning", exc.message)
                raise
            answer = _parse(PushResponse, response)
            counts = apply_results(store, batch, answer.results)
            if not counts:
                raise ServerError(
                    "the server answered a push without results", code="internal_error"
                )
            report.pushed += sum(counts.values())
            report.applied += counts.get("applied", 0)
            report.merged += counts.get("merged", 0)
            report.conflicts += counts.get("conflict", 0)
            report.rejected += counts.get("rejected", 0)
            report.duplicates += counts.get("duplicate", 0)
            skew = [w for w in answer.warnings if w.code is ErrorCode.CLOCK_SKEW]
            store.secret_set("clock_warning", skew[0].message if skew else None)
            report.warnings.extend(w.message for w in answer.warnings)
            self._receive_hlc(answer.server_hlc)
            done += len(batch)
            store.emit(SyncProgress("push", done, int(total)))

    def _pull(self, report: SyncReport) -> None:
        """Pull pages until up to date, fetching page N+1 while page N is applied.

        The next request needs only the checkpoint of the page just received, so it is
        sent from a helper thread while this one decrypts and stores the current page:
        the server's work and the device's overlap, and at most two pages are in memory.
        """
        store = self.store
        checkpoint = store.meta_get("checkpoint")
        resynced = False
        done = 0
        total: int | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fieldsync-pull") as pool:
            pending: Future[PulledPage] | None = None
            while True:
                try:
                    page = (
                        pending.result() if pending is not None else self._fetch(checkpoint, report)
                    )
                except _ResyncSignal:
                    if resynced:
                        raise
                    log.warning("server asked for a full resync; pending writes are kept")
                    begin_resync(store)
                    checkpoint, resynced, done, total = None, True, 0, None
                    pending = None
                    report.resynced = True
                    continue
                stalled = not page.changes and page.checkpoint == checkpoint
                more = page.has_more and not stalled
                pending = (
                    pool.submit(self._fetch, page.checkpoint, report)
                    if more and self.config.prefetch
                    else None
                )
                try:
                    outcome = apply_page(store, page.changes, page.checkpoint, page.server_hlc)
                except BaseException:
                    if pending is not None:
                        pending.cancel()
                    raise
                if outcome.conflicts_changed:
                    store.emit(ConflictsChanged(len(store.conflicts())))
                report.pulled += len(page.changes)
                report.evicted += outcome.evictions
                report.pages += 1
                done += len(page.changes)
                # servers may count only on the first page: keep that estimate until the end
                if page.remaining is not None:
                    total = done + page.remaining
                elif total is not None:
                    total = max(total, done)
                if not more:
                    total = done
                store.emit(SyncProgress("pull", done, total))
                checkpoint = page.checkpoint
                if not more:
                    break
                if pending is None:  # no prefetch: fetch the next page now
                    pending = pool.submit(self._fetch, checkpoint, report)
        finish_resync(store)

    def _fetch(self, checkpoint: str | None, report: SyncReport) -> PulledPage:
        request = PullRequest(
            device_id=self.store.device_id,
            schema_version=self.store.schema.version,
            checkpoint=checkpoint,
            limit=self.config.pull_limit,
        )
        response = self._call(
            "POST", "/v1/sync/pull", request.model_dump(mode="json"), report=report
        )
        try:
            return parse_page(response.content)
        except ValueError as exc:
            raise ServerError(str(exc), code="internal_error", status=response.status) from None

    def _receive_hlc(self, server_hlc: str) -> None:
        with self.store.locked():  # the UI thread stamps writes with the same clock
            try:
                stamp = self.store.hlc.receive(server_hlc).encode()
            except ValueError:
                return
            self.store.meta_set("hlc", stamp)

    def close(self) -> None:
        self.transport.close()


def _parse(model: Any, response: TransportResponse) -> Any:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise ServerError(
            f"the server's answer is not a valid {model.__name__} ({exc.error_count()} errors)",
            code="internal_error",
            status=response.status,
        ) from None


def _error_of(response: TransportResponse) -> tuple[str, str, dict[str, Any]]:
    try:
        body = response.json()
        err = body["error"]
        return str(err["code"]), str(err.get("message", "")), dict(err.get("details") or {})
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status}", f"the server answered HTTP {response.status}", {}


def _renew_device_id(store: Store) -> None:
    """Give the store a new device id (and HLC node), keeping its clock reading."""
    device_id = new_device_id()
    with store.storage.transaction():
        store.storage.set_meta("device_id", device_id.encode())
    last = store.hlc.last
    store.device_id = device_id
    store.hlc = HybridLogicalClock(
        device_id, wall=lambda: int(store.clock.time() * 1000), last=last.encode()
    )
