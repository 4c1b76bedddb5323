"""The read model without a decrypted cache: what is decrypted when, and the sealed index.

Behaviour, not timing (the figures are in bench/sdk_bench.py):

* reopening a store and searching decrypts the index segments and the matches, not
  every record; ``count()`` and a ``limit`` query without ``order_by`` read no more than
  they need;
* an open store keeps no record (and no per-record map) in memory after reads;
* the index agrees with a brute-force match over every view after local writes, pulls
  (puts, deletes, evictions), push answers, a rolled-back group, a resync — on both
  local stores;
* the index is rebuilt when the ``search_keys`` hook changes, and no search term (nor
  a hook's pinyin) is in the database file bytes.
"""

from __future__ import annotations

import gc
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client_sdk import FAST_KDF, Record, Store, SyncClient, SyncConfig
from client_sdk._local import search
from client_sdk._local.crypto import Cipher
from client_sdk._local.memory import MemoryLocalStore
from client_sdk._local.search import matcher
from client_sdk._transports import Transport
from client_sdk.testing import FakeServer
from sync_protocol import CRM_SCHEMA

from .conftest import PASSPHRASE, MakeStore, ServerLayout, no_sleep

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

NAMES = ["王伟", "李娜", "张三", "Summit Medical", "Northwind", "陈静", "王芳"]


class CountingCipher:
    """Wraps the store's cipher and counts decryptions (white box)."""

    encrypted = True

    def __init__(self, inner: Cipher) -> None:
        self.inner = inner
        self.opens = 0

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        return self.inner.seal(plaintext, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        self.opens += 1
        return self.inner.open(blob, aad)


def counting(store: Store) -> CountingCipher:
    sealer = store._core.local._sealer  # type: ignore[attr-defined]
    wrapped = CountingCipher(sealer.cipher)
    sealer.cipher = wrapped
    return wrapped


def seeded_server(n: int) -> FakeServer:
    server = FakeServer()
    for i in range(n):
        server.put(
            "customers",
            f"c-{i:04d}",
            {"name": NAMES[i % len(NAMES)] + str(i), "phone": f"+86 138 {i:04d} 0000"},
        )
    return server


def synced(make_store: MakeStore, server: FakeServer, name: str = "device.db") -> Store:
    store = make_store(name)
    client = SyncClient(store, server.transport(), SyncConfig(sleep=no_sleep))
    client.login("rep1", "fieldsync-demo")
    client.sync()
    return store


def reopen(tmp_path: Path, name: str = "device.db", **kw: Any) -> Store:
    return Store.open(tmp_path / name, PASSPHRASE, schema=CRM_SCHEMA, kdf=FAST_KDF, **kw)


def test_reopening_and_searching_decrypts_the_matches_not_the_collection(
    make_store: MakeStore, tmp_path: Path
) -> None:
    store = synced(make_store, seeded_server(400))
    expected = [f"c-{i:04d}" for i in range(400) if "张三1" in NAMES[i % len(NAMES)] + str(i)]
    assert len(store.collection("customers").query(search="张三")) == 57  # builds the index
    store.close()
    again = reopen(tmp_path)
    try:
        cipher = counting(again)
        found = again.collection("customers").query(search="张三1")
        assert [r.id for r in found] == expected and len(found) == 16
        # index segments (one for 400 records) + the matches + nothing else of note
        assert cipher.opens <= len(found) + 3, cipher.opens
        assert cipher.opens < 400 // 10
    finally:
        again.close()


def test_count_and_a_limited_query_read_only_what_they_need(
    make_store: MakeStore, tmp_path: Path
) -> None:
    store = synced(make_store, seeded_server(300))
    mine = store.collection("customers").insert({"name": "本地", "status": "potential"})
    cipher = counting(store)
    customers = store.collection("customers")
    assert len(customers) == 301 and customers.count() == 301
    assert cipher.opens <= 2  # the one pending write (twice at most), no record
    cipher.opens = 0
    page = customers.query(limit=10, offset=5)
    ids = sorted([mine.id, *(f"c-{i:04d}" for i in range(300))])  # id order
    assert [r.id for r in page] == ids[5:15]
    assert cipher.opens <= 600 // 10, cipher.opens  # one keyset batch at most, not 301 + …
    assert cipher.opens < 301


_OPAQUE = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.CodeType, type)


def _reachable(root: object, limit: int = 500_000) -> Iterator[object]:
    """Objects reachable from ``root``, not crossing into modules, functions or classes
    (their globals are not the store's)."""
    seen = {id(root)}
    todo = [root]
    while todo and len(seen) < limit:
        obj = todo.pop()
        yield obj
        for ref in gc.get_referents(obj):
            if id(ref) not in seen and not isinstance(ref, _OPAQUE):
                seen.add(id(ref))
                todo.append(ref)


def test_an_open_store_keeps_no_record_in_memory(make_store: MakeStore) -> None:
    store = synced(make_store, seeded_server(300))
    customers = store.collection("customers")
    customers.all()
    customers.query(search="王", order_by="name")
    customers.get("c-0001")
    len(customers)
    store.preload()
    record_data = {f"c-{i:04d}" for i in range(300)}
    record_data |= {NAMES[i % len(NAMES)] + str(i) for i in range(300)}
    objects = list(_reachable(store))
    assert len(objects) > 1000  # the walk did reach the store's machinery
    assert not [o for o in objects if isinstance(o, Record)]
    held = [o for o in objects if isinstance(o, str) and o in record_data]
    assert not held, held[:5]


# -- the index agrees with the views through every kind of change ---------------------
def brute_force(store: Store, needle: str) -> list[str]:
    texts, test = store._core.views.texts, matcher(needle)
    return [r.id for r in store.collection("customers").all() if test(texts("customers", r.fields))]


NEEDLES = ["王", "张三", "summit", "1380", "138 0", "本地", "改名", "王 1", "拒绝", "no-such"]


def agrees(store: Store) -> None:
    customers = store.collection("customers")
    for needle in NEEDLES:
        assert [r.id for r in customers.query(search=needle)] == brute_force(store, needle), needle


@pytest.fixture(params=["sqlite", "memory"])
def device(request: pytest.FixtureRequest, make_store: MakeStore) -> Store:
    if request.param == "sqlite":
        return make_store("agree.db")
    return Store.open(None, PASSPHRASE, schema=CRM_SCHEMA, kdf=FAST_KDF)


@pytest.mark.parametrize("layout", ["fake", "server"])
def test_the_index_follows_every_change(device: Store, layout: str) -> None:
    """``layout="server"``: pull answers in the server's layout, read on the fast path
    (upserts keep only their JSON text)."""
    assert isinstance(device._core.local, MemoryLocalStore) or device._core.local.path
    server = seeded_server(60)

    def transport() -> Transport:
        inner = server.transport()
        return ServerLayout(inner) if layout == "server" else inner

    client = SyncClient(device, transport(), SyncConfig(sleep=no_sleep))
    client.login("rep1", "fieldsync-demo")
    client.sync()
    customers = device.collection("customers")
    agrees(device)  # builds the index
    assert device._core.views.indexed("customers")
    mine = customers.insert({"name": "本地客户", "status": "potential"})
    customers.update("c-0003", {"name": "改名张三"})
    customers.delete("c-0004")
    agrees(device)
    with pytest.raises(RuntimeError), device.group():  # rolled back: the index too
        customers.insert({"name": "回滚王五", "status": "potential"})
        customers.update("c-0005", {"name": "回滚"})
        raise RuntimeError("abort")
    assert not customers.query(search="回滚")
    agrees(device)
    client.sync()  # push answered: server copies replace the pending views
    agrees(device)
    server.put("customers", "c-0010", {"name": "Summit 改名"})
    server.put("customers", "c-new", {"name": "王新"})
    server.evict("customers", "c-0011")
    other = Store.open(None, "x", schema=CRM_SCHEMA, kdf=FAST_KDF)
    other_client = SyncClient(other, transport())
    other_client.login("rep1", "fieldsync-demo")
    other_client.sync()
    other.collection("customers").delete("c-0012")
    other_client.sync()
    customers.update("c-0010", {"phone": "+86 138 9999 0000"})  # pending over a pulled put
    client.pull()
    assert customers.get("c-0011") is None and customers.get("c-0012") is None
    assert customers.get(mine.id) is not None
    agrees(device)
    customers.update("c-0020", {"name": "拒绝改名"})  # refused at push: the view reverts
    server.evict("customers", "c-0020")
    client.push()
    assert device.dead_letters() and customers.get("c-0020") is not None
    agrees(device)
    server.require_resync()
    client.sync()
    agrees(device)
    device.close()


def test_a_new_search_keys_hook_rebuilds_the_index(make_store: MakeStore, tmp_path: Path) -> None:
    store = make_store("hook.db")
    rec = store.collection("customers").insert({"name": "张三", "status": "potential"})
    assert not store.collection("customers").query(search="zhangsan")
    store.close()

    def pinyin(collection: str, fields: Any) -> list[str]:
        return ["zhangsan"] if fields.get("name") == "张三" else []

    again = reopen(tmp_path, "hook.db", search_keys=pinyin)
    try:
        assert [r.id for r in again.collection("customers").query(search="zhangsan")] == [rec.id]
    finally:
        again.close()


def _files(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))


def test_no_search_term_or_hook_key_is_in_the_file(make_store: MakeStore, tmp_path: Path) -> None:
    def keys(collection: str, fields: Any) -> list[str]:
        return ["qiuzhiyuanpinyin"] if fields.get("name") == "邱志远" else []

    store = make_store("terms.db", search_keys=keys)
    customers = store.collection("customers")
    customers.insert({"name": "邱志远", "phone": "+86 139 7777 4242", "status": "potential"})
    assert customers.query(search="qiuzhiyuan") and customers.query(search="13977774242")
    assert store._core.views.indexed("customers")
    customers.insert({"name": "Zebulon Quartermaine", "status": "potential"})
    assert customers.query(search="zebulon")
    path = tmp_path / "terms.db"
    for moment in ("open", "closed"):
        data = _files(path)
        for term in ("邱志远", "qiuzhiyuanpinyin", "13977774242", "zebulon", "Zebulon"):
            for enc in ("utf-8", "utf-16-le"):
                assert term.encode(enc) not in data, (moment, term)
        if moment == "open":
            store.close()


def test_newer_segments_win_and_merging_keeps_only_live_entries() -> None:
    local = MemoryLocalStore()
    local.create()
    search.build(local, "c", [(f"r{i:04d}", "old") for i in range(5000)])
    assert [n for _, n in local.search.headers("c")] == [4096, 904]
    change = {f"r{i:04d}": ("new" if i % 2 else None) for i in range(300)}  # a large change
    search.update(local, "c", change)
    assert len(local.search.headers("c")) == 3
    assert search.find(local, "c", "new") == {f"r{i:04d}" for i in range(1, 300, 2)}
    assert len(search.find(local, "c", "old")) == 4700
    search.update(local, "c", {"r4999": "tail"})  # small: folded into the newest segment
    assert len(local.search.headers("c")) == 3 and search.find(local, "c", "tail") == {"r4999"}
    for k in range(search.MAX_SEGMENTS):  # many large changes: the segments are merged
        search.update(local, "c", {f"x{k}-{j}": "x" for j in range(search.SMALL_CHANGE)})
    assert len(local.search.headers("c")) <= search.MAX_SEGMENTS
    assert len(search.find(local, "c", "x")) == search.MAX_SEGMENTS * search.SMALL_CHANGE
    assert (
        len(search.find(local, "c", "old")) == 4699 and len(search.find(local, "c", "new")) == 150
    )
    assert sum(n for _, n in local.search.headers("c")) < 5000 + 24 * 256  # the dead are gone


def test_preload_lets_other_threads_read_and_write_while_it_builds(
    make_store: MakeStore, tmp_path: Path
) -> None:
    """The index's texts are made without holding the store's lock: from inside the
    ``search_keys`` hook (i.e. mid-build) another thread reads and writes the store at
    once. The write lands between the read and the store of the texts, so the build reads
    again — and the index still agrees with every view."""
    import threading

    synced(make_store, seeded_server(40), "preload.db").close()
    started, other_done = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def hook(collection: str, fields: Any) -> list[str]:
        if collection == "customers" and not started.is_set():
            started.set()
            # the build waits here until the other thread is through (never, if the
            # build held the lock)
            seen["other_thread_in_time"] = other_done.wait(5)
        return []

    store = reopen(tmp_path, "preload.db", search_keys=hook)

    def other() -> None:
        started.wait(10)
        customers = store.collection("customers")
        seen["read"] = customers.get("c-0001")  # would wait for the lock if it were held
        seen["written"] = customers.insert({"name": "建索引时新增", "status": "potential"})
        other_done.set()

    thread = threading.Thread(target=other)
    thread.start()
    store.preload()
    thread.join(10)
    assert seen["other_thread_in_time"] and seen["read"] is not None
    assert store._core.views.indexed("customers")
    assert [r.id for r in store.collection("customers").query(search="建索引")] == [
        seen["written"].id
    ]
    agrees(store)
    store.close()
