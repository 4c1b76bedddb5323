"""Photos and files attached to records: metadata in the ``attachments`` table, bytes in
content-addressed blob storage, uploaded in resumable chunks (see ``docs/attachments.md``).

``install_attachments(app)`` mounts ``/v1/attachments`` on an app built by
:func:`server.app.create_app` and hangs the :class:`AttachmentService` on
``app.state.attachments``.
"""

from __future__ import annotations

from fastapi import FastAPI

from .local import LocalBlobStorage
from .service import AttachmentService
from .settings import AttachmentSettings
from .storage import BlobStorage, MemoryBlobStorage
from .thumbnails import ThumbnailMaker


def make_storage(settings: AttachmentSettings) -> BlobStorage:
    if settings.backend == "memory":
        return MemoryBlobStorage()
    return LocalBlobStorage(settings.dir, fsync=settings.fsync)


def install_attachments(app: FastAPI, settings: AttachmentSettings | None = None) -> None:
    """Mount the routes and build the service (settings from ``FIELDSYNC_ATTACHMENTS_*``)."""
    from .routes import router

    settings = settings or AttachmentSettings()
    context = app.state.fieldsync
    app.state.attachments = AttachmentService(
        settings=settings,
        storage=make_storage(settings),
        schema=context.schema,
        thumbnails=ThumbnailMaker(settings.thumbnail_cache_entries),
    )
    app.include_router(router)


__all__ = [
    "AttachmentService",
    "AttachmentSettings",
    "BlobStorage",
    "LocalBlobStorage",
    "MemoryBlobStorage",
    "install_attachments",
    "make_storage",
]
