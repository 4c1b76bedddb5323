"""The public surface is what docs/sdk.md documents — no more, no less.

``client_sdk.__all__`` equals the names the API reference lists, and the public
attributes of the three faces (``Store``, ``Collection``, ``SyncClient``) equal the
methods and properties their reference tables name.
"""

from __future__ import annotations

import re
from pathlib import Path

import client_sdk
from client_sdk import (
    FAST_KDF,
    Collection,
    MockTransport,
    Store,
    SyncClient,
    TransportResponse,
)
from sync_protocol import CRM_SCHEMA

DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"


def reference() -> str:
    return DOC.read_text(encoding="utf-8").split("## API reference", 1)[1]


def section(title: str) -> str:
    return reference().split(f"### `{title}`", 1)[1].split("\n### ", 1)[0]


def public_names(obj: object) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def test_all_is_exactly_the_documented_names() -> None:
    block = reference().split("<!-- public names")[1].split("<!-- end of public names")[0]
    listed = set(re.findall(r"`(\w+)`", block))
    assert listed == set(client_sdk.__all__)
    assert len(client_sdk.__all__) == len(set(client_sdk.__all__))
    body = reference().split("<!-- public names")[0]
    undocumented = sorted(n for n in client_sdk.__all__ if not re.search(rf"\b{n}\b", body))
    assert not undocumented, f"named in the index but described nowhere: {undocumented}"
    for name in client_sdk.__all__:
        assert hasattr(client_sdk, name), name


def test_store_methods_are_the_documented_ones() -> None:
    documented = set(re.findall(r"`(?:Store|store)\.(\w+)", section("Store")))
    assert documented == public_names(Store)


def test_collection_and_client_methods_are_the_documented_ones() -> None:
    store = Store.open(None, "pw", schema=CRM_SCHEMA, kdf=FAST_KDF)
    collection = store.collection("customers")
    client = SyncClient(store, MockTransport(lambda r: TransportResponse(500, b"")))
    documented = set(re.findall(r"`collection\.(\w+)", section("Collection")))
    assert documented == public_names(collection) and isinstance(collection, Collection)
    documented = set(re.findall(r"`client\.(\w+)", section("SyncClient")))
    assert documented == public_names(client)
    store.close()
