"""The store at rest: no plaintext on disk, typed errors for wrong keys and tampering,
passphrase change without re-encryption, wipe."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from client_sdk import (
    FAST_KDF,
    Store,
    StoreClosed,
    StoreCorrupted,
    SyncClient,
    TamperedData,
    UnsentWork,
    WouldLoseWork,
    WrongPassphrase,
)
from client_sdk.testing import FakeServer
from sync_protocol import CRM_SCHEMA

from .conftest import FAST, PASSPHRASE, MakeStore

SECRETS = [
    ("张三丰", "+86 139 1234 5678", "客户很关心售后服务，下周二回访"),
    (
        "Margarethe Oyelaran-Whitfield",
        "+44 20 7946 0958",
        "Prefers calls after 4pm; allergic to peanuts",
    ),
    ("李晓梅", "+86 186 5555 0101", "合同金额需要经理审批 confidential-budget-xyz"),
]


def _needles() -> list[bytes]:
    out = []
    for name, phone, note in SECRETS:
        for text in (name, phone, note, phone.replace(" ", "")):
            for enc in ("utf-8", "utf-16-le", "utf-16-be"):
                out.append(text.encode(enc))
    return out


def _disk_files(path: Path) -> list[Path]:
    return [p for p in path.parent.iterdir() if p.name.startswith(path.name)]


def _scan(path: Path) -> list[str]:
    found = []
    for f in _disk_files(path):
        data = f.read_bytes()
        found += [f"{f.name}: {n!r}" for n in _needles() if n in data]
    return found


def _write_secrets(store: Store, server: FakeServer) -> None:
    customers = store.collection("customers")
    client = SyncClient(store, server.transport(), FAST)
    client.login("rep1", "fieldsync-demo")
    ids = []
    for name, phone, note in SECRETS:
        rec = customers.insert({"name": name, "phone": phone, "notes": note, "status": "potential"})
        ids.append(rec.id)
    client.sync()  # server copies in `records`, pulled back
    server.put("customers", "remote-1", {"name": SECRETS[1][0], "status": "intent"})
    # a dead letter carries the refused values too
    bad = customers.insert({"name": SECRETS[2][0] + "!", "status": "potential"})
    server.evict("customers", bad.id)
    client.sync()
    customers.update(ids[0], {"notes": SECRETS[0][2] + " (edited)"})  # pending in `outbox`
    store.collection("customers").query(search="张")


def test_no_customer_plaintext_in_db_wal_or_journal(make_store: MakeStore, tmp_path: Path) -> None:
    store = make_store("secure.db")
    server = FakeServer()
    _write_secrets(store, server)
    assert store.dead_letters() and store.status().pending_total == 1
    path = tmp_path / "secure.db"
    assert Path(f"{path}-wal").exists(), "the scan must cover a live WAL"
    assert _scan(path) == []
    store.close()
    assert _scan(path) == []


def test_the_scan_finds_plaintext_when_encryption_is_off(
    make_store: MakeStore, tmp_path: Path
) -> None:
    """Guards the scanner: the same writes on an unencrypted store are found."""
    store = make_store("plain.db", encrypted=False)
    _write_secrets(store, FakeServer())
    assert _scan(tmp_path / "plain.db")


def test_wrong_passphrase_raises_typed_error(make_store: MakeStore, tmp_path: Path) -> None:
    make_store("k.db").collection("customers").insert({"name": "A", "status": "potential"})
    with pytest.raises(WrongPassphrase):
        Store.open(tmp_path / "k.db", "not the passphrase", schema=CRM_SCHEMA)


def _flip_payload_byte(path: Path, table: str) -> None:
    conn = sqlite3.connect(path)
    rowid, payload = conn.execute(f"SELECT rowid, payload FROM {table} LIMIT 1").fetchone()
    data = bytearray(payload)
    data[20] ^= 0x01
    conn.execute(f"UPDATE {table} SET payload = ? WHERE rowid = ?", (bytes(data), rowid))
    conn.commit()
    conn.close()


@pytest.mark.parametrize("table", ["outbox", "records"])
def test_flipped_ciphertext_byte_raises_tampered(
    make_store: MakeStore, tmp_path: Path, table: str
) -> None:
    store = make_store("t.db")
    store.collection("customers").insert({"name": "Zhao", "status": "potential"})
    if table == "records":
        client = SyncClient(store, FakeServer().transport(), FAST)
        client.login("rep1", "fieldsync-demo")
        client.sync()
    store.close()
    _flip_payload_byte(tmp_path / "t.db", table)
    reopened = Store.open(tmp_path / "t.db", PASSPHRASE, schema=CRM_SCHEMA)
    try:
        with pytest.raises(TamperedData):
            reopened.collection("customers").all()
    finally:
        reopened.close()


def test_ciphertext_swapped_between_rows_is_refused(make_store: MakeStore, tmp_path: Path) -> None:
    store = make_store("s.db")
    customers = store.collection("customers")
    a = customers.insert({"name": "Alice", "status": "potential"})
    b = customers.insert({"name": "Bob", "status": "potential"})
    store.close()
    conn = sqlite3.connect(tmp_path / "s.db")
    pa = conn.execute("SELECT payload FROM outbox WHERE record_id = ?", (a.id,)).fetchone()[0]
    conn.execute("UPDATE outbox SET payload = ? WHERE record_id = ?", (pa, b.id))
    conn.commit()
    conn.close()
    reopened = Store.open(tmp_path / "s.db", PASSPHRASE, schema=CRM_SCHEMA)
    try:
        with pytest.raises(TamperedData):
            reopened.collection("customers").get(b.id)
    finally:
        reopened.close()


def test_corrupted_file_raises_store_corrupted(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = Store.open(path, PASSPHRASE, schema=CRM_SCHEMA, kdf=FAST_KDF)
    store.collection("customers").insert({"name": "A", "status": "potential"})
    store.close()
    with open(path, "r+b") as fh:
        fh.write(b"\xde\xad\xbe\xef" * 32)
    with pytest.raises(StoreCorrupted):
        Store.open(path, PASSPHRASE, schema=CRM_SCHEMA)
    other = tmp_path / "foreign.db"
    sqlite3.connect(other).execute("CREATE TABLE x (a)").connection.commit()
    with pytest.raises(StoreCorrupted):
        Store.open(other, PASSPHRASE, schema=CRM_SCHEMA)


def test_change_passphrase_rewraps_only_the_key(make_store: MakeStore, tmp_path: Path) -> None:
    store = make_store("p.db")
    rec = store.collection("customers").insert({"name": "王五", "status": "intent"})
    conn = sqlite3.connect(tmp_path / "p.db")
    before = conn.execute("SELECT payload FROM outbox").fetchall()
    conn.close()
    with pytest.raises(WrongPassphrase):
        store.change_passphrase("wrong", "new passphrase")
    store.change_passphrase(PASSPHRASE, "new passphrase")
    store.close()
    conn = sqlite3.connect(tmp_path / "p.db")
    assert conn.execute("SELECT payload FROM outbox").fetchall() == before  # not re-encrypted
    conn.close()
    with pytest.raises(WrongPassphrase):
        Store.open(tmp_path / "p.db", PASSPHRASE, schema=CRM_SCHEMA)
    again = Store.open(tmp_path / "p.db", "new passphrase", schema=CRM_SCHEMA)
    assert again.collection("customers")[rec.id]["name"] == "王五"
    again.close()


def test_wipe_deletes_files_and_key(make_store: MakeStore, tmp_path: Path) -> None:
    store = make_store("w.db")
    store.collection("customers").insert({"name": "A", "status": "potential"})
    assert _disk_files(tmp_path / "w.db")
    with pytest.raises(WouldLoseWork) as refused:
        store.wipe()  # the insert was never sent: wiping would lose it
    assert refused.value.work == UnsentWork(pending_writes=1)
    assert store.collection("customers").count() == 1  # nothing was touched
    store.wipe(force=True)
    assert _disk_files(tmp_path / "w.db") == []
    with pytest.raises(StoreClosed):
        store.collection("customers")
    fresh = Store.open(tmp_path / "w.db", "another", schema=CRM_SCHEMA, kdf=FAST_KDF)
    assert fresh.collection("customers").all() == []
    fresh.close()


def test_secrets_are_not_in_reprs() -> None:
    from client_sdk import PassphraseKeyProvider

    assert "hunter2" not in repr(PassphraseKeyProvider("hunter2"))


def test_a_first_open_interrupted_midway_leaves_a_fresh_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tables and key material are created in one transaction: no half-made store."""
    from client_sdk._local.sqlite.meta import SqliteMeta

    real_set_meta = SqliteMeta.set

    def dying_set_meta(self: SqliteMeta, key: str, value: bytes | None) -> None:
        if key == "device_id":
            raise KeyboardInterrupt("killed during the first open")
        real_set_meta(self, key, value)

    monkeypatch.setattr(SqliteMeta, "set", dying_set_meta)
    with pytest.raises(KeyboardInterrupt):
        Store.open(tmp_path / "first.db", PASSPHRASE, schema=CRM_SCHEMA, kdf=FAST_KDF)
    monkeypatch.setattr(SqliteMeta, "set", real_set_meta)
    store = Store.open(tmp_path / "first.db", PASSPHRASE, schema=CRM_SCHEMA, kdf=FAST_KDF)
    store.collection("customers").insert({"name": "A", "status": "potential"})
    store.close()
