"""Fieldsync client SDK: an encrypted offline-first store that syncs with a Fieldsync server.

Works with any entity schema declared through :mod:`sync_protocol`::

    store = Store.open("app.db", passphrase, schema=MY_SCHEMA)
    notes = store.collection("notes")
    note = notes.insert({"title": "Boiler check"})        # on disk, encrypted, queued
    client = SyncClient(store, HttpTransport("https://sync.example.com"))
    client.login("alice", "secret")
    client.sync()                                         # push, then pull

See ``docs/sdk.md`` for the tutorial and the reference.
"""

from sync_protocol import ValidationFailed

from ._background import BackgroundSync
from ._clock import Clock, ManualClock, SystemClock
from ._collection import Collection
from ._config import SyncConfig
from ._errors import (
    AuthError,
    DeviceRevoked,
    NetworkError,
    NotAllowed,
    RecordNotFound,
    SDKError,
    ServerError,
    StorageFull,
    StoreClosed,
    StoreCorrupted,
    StoreError,
    StoreLocked,
    SyncError,
    TamperedData,
    UpgradeRequired,
    WouldLoseWork,
    WrongPassphrase,
)
from ._events import ConflictsChanged, Event, RecordsChanged, StatusChanged, StoreWiped
from ._live import LiveSubscription, subscribe
from ._local.crypto import FAST_KDF, KdfParams, KeyProvider, PassphraseKeyProvider
from ._local.recovery import RecoveryReport
from ._models import Conflict, DeadLetter, Record
from ._status import SyncProgress, SyncReport, SyncStatus, UnsentWork
from ._store import Store
from ._sync import SyncClient
from ._transports import (
    HttpTransport,
    MockTransport,
    Transport,
    TransportRequest,
    TransportResponse,
)
from .attachments import (
    AttachmentDownloader,
    AttachmentInfo,
    Attachments,
    AttachmentState,
    AttachmentTooLarge,
    AttachmentUploader,
)

__all__ = [
    "FAST_KDF",
    "AuthError",
    "BackgroundSync",
    "Clock",
    "Collection",
    "Conflict",
    "ConflictsChanged",
    "DeadLetter",
    "DeviceRevoked",
    "Event",
    "HttpTransport",
    "KdfParams",
    "KeyProvider",
    "LiveSubscription",
    "ManualClock",
    "MockTransport",
    "NetworkError",
    "NotAllowed",
    "PassphraseKeyProvider",
    "Record",
    "RecordNotFound",
    "RecordsChanged",
    "RecoveryReport",
    "SDKError",
    "ServerError",
    "StatusChanged",
    "StorageFull",
    "Store",
    "StoreClosed",
    "StoreCorrupted",
    "StoreError",
    "StoreLocked",
    "StoreWiped",
    "SyncClient",
    "SyncConfig",
    "SyncError",
    "SyncProgress",
    "SyncReport",
    "SyncStatus",
    "SystemClock",
    "TamperedData",
    "Transport",
    "TransportRequest",
    "TransportResponse",
    "UnsentWork",
    "UpgradeRequired",
    "ValidationFailed",
    "WouldLoseWork",
    "WrongPassphrase",
    "subscribe",
]
# attachments (docs/attachments.md)
__all__ += [
    "AttachmentDownloader",
    "AttachmentInfo",
    "AttachmentState",
    "AttachmentTooLarge",
    "AttachmentUploader",
    "Attachments",
]
