"""Download on demand: what the server has for a record, thumbnails, whole files.

Another device's photos are known only by metadata until someone looks: the list shows
them (``remote``), a thumbnail comes down when the row is drawn, the whole file when it
is opened. Downloaded bytes are verified against the SHA-256 and kept like captured
ones — sealed chunk files — so a second open is offline and nothing lands in plaintext.
Every request carries the same scope rules as records (``403 forbidden`` otherwise).
"""

from __future__ import annotations

import hashlib

from .._errors import TamperedData
from .._store import Store
from .._sync import SyncClient
from .._transports import Transport
from ._api import AttachmentApi
from ._attachments import Attachments
from ._models import AttachmentInfo, AttachmentState


class AttachmentDownloader:
    def __init__(
        self,
        attachments: Attachments | Store,
        client: SyncClient,
        transport: Transport | None = None,
        *,
        max_attempts: int | None = None,
    ) -> None:
        self.attachments = (
            attachments if isinstance(attachments, Attachments) else Attachments(attachments)
        )
        self.api = AttachmentApi(client, transport, max_attempts=max_attempts)

    def refresh(self, record_id: str, collection: str | None = None) -> list[AttachmentInfo]:
        """Ask the server for the record's attachments and remember them locally."""
        params = {"record_id": record_id}
        if collection is not None:
            params["collection"] = collection
        listed = self.api.attachments(self.api.call("GET", "/v1/attachments", params=params))
        for server in listed:
            self.attachments.remember_remote(server)
        return self.attachments.list(record_id, collection)

    def thumbnail(self, attachment_id: str, size: int = 256) -> bytes:
        """A JPEG preview (longer edge ``size`` px), cached encrypted on the device."""
        tag = f"t{size}-"
        vault = self.attachments.vault
        if vault.has(attachment_id, 0, tag=tag):
            return vault.read(attachment_id, 0, tag=tag)
        data = self.api.call(
            "GET", f"/v1/attachments/{attachment_id}/thumbnail", params={"size": str(size)}
        ).content
        vault.write(attachment_id, 0, data, tag=tag)
        return data

    def fetch(self, attachment_id: str) -> bytes:
        """The whole file: from the device when present, else downloaded and verified."""
        info = self.attachments.status(attachment_id)
        if info.local:
            return self.attachments.open(attachment_id)
        response = self.api.call("GET", f"/v1/attachments/{attachment_id}/content")
        data = response.content
        if len(data) != info.size or hashlib.sha256(data).hexdigest() != info.sha256:
            raise TamperedData("the downloaded attachment does not match its SHA-256")
        chunk_size = self.attachments.chunk_size_of(attachment_id)
        vault = self.attachments.vault
        for index, start in enumerate(range(0, max(1, len(data)), chunk_size)):
            vault.write(attachment_id, index, data[start : start + chunk_size])
        state = AttachmentState.COMPLETE if info.state is AttachmentState.REMOTE else info.state
        self.attachments.update(attachment_id, local=True, state=state)
        return data

    def close(self) -> None:
        self.api.close()
