"""Issue 18, done-when 3: 10,000 records edited 20 times each and 2,000 deleted, then
compaction — the sync history is at most 1.2× the live rows, and every device still
converges: one that synced before the edits and one in the middle (both now behind the
purge horizon: ``resync_required``, then a fresh sync that keeps an unsent write), one
that synced after the deletes (incremental), and a new one.

"History" is defined in ``server/maintenance/compaction.py``: ``records`` (live and
tombstones) + ``evictions`` + ``applied_mutations``. The edits are applied with the
server's own push engine in-process (210,000 mutations over HTTP would take minutes on
this machine); the devices are real SDK stores syncing over HTTP with the server app.
Compaction runs as if 91 days had passed (past every default retention but the audit's).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from client_sdk import FAST_KDF, HttpTransport, Store, SyncClient, SyncConfig
from server.accounts import principal_for
from server.app import create_app
from server.maintenance.compaction import DAY_MS, RetentionPolicy, compact, history_size
from server.models import User
from server.repository import apply_push
from server.settings import Settings
from sync_protocol import CRM_SCHEMA, HybridLogicalClock, Mutation
from tests.support.server_proc import TEST_SECRET, create_user_direct, migrate

RECORDS = 10_000
EDITS = 20
DELETES = 2_000
BATCH = 1_000
PASSWORD = "rep-password-1"

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


class Writer:
    """A busy device writing through the server's push engine (in-process)."""

    def __init__(self, app: Any) -> None:
        self.context = app.state.fieldsync
        with self.context.sessions() as session:
            user = session.get(User, "u-rep1")
            assert user is not None
            self.principal = principal_for(session, user, "dev-writer")
        self.clock = HybridLogicalClock("dev-writer")
        self.versions: dict[str, int] = {}
        self.seq = 0

    def mutation(self, record_id: str, op: str, fields: dict[str, Any]) -> Mutation:
        self.seq += 1
        return Mutation.model_construct(
            id=f"m-{self.seq}",
            collection="customers",
            record_id=record_id,
            op=op,
            base_version=self.versions.get(record_id),
            fields=fields,
            base=None,
            hlc=self.clock.now().encode(),
            resolves=None,
            group=None,
        )

    def push(self, mutations: list[Mutation]) -> None:
        for start in range(0, len(mutations), BATCH):
            batch = mutations[start : start + BATCH]
            with self.context.sessions() as session:
                outcome = apply_push(
                    session.connection(),
                    self.principal,
                    CRM_SCHEMA,
                    batch,
                    now_ms=int(time.time() * 1000),
                    server_hlc=self.context.clock.now,
                )
                session.commit()
            for m, result in zip(batch, outcome.results, strict=True):
                assert result.status.value == "applied", result
                if result.version is not None:
                    self.versions[m.record_id] = result.version


def ids() -> list[str]:
    return [f"c-{i:05d}" for i in range(RECORDS)]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    url = f"sqlite:///{tmp_path_factory.mktemp('compaction') / 'fieldsync.db'}"
    migrate(url)
    create_user_direct(url, "rep1", PASSWORD, user_id="u-rep1")
    settings = Settings(
        env="test", database_url=url, secret_key=TEST_SECRET, compaction_interval_s=0
    )
    application = create_app(settings)
    yield application
    application.state.fieldsync.engine.dispose()


def device(tmp_path: Path, name: str, http: TestClient) -> tuple[Store, SyncClient]:
    store = Store.open(tmp_path / f"{name}.db", "pass", schema=CRM_SCHEMA, kdf=FAST_KDF)
    client = SyncClient(store, HttpTransport(client=http), SyncConfig(pull_limit=5000))
    client.login("rep1", PASSWORD, device_name=name)
    return store, client


def server_view(app: Any) -> dict[str, dict[str, Any]]:
    with app.state.fieldsync.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT record_id, data FROM records "
                "WHERE collection = 'customers' AND deleted = false"
            )
        ).all()
    return {r[0]: json.loads(r[1]) for r in rows}


def device_view(store: Store) -> dict[str, dict[str, Any]]:
    return {r.id: dict(r.fields) for r in store.collection("customers").all()}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_history_after_compaction_and_every_device_converges(app: Any, tmp_path: Path) -> None:
    writer = Writer(app)
    with TestClient(app) as http:
        writer.push(
            [
                writer.mutation(i, "upsert", {"name": f"Customer {i}", "status": "potential"})
                for i in ids()
            ]
        )
        early, early_client = device(tmp_path, "early", http)
        assert early_client.sync().pulled == RECORDS
        middle, middle_client = None, None
        for edit in range(1, EDITS + 1):
            writer.push([writer.mutation(i, "upsert", {"address": f"edit {edit}"}) for i in ids()])
            if edit == EDITS // 2:
                middle, middle_client = device(tmp_path, "middle", http)
                middle_client.sync()
        assert middle is not None and middle_client is not None
        deleted = ids()[:DELETES]
        writer.push([writer.mutation(i, "delete", {}) for i in deleted])
        late, late_client = device(tmp_path, "late", http)
        late_client.sync()
        # Offline on the middle device: an edit of a record that survives.
        kept = ids()[-1]
        middle.collection("customers").update(kept, {"address": "from the middle device"})

        with app.state.fieldsync.engine.connect() as conn:
            before = history_size(conn)
        assert before.live == RECORDS - DELETES and before.tombstones == DELETES
        assert before.idempotency >= RECORDS * (EDITS + 1) + DELETES

        later = int(time.time() * 1000) + 91 * DAY_MS
        result = compact(app.state.fieldsync.engine, RetentionPolicy(90, 90, 365), now_ms=later)
        assert (result.tombstones, result.idempotency) == (DELETES, before.idempotency)
        assert result.audit == 0  # a year's retention: nothing is that old

        with app.state.fieldsync.engine.connect() as conn:
            after = history_size(conn)
        assert after.tombstones == after.evictions == after.idempotency == 0
        assert after.history <= 1.2 * after.live, (before, after)

        reports = {}
        newcomer, newcomer_client = device(tmp_path, "new", http)
        for name, client in (
            ("early", early_client),
            ("middle", middle_client),
            ("late", late_client),
            ("new", newcomer_client),
        ):
            reports[name] = client.sync()
        assert reports["early"].resynced and reports["middle"].resynced
        assert not reports["late"].resynced and reports["late"].pulled <= 1  # the middle edit
        for client in (early_client, late_client, newcomer_client):
            client.sync()  # the middle device's edit reaches everyone

        truth = server_view(app)
        assert len(truth) == RECORDS - DELETES
        assert truth[kept]["address"] == "from the middle device"
        for store in (early, middle, late, newcomer):
            assert device_view(store) == truth
            assert store.status().pending_total == 0
            store.close()
        with app.state.fieldsync.engine.connect() as conn:
            settled = history_size(conn)
        assert settled.history <= 1.2 * settled.live
