"""Both local store implementations pass the one conformance suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from client_sdk._local.base import LocalStore
from client_sdk._local.crypto import AesGcmCipher, new_data_key
from client_sdk._local.memory import MemoryLocalStore
from client_sdk._local.sqlite import SqliteLocalStore

from .local_conformance import LocalStoreConformance


class TestSqliteLocalStore(LocalStoreConformance):
    @pytest.fixture
    def local(self, tmp_path: Path) -> Iterator[LocalStore]:
        store = SqliteLocalStore(tmp_path / "local.db")
        with store.transaction():
            store.create()
        store.use_cipher(AesGcmCipher(new_data_key()))
        yield store
        store.close()


class TestMemoryLocalStore(LocalStoreConformance):
    @pytest.fixture
    def local(self) -> LocalStore:
        store = MemoryLocalStore()
        store.create()
        return store
