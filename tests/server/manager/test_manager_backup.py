"""Backup while writes are in flight, restore into a fresh database: every row of the
restored database equals the source as it was at the backup point.

A writer thread keeps pushing batches of new customers through the sync engine
(:func:`server.repository.apply_push`, one transaction per batch) before, during and
after the backup. The backup point is the newest restored version C; since the
writer only inserts, the source at that point is exactly: records with version ≤ C, the
mutation results and audit rows of the batches that committed by then, and every other
table whole. A torn copy (a batch half in, or a record without its mutation result)
fails the comparison, and so does a stale one: the backup must hold every batch that
had committed when it began (a naive file copy misses what is still in the WAL).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, MetaData, select

from server.accounts import Principal
from server.cli import main as cli_main
from server.crm.indexing import catch_up_search, search_pending
from server.db import is_sqlite, make_engine
from server.manager.backup import backup, restore
from server.repository import apply_push
from server.repository.state import read_counter
from sync_protocol import CRM_SCHEMA, Mutation
from sync_protocol.hlc import wall_clock_ms
from tests.conftest import POSTGRES_ADMIN_URL, _libpq_url, sqlalchemy_url
from tests.server.conftest import World

BATCH = 20


class Writer(threading.Thread):
    """Pushes batches of new customers until told to stop."""

    def __init__(self, world: World) -> None:
        super().__init__(daemon=True)
        self.world = world
        self.batches = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.principal = Principal(world.users["rep_a1"], "rep", "team-a", device_id=None)

    def write_batch(self) -> None:
        context = self.world.context
        mutations = [
            Mutation(
                id=f"m-{uuid.uuid4().hex}",
                collection="customers",
                record_id=f"c-{uuid.uuid4().hex}",
                op="upsert",
                fields={"name": f"客户{self.batches}-{i}", "status": "intent"},
                hlc=context.clock.now(),
            )
            for i in range(BATCH)
        ]
        with context.sessions() as session:
            outcome = apply_push(
                session.connection(),
                self.principal,
                CRM_SCHEMA,
                mutations,
                now_ms=wall_clock_ms(),
                server_hlc=context.clock.now,
            )
            assert outcome.applied == BATCH
            session.commit()
        self.batches += 1

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.write_batch()
        except BaseException as exc:  # surfaced by the test
            self.error = exc


def _rows(engine: Engine, table: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key))]


def _compare(source_url: str, restored_url: str) -> int:
    """Assert the restored database is the source at the restored counter; return it."""
    source, restored = make_engine(source_url), make_engine(restored_url)
    try:
        meta = MetaData()
        meta.reflect(source)
        tables = meta.tables
        [(_, horizon, epoch)] = [r[1:4] for r in _rows(restored, tables["sync_state"])]
        assert _rows(source, tables["sync_state"])[0][2] == horizon
        # A restore starts a new epoch: every device's checkpoint must resync.
        assert epoch != _rows(source, tables["sync_state"])[0][3]
        src_records = _rows(source, tables["records"])
        version_at = list(tables["records"].columns.keys()).index("version")
        # The backup point: the newest version restored. (On PostgreSQL versions come
        # from a sequence, which pg_dump reads outside its snapshot, so the restored
        # counter may be ahead of it — never behind.) One writer commits in version
        # order, so the source at that point is every record up to it.
        counter = max(r[version_at] for r in _rows(restored, tables["records"]))
        with restored.connect() as conn:
            assert read_counter(conn).counter >= counter
        assert _rows(restored, tables["records"]) == [
            r for r in src_records if r[version_at] <= counter
        ]
        assert max(r[version_at] for r in src_records) > counter, "no write after the backup"

        result_at = list(tables["applied_mutations"].columns.keys()).index("result")

        def applied_by_then(row: tuple[Any, ...]) -> bool:
            return int(json.loads(row[result_at])["version"] or 0) <= counter

        assert _rows(restored, tables["applied_mutations"]) == [
            r for r in _rows(source, tables["applied_mutations"]) if applied_by_then(r)
        ]
        restored_audit = _rows(restored, tables["audit_log"])
        last = restored_audit[-1][0]
        assert restored_audit == [r for r in _rows(source, tables["audit_log"]) if r[0] <= last]
        # Search entries are caught up in the background from the records (server/crm/
        # indexing.py), on the source after the backup point too: the restored ones are
        # compared with the restored records instead, once caught up.
        derived = ("record_search", "search_state")
        for name, table in tables.items():
            if name not in ("records", "applied_mutations", "audit_log", "sync_state", *derived):
                assert _rows(restored, table) == _rows(source, table), name
        catch_up_search(restored)
        with restored.connect() as conn:
            assert not search_pending(conn)
        return int(counter)
    finally:
        source.dispose()
        restored.dispose()


@pytest.fixture
def fresh_target(db_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the same kind as ``db_url`` to restore into."""
    if is_sqlite(db_url):
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    name = f"fs_restore_{uuid.uuid4().hex[:12]}"
    admin = _libpq_url(POSTGRES_ADMIN_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield sqlalchemy_url(f"{admin.rsplit('/', 1)[0]}/{name}")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_backup_while_writing_restores_the_backup_point(
    world: World, fresh_target: str, tmp_path: Path
) -> None:
    writer = Writer(world)
    for _ in range(3):
        writer.write_batch()
    writer.start()
    try:
        before = writer.batches
        while writer.batches < before + 3 and writer.error is None:
            writer.stop.wait(0.01)
        committed = writer.batches  # every one of these is committed: the backup holds them
        result = backup(world.db_url, tmp_path / "fieldsync.backup")
        after = writer.batches
        while writer.batches < after + 3 and writer.error is None:
            writer.stop.wait(0.01)
    finally:
        writer.stop.set()
        writer.join(timeout=60)
    assert writer.error is None, writer.error
    assert result.bytes > 0

    restore(fresh_target, result.path)
    counter = _compare(world.db_url, fresh_target)
    # Everything committed before the backup began is in it: a naive copy of the SQLite
    # file (without its WAL, or torn mid-write) misses recent commits and fails here.
    assert counter >= committed * BATCH, (counter, committed)

    # A second restore over a database holding data is refused without force.
    with pytest.raises(Exception, match="already holds"):
        restore(fresh_target, result.path)


def test_cli_backup_and_restore_sqlite(sqlite_world: World, tmp_path: Path) -> None:
    out = tmp_path / "b.sqlite"
    assert cli_main(["backup", "--database-url", sqlite_world.db_url, "--output", str(out)]) == 0
    target = f"sqlite:///{tmp_path / 'r.db'}"
    assert cli_main(["restore", "--database-url", target, "--input", str(out)]) == 0
    assert cli_main(["restore", "--database-url", target, "--input", str(out)]) == 1
    assert cli_main(["restore", "--database-url", target, "--input", str(out), "--force"]) == 0
    engine = make_engine(target)
    try:
        with engine.connect() as conn:
            users = conn.exec_driver_sql("SELECT count(*) FROM users").scalar_one()
    finally:
        engine.dispose()
    assert users == 6
