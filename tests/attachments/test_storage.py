"""The blob storage backends run the conformance suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.attachments import LocalBlobStorage, MemoryBlobStorage
from server.attachments.storage import BlobStorage
from tests.attachments.storage_conformance import BlobStorageConformance, digest_of


class TestMemoryBlobStorage(BlobStorageConformance):
    @pytest.fixture
    def storage(self) -> BlobStorage:
        return MemoryBlobStorage()


class TestLocalBlobStorage(BlobStorageConformance):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> BlobStorage:
        return LocalBlobStorage(tmp_path / "attachments")

    def test_staged_chunks_survive_a_new_instance(self, tmp_path: Path) -> None:
        """A server restart resumes uploads: staging is on disk."""
        first = LocalBlobStorage(tmp_path / "a")
        first.stage_chunk("up", 0, b"abc")
        second = LocalBlobStorage(tmp_path / "a")
        assert second.staged_chunks("up") == {0: 3}
        assert second.commit_staged("up", 1, digest_of(b"abc")) is True
        assert (tmp_path / "a" / "blobs" / digest_of(b"abc")[:2] / digest_of(b"abc")).is_file()

    def test_no_temporary_files_are_left_behind(self, tmp_path: Path) -> None:
        storage = LocalBlobStorage(tmp_path / "a")
        storage.stage_chunk("up", 0, b"abc")
        storage.commit_staged("up", 1, digest_of(b"abc"))
        assert list((tmp_path / "a" / "tmp").iterdir()) == []
