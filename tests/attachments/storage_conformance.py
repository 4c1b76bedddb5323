"""The contract every blob storage backend honours (Kinto-style conformance suite).

A backend's test module subclasses :class:`BlobStorageConformance` and provides a
``storage`` fixture; every test here then runs against it. An S3-compatible backend
joins by doing the same.
"""

from __future__ import annotations

import hashlib
import threading

import pytest

from server.attachments.storage import BlobStorage, DigestMismatch, MissingChunks


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStorageConformance:
    @pytest.fixture
    def storage(self) -> BlobStorage:
        raise NotImplementedError

    def test_put_get_exists_size_delete(self, storage: BlobStorage) -> None:
        data = b"shelf photo" * 1000
        d = digest_of(data)
        assert not storage.exists(d)
        assert storage.size(d) is None
        assert storage.put(d, data) is True
        assert storage.exists(d)
        assert storage.size(d) == len(data)
        assert storage.get(d) == data
        assert b"".join(storage.stream(d)) == data
        assert list(storage.digests()) == [d]
        assert storage.delete(d) is True
        assert not storage.exists(d)
        assert storage.delete(d) is False

    def test_put_is_content_addressed_and_deduplicated(self, storage: BlobStorage) -> None:
        data = b"same bytes"
        assert storage.put(digest_of(data), data) is True
        assert storage.put(digest_of(data), data) is False
        assert list(storage.digests()) == [digest_of(data)]

    def test_put_refuses_a_wrong_digest(self, storage: BlobStorage) -> None:
        with pytest.raises(DigestMismatch):
            storage.put(digest_of(b"a"), b"b")
        assert not storage.exists(digest_of(b"a"))

    def test_missing_blob_raises_key_error(self, storage: BlobStorage) -> None:
        with pytest.raises(KeyError):
            storage.get(digest_of(b"nothing"))

    def test_invalid_names_are_refused(self, storage: BlobStorage) -> None:
        with pytest.raises(ValueError):
            storage.exists("../../etc/passwd")
        with pytest.raises(ValueError):
            storage.stage_chunk("../escape", 0, b"x")

    def test_staged_chunks_commit_into_a_verified_blob(self, storage: BlobStorage) -> None:
        data = bytes(range(256)) * 50
        parts = [data[i : i + 1000] for i in range(0, len(data), 1000)]
        for index in reversed(range(len(parts))):  # arrival order does not matter
            storage.stage_chunk("up-1", index, parts[index])
        storage.stage_chunk("up-1", 3, parts[3])  # a resent chunk replaces the old copy
        assert storage.staged_chunks("up-1") == {i: len(p) for i, p in enumerate(parts)}
        assert storage.commit_staged("up-1", len(parts), digest_of(data)) is True
        assert storage.get(digest_of(data)) == data
        assert storage.staged_chunks("up-1") == {}

    def test_commit_with_missing_chunks_keeps_what_arrived(self, storage: BlobStorage) -> None:
        storage.stage_chunk("up-2", 0, b"a")
        storage.stage_chunk("up-2", 2, b"c")
        with pytest.raises(MissingChunks) as info:
            storage.commit_staged("up-2", 3, digest_of(b"abc"))
        assert info.value.missing == [1]
        assert storage.staged_chunks("up-2") == {0: 1, 2: 1}

    def test_commit_with_a_wrong_digest_publishes_nothing(self, storage: BlobStorage) -> None:
        storage.stage_chunk("up-3", 0, b"evil")
        with pytest.raises(DigestMismatch):
            storage.commit_staged("up-3", 1, digest_of(b"good"))
        assert not storage.exists(digest_of(b"good"))
        assert not storage.exists(digest_of(b"evil"))
        assert storage.staged_chunks("up-3") == {}

    def test_commit_of_known_content_is_deduplicated(self, storage: BlobStorage) -> None:
        data = b"twice"
        storage.put(digest_of(data), data)
        storage.stage_chunk("up-4", 0, data)
        assert storage.commit_staged("up-4", 1, digest_of(data)) is False
        assert list(storage.digests()) == [digest_of(data)]
        assert storage.staged_chunks("up-4") == {}

    def test_discard_staged(self, storage: BlobStorage) -> None:
        storage.stage_chunk("up-5", 0, b"x")
        storage.discard_staged("up-5")
        storage.discard_staged("never-staged")
        assert storage.staged_chunks("up-5") == {}

    def test_empty_blob(self, storage: BlobStorage) -> None:
        storage.stage_chunk("up-6", 0, b"")
        assert storage.commit_staged("up-6", 1, digest_of(b"")) is True
        assert storage.get(digest_of(b"")) == b""

    def test_concurrent_commits_of_the_same_content_store_one_blob(
        self, storage: BlobStorage
    ) -> None:
        data = b"concurrent" * 10_000
        for n in range(4):
            storage.stage_chunk(f"c-{n}", 0, data)
        errors: list[BaseException] = []

        def commit(n: int) -> None:
            try:
                storage.commit_staged(f"c-{n}", 1, digest_of(data))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=commit, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert list(storage.digests()) == [digest_of(data)]
        assert storage.get(digest_of(data)) == data
