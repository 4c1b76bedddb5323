"""Attachment settings (``FIELDSYNC_ATTACHMENTS_*``), kept apart from the core
:class:`server.settings.Settings` so the feature can be configured (and removed) on its
own. Like the core settings they are built once and handed to the service."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

KIB = 1024
MIB = 1024 * KIB


class AttachmentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FIELDSYNC_ATTACHMENTS_", extra="ignore")

    #: ``local`` (files under ``dir``) or ``memory`` (tests; lost on restart).
    backend: Literal["local", "memory"] = "local"
    dir: Path = Path("./var/attachments")
    #: Largest attachment accepted (413 ``payload_too_large`` above it).
    max_bytes: int = Field(default=50 * MIB, ge=1)
    #: Chunk sizes a device may announce; every chunk but the last has exactly that size.
    min_chunk_bytes: int = Field(default=16 * KIB, ge=1)
    max_chunk_bytes: int = Field(default=4 * MIB, ge=1)
    #: fsync blobs and chunks before answering (off only for throwaway test servers).
    fsync: bool = True
    #: Largest thumbnail edge served, in pixels.
    max_thumbnail_px: int = Field(default=1024, ge=16)
    #: Thumbnails kept in memory (an LRU keyed by content and size).
    thumbnail_cache_entries: int = Field(default=256, ge=0)

    @model_validator(mode="after")
    def _chunk_bounds(self) -> AttachmentSettings:
        if self.min_chunk_bytes > self.max_chunk_bytes:
            raise ValueError("min_chunk_bytes must not exceed max_chunk_bytes")
        return self
