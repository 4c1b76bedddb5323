"""Errors raised by the client SDK.

Hierarchy::

    SDKError                        anything the SDK raises on purpose
    ├── StoreError                  the local encrypted store
    │   ├── WrongPassphrase         the passphrase does not unwrap the data key
    │   ├── TamperedData            a ciphertext failed authentication (edited or swapped)
    │   ├── StoreCorrupted          the file is not a Fieldsync store / unreadable SQLite
    │   ├── StorageFull             the disk is full: the write was not saved
    │   ├── StoreClosed             the store was closed or wiped
    │   ├── StoreLocked             offline past the lease: sign in online to unlock
    │   ├── WouldLoseWork           wipe/sign-in refused: unsent work (``.work`` says what)
    │   ├── RecordNotFound          no such record (also a ``KeyError``)
    │   └── NotAllowed              the schema forbids the write (append-only entity, ...)
    └── SyncError                   talking to the server (carries ``code`` and ``details``)
        ├── NetworkError            no answer (offline, timeout, DNS); retried with backoff
        ├── ServerError             the server answered with an error body
        │   ├── AuthError           401: not logged in, bad credentials, refresh refused
        │   │   └── DeviceRevoked   device_revoked: syncing stopped (``.wiped``: erased too)
        │   └── UpgradeRequired     schema_too_old / protocol_unsupported: update the app
        └── (codes from ``sync_protocol.ErrorCode``: ``code`` says which)

A write that breaks its entity schema raises :class:`sync_protocol.ValidationFailed`
(with ``errors``, one :class:`sync_protocol.FieldError` per field), the same class the
server uses, so an app renders local and server validation messages the same way.

Messages never contain passphrases, keys, tokens or record values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._status import UnsentWork


class SDKError(Exception):
    """Base of every error the SDK raises on purpose."""


class StoreError(SDKError):
    """The local store cannot do what was asked."""


class WrongPassphrase(StoreError):
    """The passphrase (or key provider) does not unwrap this store's data key."""


class TamperedData(StoreError):
    """A stored ciphertext failed authentication: it was modified or moved to another row."""


class StoreCorrupted(StoreError):
    """The file is not a readable Fieldsync store."""


class StorageFull(StoreError):
    """The device's disk is full: the write was not saved (and was not acknowledged).

    SQLite rolled the transaction back; the store stays consistent and opens again once
    space is freed."""


class StoreClosed(StoreError):
    """The store was closed or wiped; open it again."""


class StoreLocked(StoreError):
    """The device has not reached the server for longer than the offline lease the server
    set (``SyncLimits.offline_lease_days``): records cannot be read or written until a
    sync or sign-in succeeds online. Status and the unsent-work summary still answer."""


class WouldLoseWork(StoreError):
    """A destructive call (``Store.wipe``, signing in as another user) was refused
    because it would discard unsent work; ``work`` says what. Show it, offer
    ``Store.export_unsent``, and call again with ``force=True`` if the user agrees."""

    def __init__(self, message: str, work: UnsentWork) -> None:
        super().__init__(message)
        self.work = work


class RecordNotFound(StoreError, KeyError):
    """No record (or conflict, or dead letter) with that id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class NotAllowed(StoreError):
    """The entity schema forbids this write (update or delete of an append-only entity)."""


class SyncError(SDKError):
    """A sync step failed. ``code`` is a stable :class:`sync_protocol.ErrorCode` value."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "sync_failed",
        status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.details = details or {}


class NetworkError(SyncError):
    """The server could not be reached (after the configured retries)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="network_error")


class ServerError(SyncError):
    """The server answered with an error body ``{"error": {code, message, details}}``."""


class UpgradeRequired(ServerError):
    """The server no longer serves this app's schema (``schema_too_old``: older than its
    ``min_schema_version``) or protocol (``protocol_unsupported``): nothing was synced and
    the local data is untouched; the user must update the app."""


class AuthError(ServerError):
    """Authentication failed: log in again."""


class DeviceRevoked(AuthError):
    """An administrator revoked this device: it stops syncing.

    ``wiped`` is true when the administrator also asked for a wipe (``details.wipe``)
    and the store was erased; otherwise every unsent write stays readable and
    exportable (``Store.unsent_work``, ``Store.export_unsent``) and syncing resumes
    only after a successful ``SyncClient.login``."""

    @property
    def wiped(self) -> bool:
        return bool(self.details.get("wipe"))
