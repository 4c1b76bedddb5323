"""The runner: drives the engine with a transport and the local store.

It is where deciding (:mod:`._engine`), storing (:mod:`._local`) and talking
(:mod:`._transports`) meet; none of the three calls another. A push batch runs

    local.batches.take_batch → engine.push.build_request → session (token)
    → transport.send → engine.responses.decide + read_push → local.apply.apply_push → events

(docs/sdk.md, "A push, step by step"; ``tests/client_sdk/test_architecture.py`` traces
it), and a pull page ``transport.send → engine.responses.decide + read_page →
engine.pull.plan_page → local.apply.apply_page``, each answer applied in one transaction.

:meth:`Runner.call` is the one request loop of the SDK (sync, sign-in and attachments
alike): it acts on the answer as :func:`._engine.responses.decide` says — retry with
backoff and full jitter, refresh the token once, stop on revocation (erasing only when
the server asks), signal a resync, or raise a typed error.
"""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sync_protocol import ErrorCode, RefreshRequest

from ._attention import open_conflict_count, status
from ._config import SyncConfig
from ._core import StoreCore
from ._engine import pull as pull_engine
from ._engine import push as push_engine
from ._engine.health import DeviceInfo
from ._engine.responses import (
    NO_ANSWER,
    Action,
    ErrorInfo,
    PushPlan,
    Reject,
    decide,
    read_error,
    read_page,
    read_push,
    retry_after,
)
from ._errors import (
    AuthError,
    DeviceRevoked,
    NetworkError,
    ServerError,
    StoreClosed,
    SyncError,
    UpgradeRequired,
)
from ._events import ConflictsChanged, StatusChanged
from ._local import apply, batches
from ._rows import CONFLICTS, LocalCounts, Pending
from ._session import Session
from ._status import SyncProgress, SyncReport
from ._transports import Transport, TransportRequest, TransportResponse

#: Answers that mean "this app is too old for the server" (:class:`UpgradeRequired`).
_UPGRADE_CODES = frozenset({ErrorCode.SCHEMA_TOO_OLD.value, ErrorCode.PROTOCOL_UNSUPPORTED.value})

log = logging.getLogger("client_sdk")


class ResyncSignal(ServerError):
    """The server cannot serve changes after our checkpoint: pull everything again."""


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    body: Any = None
    content: bytes | None = None
    headers: dict[str, str] | None = None
    params: dict[str, str] | None = None


class Runner:
    def __init__(
        self,
        core: StoreCore,
        transport: Transport,
        config: SyncConfig,
        session: Session,
        *,
        max_attempts: int | None = None,
    ) -> None:
        self.core, self.transport, self.config, self.session = core, transport, config, session
        self.max_attempts = max_attempts if max_attempts is not None else config.max_attempts
        self.retries, self._limit = 0, 0
        self._pull_counts = LocalCounts()

    # -- the one request loop -------------------------------------------------------------
    def call(
        self,
        request: Request,
        *,
        auth: bool = True,
        retry: bool = True,
        report: SyncReport | None = None,
        ok: tuple[int, ...] = (),
    ) -> TransportResponse:
        attempt, refreshed = 0, False
        while True:
            headers = dict(request.headers or {})
            token = self.session.access_token() if auth else None
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            outgoing = TransportRequest(
                request.method, request.path, request.body, headers, request.content, request.params
            )
            response: TransportResponse | None = None
            try:
                response = self.transport.send(outgoing)
            except NetworkError as exc:
                failure: NetworkError | None = exc
            else:
                failure = None
            self._set_online(response is not None)
            status = response.status if response is not None else NO_ANSWER
            if decide(status) is Action.OK or status in ok:
                assert response is not None
                return response
            info = read_error(status, response.content) if response is not None else None
            action = decide(status, info.code if info else None)
            if action is Action.RETRY and retry:
                attempt += 1
                if attempt < self.max_attempts:
                    self._count_retry(report)
                    wait = self.config.backoff(attempt)
                    if response is not None and info is not None:
                        wait = max(wait, retry_after(response.headers, info.details) or 0.0)
                    self.config.sleep(min(wait, self.config.backoff_max_s))
                    continue
            if failure is not None or info is None:
                raise failure or NetworkError("no answer")
            if action is Action.REFRESH and auth and not refreshed and self.session.tokens():
                self.refresh(used=token)
                refreshed = True
                if report is not None:
                    report.token_refreshes += 1
                continue
            if action is Action.REVOKED:
                self.revoked(info)
            raise self._failure(action, info)

    def _count_retry(self, report: SyncReport | None) -> None:
        self.retries += 1
        if report is not None:
            report.retries += 1

    def _failure(self, action: Action, info: ErrorInfo) -> SyncError:
        args = (info.message,)
        kw: dict[str, Any] = {"code": info.code, "status": info.status, "details": info.details}
        if action is Action.REVOKED:
            return DeviceRevoked(*args, **kw)
        if action is Action.RESYNC:
            return ResyncSignal(*args, **kw)
        if info.status in (401, 403):
            return AuthError(*args, **kw)
        if info.code in _UPGRADE_CODES:
            return UpgradeRequired(*args, **kw)
        return ServerError(*args, **kw)

    def refresh(self, used: str | None = None) -> None:
        """Exchange the refresh token for new tokens — once, however many threads ask:
        a thread that finds the token changed since its request went out just retries."""
        with self.session.lock:
            tokens = self.session.tokens()
            if used is not None and tokens and tokens.get("access_token") != used:
                return
            if not tokens:
                raise AuthError("not logged in", code=ErrorCode.UNAUTHORIZED.value, status=401)
            body = RefreshRequest(
                refresh_token=tokens["refresh_token"], device_id=self.core.device_id
            ).model_dump(mode="json")
            try:
                response = self.call(Request("POST", "/v1/auth/refresh", body), auth=False)
            except AuthError:
                self.session.forget()
                raise
            self._accept(response)

    def _accept(self, response: TransportResponse) -> None:
        try:
            self.session.accept(response.content)
        except ValueError as exc:
            raise ServerError(str(exc), code="internal_error", status=response.status) from None

    def revoked(self, info: ErrorInfo) -> None:
        """Stop syncing; erase the store only when the administrator asked for a wipe."""
        self.session.forget()
        core = self.core
        if info.details.get("wipe") is True:
            log.warning("this device was revoked with a wipe: erasing the local store")
            if not core.closed:
                core.erase("revoked")
        elif not core.closed:
            log.warning("this device was revoked: syncing stopped, local work kept")
            core.set_revoked(True)

    def _device(self) -> DeviceInfo:
        schema = self.core.schema
        return DeviceInfo(
            self.config.app_version, self.config.platform, schema.version, schema.name
        )

    def _set_online(self, online: bool) -> None:
        core = self.core
        if core.online != online:
            core.online = online
            self.emit_status()

    def emit_status(self) -> None:
        core = self.core
        if not core.closed and not core.local.closed:
            with contextlib.suppress(StoreClosed):
                core.emit(StatusChanged(status(core)))

    # -- push -------------------------------------------------------------------------------
    def push(self, report: SyncReport) -> None:
        core, local = self.core, self.core.local
        batch_size, done, upto, total = max(1, self.config.push_batch), 0, None, 0
        while True:
            with core.lock:
                outgoing = batches.take_batch(local, batch_size, upto)
            batch, upto = outgoing.batch, outgoing.upto
            total = total or outgoing.counts.pending_count
            if not batch:
                return
            body = push_engine.build_request(
                batch,
                outgoing.counts,
                device_id=core.device_id,
                device=self._device(),
                now=core.clock.time(),
            )
            try:
                response = self.call(Request("POST", "/v1/sync/push", body), report=report)
            except ServerError as exc:
                if exc.code == ErrorCode.BATCH_TOO_LARGE.value and batch_size > 1:
                    batch_size = max(1, batch_size // 2)
                    continue
                if exc.code == ErrorCode.BATCH_TOO_LARGE.value and len(batch) > 1:
                    self._refuse_group(batch, exc)  # one group, larger than the server takes
                    continue
                if exc.code == ErrorCode.CLOCK_SKEW.value:
                    local.meta.set_secret(apply.CLOCK_WARNING, exc.message)
                raise
            self._fold(batch, response, report)
            done += len(batch)
            core.emit(SyncProgress("push", done, total))
            if batch[-1].seq >= upto:  # everything queued when the push began has gone
                return

    def _fold(self, batch: list[Pending], response: TransportResponse, report: SyncReport) -> None:
        core = self.core
        try:
            plan = read_push(batch, response.content)
        except ValueError as exc:
            raise ServerError(str(exc), code="internal_error", status=response.status) from None
        answered = plan.answered
        if not answered:
            raise ServerError("the server answered a push without results", code="internal_error")
        for key in ("applied", "merged", "rejected"):
            setattr(report, key, getattr(report, key) + plan.counts.get(key, 0))
        report.conflicts += plan.counts.get("conflict", 0)
        report.duplicates += plan.counts.get("duplicate", 0)
        report.pushed += answered
        report.warnings.extend(m for _, m in plan.warnings)
        touched: dict[str, set[str]] = {}
        for p in [a.entry for a in plan.acks] + [r.entry for r in plan.rejects]:
            touched.setdefault(p.collection, set()).add(p.record_id)
        for ack in plan.acks:
            touched.setdefault(CONFLICTS, set()).update(ack.entry.resolves or ())
        with core.lock:
            stamp = self._stamp(plan.server_hlc)
            at = core.clock.time()
            apply.apply_push(core.local, plan, at=at, hlc=stamp, views=core.views)
        for collection, ids in touched.items():
            core.changed(collection, ids, "remote")

    def _refuse_group(self, batch: list[Pending], exc: ServerError) -> None:
        error = {"code": exc.code, "message": exc.message, "details": exc.details}
        plan = PushPlan(rejects=[Reject(p, error) for p in batch])
        with self.core.lock:
            at, views = self.core.clock.time(), self.core.views
            apply.apply_push(self.core.local, plan, at=at, hlc=None, views=views)

    def _stamp(self, server_hlc: str | None) -> str | None:
        if not server_hlc:
            return None
        try:
            return self.core.hlc.receive(server_hlc).encode()
        except ValueError:
            return None

    # -- pull -------------------------------------------------------------------------------
    def pull(self, report: SyncReport) -> None:
        """Pull pages until up to date, fetching page N+1 while page N is applied.

        The next request needs only the checkpoint of the page just received, so it is
        sent from a helper thread while this one decodes, seals and stores the current
        page: the server's work and the device's overlap; two pages in memory at most.
        Pages start small and double up to ``pull_limit`` (the device starts sooner)."""
        core = self.core
        with core.lock:
            checkpoint = apply.checkpoint(core.local)
            self._pull_counts, self._limit = batches.counts(core.local), 0
        resynced, done, total = False, 0, None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fieldsync-pull") as pool:
            pending: Future[TransportResponse] | None = None
            while True:
                try:
                    page = self._read(
                        pending.result() if pending else self._fetch(checkpoint, report)
                    )
                except ResyncSignal:
                    if resynced:
                        raise
                    log.warning("server asked for a full resync; pending writes are kept")
                    apply.begin_resync(core.local)
                    checkpoint, resynced, done, total, pending = None, True, 0, None, None
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
                    evicted = self._apply_page(page)
                except BaseException:
                    if pending is not None:
                        pending.cancel()
                    raise
                report.pulled += len(page.changes)
                report.evicted += evicted
                report.pages += 1
                done += len(page.changes)
                # servers may count only on the first page: keep that estimate until the end
                if page.remaining is not None:
                    total = done + page.remaining
                elif total is not None:
                    total = max(total, done)
                if not more:
                    total = done
                core.emit(SyncProgress("pull", done, total))
                checkpoint = page.checkpoint
                if not more:
                    break
                if pending is None:  # no prefetch: fetch the next page now
                    pending = pool.submit(self._fetch, checkpoint, report)
        if apply.finish_resync(core.local) or resynced:
            with core.lock:
                core.views.drop()

    def _fetch(self, checkpoint: str | None, report: SyncReport) -> TransportResponse:
        """A page's raw answer: the helper thread only waits and inflates (no GIL held)."""
        body = pull_engine.build_request(
            checkpoint,
            self._pull_counts,
            device_id=self.core.device_id,
            device=self._device(),
            limit=self._next_limit(),
            now=self.core.clock.time(),
        )
        return self.call(Request("POST", "/v1/sync/pull", body), report=report)

    def _read(self, response: TransportResponse) -> pull_engine.PulledPage:
        try:
            return read_page(response.content)
        except ValueError as exc:
            raise ServerError(str(exc), code="internal_error", status=response.status) from None

    def _next_limit(self) -> int:
        config = self.config
        self._limit = min(config.pull_limit, max(config.first_pull_limit, self._limit * 2))
        return self._limit

    def _apply_page(self, page: pull_engine.PulledPage) -> int:
        core = self.core
        with core.lock:
            core.check_open()
            plan = pull_engine.plan_page(page, core.local.outbox.keys())
            stamp = self._stamp(page.server_hlc)
            apply.apply_page(core.local, plan, at=core.clock.time(), hlc=stamp, views=core.views)
            conflicts = open_conflict_count(core) if plan.conflicts_changed else None
        for collection, ids in plan.collections.items():
            core.changed(collection, ids, "remote")
        if conflicts is not None:
            core.emit(ConflictsChanged(conflicts))
        return plan.evictions
