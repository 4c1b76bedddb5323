"""The data-access seam: what the view-models need from the client SDK, as Protocols.

The view-models are written against these small structural types rather than the SDK's
concrete classes, for two reasons: the list of calls the app makes is visible in one
place (when the SDK changes, this file says what the app depends on), and mypy checks
that the real ``client_sdk.Store`` / ``SyncClient`` satisfy them wherever the app wires
them up (``mobile_app.viewmodels.account``). Tests still run against a real store in a
temporary directory, never a stand-in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol


class RecordPort(Protocol):
    """A record as the store returns it (``client_sdk.Record``)."""

    @property
    def id(self) -> str: ...

    @property
    def collection(self) -> str: ...

    @property
    def fields(self) -> Mapping[str, Any]: ...

    @property
    def pending(self) -> bool: ...


class CollectionPort(Protocol):
    def insert(self, fields: dict[str, Any], *, id: str | None = None) -> RecordPort: ...

    def update(self, record_id: str, fields: dict[str, Any]) -> RecordPort: ...

    def delete(self, record_id: str) -> None: ...

    def all(self) -> Sequence[RecordPort]: ...

    def get(self, record_id: str) -> RecordPort | None: ...

    def query(
        self,
        where: dict[str, Any] | Callable[[Any], bool] | None = None,
        search: str | None = None,
        order_by: str | Callable[[Any], Any] | None = None,
        descending: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> Sequence[RecordPort]: ...

    def count(self, where: dict[str, Any] | Callable[[Any], bool] | None = None) -> int: ...


class SyncStatusPort(Protocol):
    @property
    def online(self) -> bool: ...

    @property
    def pending_total(self) -> int: ...

    @property
    def last_sync_at(self) -> Any: ...

    @property
    def last_error(self) -> Any: ...

    @property
    def clock_warning(self) -> Any: ...

    @property
    def open_conflicts(self) -> int: ...

    @property
    def dead_letters(self) -> int: ...


class ConflictPort(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def collection(self) -> str: ...

    @property
    def record_id(self) -> str: ...

    @property
    def field(self) -> str: ...

    @property
    def base(self) -> Any: ...

    @property
    def local(self) -> Any: ...

    @property
    def remote(self) -> Any: ...


class DeadLetterPort(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def collection(self) -> str: ...

    @property
    def record_id(self) -> str: ...

    @property
    def op(self) -> str: ...

    @property
    def fields(self) -> Mapping[str, Any]: ...

    @property
    def error(self) -> Any: ...

    @property
    def group(self) -> str | None: ...


class StorePort(Protocol):
    def collection(self, name: str) -> CollectionPort: ...

    def status(self) -> SyncStatusPort: ...

    def conflicts(self) -> Sequence[ConflictPort]: ...

    def resolve_conflict(self, conflict_id: str, choice: str, value: Any = None) -> Any: ...

    def dead_letters(self) -> Sequence[DeadLetterPort]: ...

    def retry_dead_letter(
        self,
        dead_letter_id: str,
        fields: dict[str, Any] | None = None,
        *,
        override: Sequence[str] | None = None,
    ) -> Any: ...

    def discard_dead_letter(self, dead_letter_id: str) -> Any: ...

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]: ...

    def group(self) -> AbstractContextManager[str]: ...

    def change_passphrase(self, old: str, new: str) -> Any: ...

    def preload(self) -> Any:
        """Build the search indexes now (slow; never on the UI thread)."""
        ...

    def wipe(self, *, force: bool = False) -> Any: ...

    def close(self) -> Any: ...


class SyncClientPort(Protocol):
    def login(
        self,
        username: str,
        password: str,
        totp: str | None = None,
        device_name: str | None = None,
    ) -> Any: ...

    def sync(self) -> Any: ...

    def logout(self) -> Any: ...


class AttachmentInfoPort(Protocol):
    """One attachment as the SDK reports it (``client_sdk.attachments.AttachmentInfo``)."""

    @property
    def id(self) -> str: ...

    @property
    def record_id(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def state(self) -> str: ...

    @property
    def uploaded_bytes(self) -> int: ...

    @property
    def name(self) -> str | None: ...

    @property
    def captured_at(self) -> str | None: ...

    @property
    def location(self) -> dict[str, float] | None: ...

    @property
    def error(self) -> dict[str, Any] | None: ...


class AttachmentsPort(Protocol):
    """Photos kept encrypted on the phone (``client_sdk.attachments.Attachments``)."""

    @property
    def max_bytes(self) -> int: ...

    def add(
        self,
        collection: str,
        record_id: str,
        source: str,
        kind: str = "photo",
        mime: str = "image/jpeg",
        *,
        location: dict[str, float] | None = None,
        captured_at: datetime | str | None = None,
        name: str | None = None,
    ) -> AttachmentInfoPort: ...

    def list(
        self, record_id: str, collection: str | None = None
    ) -> Sequence[AttachmentInfoPort]: ...

    def retry(self, attachment_id: str) -> AttachmentInfoPort: ...

    def counts(self) -> dict[str, int]: ...

    def wipe(self) -> None: ...


class UploadsPort(Protocol):
    """The upload runner (``client_sdk.attachments.BackgroundUploads``)."""

    @property
    def running(self) -> bool: ...

    def start(self) -> None: ...

    def trigger(self) -> None: ...

    def stop(self, timeout_s: float | None = 10.0) -> None: ...


class LivePort(Protocol):
    """The server's live pokes while online (``client_sdk.LiveSubscription``)."""

    @property
    def connected(self) -> bool: ...

    @property
    def pokes(self) -> int: ...

    def stop(self, timeout_s: float = 5.0) -> None: ...


#: ``subscribe(client, server_url, on_poke, on_state)``: a started :class:`LivePort`.
#: ``on_poke()`` and ``on_state(connected)`` are called on the subscription's thread.
SubscribeLive = Callable[
    [SyncClientPort, str, Callable[[], None], Callable[[bool], None]], LivePort
]
