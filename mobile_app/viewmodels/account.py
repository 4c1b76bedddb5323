"""First run, unlock and the initial sync: from nothing to an unlocked session.

* **First run** asks for the server URL, username, password (and a one-time code when
  the server says the account has one) and a passphrase that encrypts the local store.
  The store is created, the device logs in, and the non-secret account facts (server,
  user, role, language) are written to ``account.json`` beside the store so later
  starts know whom to greet. A failed login leaves nothing behind.
* **Unlock** (every later start) asks only for the passphrase; it works offline.
* **Initial sync** pulls everything the user may see and reports progress.

How the store and client are made is a :class:`Backend` of two factories, so the same
view-models run on the real SDK in the app, in the tests and in the screenshot tool.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mobile_app.i18n import Language, Translator

from .base import CurrentUser, Observable, Session, error_parts
from .ports import AttachmentsPort, LivePort, StorePort, SubscribeLive, SyncClientPort, UploadsPort

log = logging.getLogger("fieldsync.app")

MIN_PASSPHRASE = 6
#: The largest photo the app accepts (checked on the phone before anything is stored;
#: the server enforces its own limit again). Phone cameras write 2–10 MB.
PHOTO_MAX_BYTES = 20 * 1024 * 1024
STORE_FILE = "fieldsync.db"
ACCOUNT_FILE = "account.json"


@dataclass
class Backend:
    """How to open an encrypted store and make a sync client for it (and, optionally,
    hear the server's live pokes while online)."""

    open_store: Callable[[Path, str], StorePort]
    make_client: Callable[[StorePort, str], SyncClientPort]
    device_name: str = "Fieldsync app"
    subscribe_live: SubscribeLive | None = None


def sdk_backend(
    device_name: str = "Fieldsync app", *, fast_kdf: bool = False, max_attempts: int = 3
) -> Backend:
    """The real thing: ``client_sdk.Store`` with pinyin search keys, synced over HTTP.

    ``fast_kdf`` lowers the Argon2 cost of a *new* store (tests, screenshots only).
    """
    from client_sdk import FAST_KDF, HttpTransport, Store, SyncClient, SyncConfig
    from mobile_app.pinyin_search import search_keys
    from sync_protocol import CRM_SCHEMA

    def open_store(path: Path, passphrase: str) -> StorePort:
        store: StorePort = Store.open(
            path,
            passphrase,
            schema=CRM_SCHEMA,
            search_keys=search_keys,
            kdf=FAST_KDF if fast_kdf else None,
        )
        return store

    def make_client(store: StorePort, server_url: str) -> SyncClientPort:
        assert isinstance(store, Store)
        config = SyncConfig(max_attempts=max_attempts, app_version="0.1.0")
        client: SyncClientPort = SyncClient(store, HttpTransport(server_url), config)
        return client

    return Backend(
        open_store=open_store,
        make_client=make_client,
        device_name=device_name,
        subscribe_live=sdk_live,
    )


def sdk_live(
    client: SyncClientPort,
    server_url: str,
    on_poke: Callable[[], None],
    on_state: Callable[[bool], None],
) -> LivePort:
    """``client_sdk.LiveSubscription`` on ``GET /v1/sync/events`` of ``server_url``,
    started: ``on_poke()`` when the server announces changes this store has not pulled,
    ``on_state(connected)`` when the stream comes up or goes down (both on its thread).
    It reconnects by itself (backoff with jitter) and stops when the device is revoked."""
    from client_sdk import LiveSubscription, SyncClient

    if not isinstance(client, SyncClient):
        raise TypeError("live pokes need the SDK's SyncClient")
    live = LiveSubscription(client, on_poke, base_url=server_url, on_state=on_state)
    live.start()
    return live


def sdk_attachments(store: StorePort, max_bytes: int = PHOTO_MAX_BYTES) -> AttachmentsPort:
    """The SDK's encrypted attachment storage beside ``store`` (a ``client_sdk.Store``).

    Raises ``TypeError`` for any other store (there is nowhere to keep the bytes).
    """
    from client_sdk import Store
    from client_sdk.attachments import Attachments

    if not isinstance(store, Store):
        raise TypeError("photos need a client_sdk.Store")
    attachments: AttachmentsPort = Attachments(store, max_bytes=max_bytes)
    return attachments


def sdk_uploads(
    attachments: AttachmentsPort,
    client: SyncClientPort | None,
    transport: Any = None,
    *,
    interval_s: float = 30.0,
) -> UploadsPort | None:
    """A ``BackgroundUploads`` thread for the photos, beside (never inside) record sync.

    It shares the sync client's HTTP connection and tokens; ``None`` when the client is
    not an HTTP ``SyncClient`` (the demo's in-process fake server has no attachment
    endpoints) and no ``transport`` was given.
    """
    from client_sdk import SyncClient
    from client_sdk.attachments import Attachments, AttachmentUploader, BackgroundUploads

    if not isinstance(attachments, Attachments) or not isinstance(client, SyncClient):
        return None
    try:
        uploader = AttachmentUploader(attachments, client, transport=transport)
    except TypeError:
        return None
    uploads: UploadsPort = BackgroundUploads(uploader, interval_s=interval_s)
    return uploads


@dataclass
class Account:
    """The non-secret facts about who uses this phone (``account.json``)."""

    server_url: str
    username: str
    user_id: str = ""
    display_name: str = ""
    role: str = "rep"
    language: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def user(self) -> CurrentUser:
        return CurrentUser(
            id=self.user_id or self.username,
            username=self.username,
            display_name=self.display_name or self.username,
            role=self.role,
        )


class AccountFiles:
    """Where the store and ``account.json`` live (one directory per installation)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)

    @property
    def store_path(self) -> Path:
        return self.data_dir / STORE_FILE

    @property
    def account_path(self) -> Path:
        return self.data_dir / ACCOUNT_FILE

    def load(self) -> Account | None:
        try:
            data = json.loads(self.account_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or "server_url" not in data or "username" not in data:
            return None
        known = {k: v for k, v in data.items() if k in Account.__dataclass_fields__}
        return Account(**known)

    def save(self, account: Account) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.account_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(account), ensure_ascii=False, indent=2), "utf-8")
        tmp.replace(self.account_path)

    def set_aside(self) -> Path | None:
        """Move an existing store (no account.json names it) into ``kept-<time>/`` instead
        of deleting it: it may hold someone's unsent work. The folder it went to, if any."""
        found = [p for p in self.data_dir.glob(STORE_FILE + "*") if p.exists()]
        if not found:
            return None
        from datetime import datetime

        folder = self.data_dir / f"kept-{datetime.now().strftime('%Y%m%d-%H%M%S-%f')}"
        folder.mkdir(parents=True)
        for path in found:
            path.replace(folder / path.name)
        return folder

    def forget(self) -> None:
        """Remove the account and every store file (log out, failed first run)."""
        self.account_path.unlink(missing_ok=True)
        for path in self.data_dir.glob(STORE_FILE + "*"):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def user_from_login(result: Any, username: str) -> CurrentUser:
    """The signed-in user from whatever ``SyncClient.login`` returns.

    The SDK returns the server's ``TokenResponse`` (with ``.user``) or the ``UserInfo``
    itself; either way id, username, display name and role are read from it.
    """
    info = getattr(result, "user", result)
    if isinstance(info, dict):
        get: Callable[[str], Any] = info.get
    else:

        def get(name: str) -> Any:
            return getattr(info, name, None)

    return CurrentUser(
        id=str(get("id") or username),
        username=str(get("username") or username),
        display_name=str(get("display_name") or username),
        role=str(get("role") or "rep"),
    )


def classify_login_error(exc: BaseException) -> str:
    """One of ``totp_required``, ``credentials``, ``totp``, ``revoked``, ``network``."""
    code, _message, _details = error_parts(exc)
    name = type(exc).__name__
    if code == "totp_required":
        return "totp_required"
    if code == "device_revoked" or name == "DeviceRevoked":
        return "revoked"
    if code in ("unauthorized", "token_expired") or name == "AuthError":
        return "credentials"
    return "network"


class FirstRunViewModel(Observable):
    """Server, username, password, optional one-time code, and the new passphrase."""

    def __init__(self, backend: Backend, files: AccountFiles, tr: Translator) -> None:
        super().__init__()
        self.backend = backend
        self.files = files
        self.tr = tr
        self.server_url = "http://127.0.0.1:8000"
        self.username = ""
        self.password = ""
        self.totp = ""
        self.passphrase = ""
        self.passphrase_again = ""
        self.needs_totp = False
        self.error = ""
        self.busy = False

    def _check(self) -> str:
        tr = self.tr
        if not self.server_url.startswith(("http://", "https://")):
            return tr("login.err.url")
        for value, key in (
            (self.username, "login.username"),
            (self.password, "login.password"),
            (self.passphrase, "login.passphrase"),
        ):
            if not value.strip():
                return tr("login.err.missing", what=tr(key))
        if self.needs_totp and not self.totp.strip():
            return tr("login.err.missing", what=tr("login.totp"))
        if len(self.passphrase) < MIN_PASSPHRASE:
            return tr("login.err.short", n=MIN_PASSPHRASE)
        if self.passphrase != self.passphrase_again:
            return tr("login.err.mismatch")
        return ""

    def submit(self) -> Session | None:
        """Create the store and log in; the session on success, else ``None`` + ``error``."""
        self.error = self._check()
        if self.error:
            self.notify()
            return None
        self.busy = True
        self.notify()
        url = self.server_url.strip().rstrip("/")
        # a store no account names (account.json lost): kept aside, never deleted
        self.files.set_aside()
        self.files.data_dir.mkdir(parents=True, exist_ok=True)
        store = self.backend.open_store(self.files.store_path, self.passphrase)
        try:
            client = self.backend.make_client(store, url)
            result = client.login(
                self.username.strip(),
                self.password,
                totp=self.totp.strip() or None,
                device_name=self.backend.device_name,
            )
        except Exception as exc:
            store.close()
            self.files.forget()
            self._login_failed(exc)
            return None
        finally:
            self.busy = False
        user = user_from_login(result, self.username.strip())
        self.files.save(
            Account(
                server_url=url,
                username=user.username,
                user_id=user.id,
                display_name=user.display_name,
                role=user.role,
                language=self.tr.language,
            )
        )
        self.password = ""
        self.notify()
        return Session(store=store, user=user, tr=self.tr, client=client, server_url=url)

    def _login_failed(self, exc: BaseException) -> None:
        kind = classify_login_error(exc)
        if kind == "totp_required":
            already = self.needs_totp and bool(self.totp.strip())
            self.needs_totp = True
            self.error = self.tr("login.err.totp" if already else "login.totp_needed")
        elif kind == "credentials":
            self.error = self.tr("login.err.totp" if self.totp.strip() else "login.err.credentials")
        elif kind == "revoked":
            self.error = self.tr("login.err.revoked")
        else:
            self.error = self.tr("login.err.network", reason=str(exc) or type(exc).__name__)
        self.notify()


class UnlockViewModel(Observable):
    """Later starts: the passphrase opens the store; no network needed."""

    def __init__(
        self, backend: Backend, files: AccountFiles, account: Account, tr: Translator
    ) -> None:
        super().__init__()
        self.backend = backend
        self.files = files
        self.account = account
        self.tr = tr
        self.passphrase = ""
        self.error = ""

    @property
    def greeting(self) -> str:
        return self.tr("unlock.hello", user=self.account.display_name or self.account.username)

    def submit(self) -> Session | None:
        if not self.passphrase:
            self.error = self.tr("login.err.missing", what=self.tr("unlock.passphrase"))
            self.notify()
            return None
        try:
            store = self.backend.open_store(self.files.store_path, self.passphrase)
        except Exception as exc:
            name = type(exc).__name__
            self.error = self.tr(
                "unlock.err.tampered" if name == "TamperedData" else "unlock.err.wrong"
            )
            self.passphrase = ""
            self.notify()
            return None
        client = self.backend.make_client(store, self.account.server_url)
        self.error = ""
        self.passphrase = ""
        self.notify()
        return Session(
            store=store,
            user=self.account.user(),
            tr=self.tr,
            client=client,
            server_url=self.account.server_url,
        )


def account_language(account: Account | None) -> Language | None:
    if account and account.language in ("zh", "en"):
        return "zh" if account.language == "zh" else "en"
    return None


class InitialSyncViewModel(Observable):
    """The first pull after sign-in, with a progress fraction for the bar.

    Progress comes from the store's ``SyncProgress`` events (records received so far and
    the server's estimate of what remains). ``run`` blocks; the screen calls it from a
    worker thread and re-reads ``fraction``/``message`` on every notification.
    """

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.received = 0
        self.total = 0
        self.done = False
        self.failed = ""
        self.message = session.tr("initial.title")

    @property
    def fraction(self) -> float:
        if self.done:
            return 1.0
        if self.total <= 0:
            return 0.0
        return min(0.99, self.received / self.total)

    def on_event(self, event: Any) -> None:
        if getattr(event, "phase", "pull") != "pull":
            return  # pushing the (few) first-run writes: the bar is about the download
        received = _first_int(event, ("received", "pulled", "done", "changes_received"))
        remaining = _first_int(event, ("remaining",))
        total = _first_int(event, ("total", "estimated_total"))
        if received is None:
            return
        self.received = received
        if total is not None:
            self.total = max(total, received)
        elif remaining is not None:
            self.total = received + remaining
        self.message = self.session.tr(
            "initial.progress", done=self.received, total=max(self.total, self.received)
        )
        self.notify()

    def run(self) -> bool:
        client = self.session.client
        unsubscribe = self.session.store.subscribe(self.on_event)
        try:
            if client is None:
                raise RuntimeError("no sync client")
            client.sync()
        except Exception as exc:
            self.failed = self.session.tr("initial.failed", reason=str(exc) or type(exc).__name__)
            self.message = self.failed
            self.notify()
            return False
        finally:
            unsubscribe()
        self.done = True
        count = sum(
            self.session.store.collection(name).count()
            for name in ("customers", "contacts", "opportunities", "activities", "tasks")
        )
        self.message = self.session.tr("initial.done", n=count)
        self.notify()
        preload_search(self.session.store)  # still off the UI thread; the user goes on
        return True


def preload_search(store: StorePort) -> bool:
    """Build the store's search indexes after a sync, so the rep's first search does not
    pause to build them (~1.6 s for 10,000 customers with the pinyin hook). Call it on a
    worker thread: it holds the store's lock only briefly, so the UI reads and writes
    meanwhile. A failure (the store closed under it) only means the first search builds
    the index instead. Returns whether the indexes are ready."""
    try:
        store.preload()
    except Exception as exc:  # closed or locked store: nothing lost
        log.info("search index not built after the sync: %s", type(exc).__name__)
        return False
    return True


def _first_int(obj: Any, names: tuple[str, ...]) -> int | None:
    for name in names:
        value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


class ReloginViewModel(Observable):
    """Sign in online again on the same store: after the offline lease ran out
    (``StoreLocked``) or the device was revoked without a wipe. Nothing local is lost:
    the same user's login keeps the store, its unsent work and its photos."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.password = ""
        self.totp = ""
        self.needs_totp = False
        self.error = ""

    @property
    def greeting(self) -> str:
        user = self.session.user
        return self.session.tr("unlock.hello", user=user.display_name or user.username)

    def submit(self) -> bool:
        tr = self.session.tr
        client = self.session.client
        if not self.password:
            self.error = tr("login.err.missing", what=tr("login.password"))
            self.notify()
            return False
        try:
            if client is None:
                raise RuntimeError("no server")
            client.login(
                self.session.user.username,
                self.password,
                totp=self.totp.strip() or None,
            )
        except Exception as exc:
            kind = classify_login_error(exc)
            if kind == "totp_required":
                self.needs_totp = True
            self.error = {
                "totp_required": tr("login.totp_needed"),
                "credentials": tr("login.err.credentials"),
                "revoked": tr("login.err.revoked"),
            }.get(kind) or tr("login.err.network", reason=str(exc) or type(exc).__name__)
            self.password = ""
            self.notify()
            return False
        self.password = self.error = ""
        self.notify()
        return True
