"""Concurrent writers on PostgreSQL whose commits are held back, and a puller pulling
all the while: the puller must end up with every committed change — none skipped
because its checkpoint moved past a version that committed late."""

from __future__ import annotations

import json
import random
import threading
import time

from sqlalchemy import select

from server.accounts import principal_for
from server.db import make_engine, make_session_factory
from server.migrate import upgrade
from server.models import Record, User
from server.repository import apply_push, pull_page
from sync_protocol import CRM_SCHEMA, HybridLogicalClock, Mutation
from tests.support.server_proc import create_user_direct

WRITERS = 4
BATCHES = 12


def test_puller_never_skips_a_late_commit(postgres_url: str) -> None:
    upgrade(postgres_url)
    admin_id = create_user_direct(postgres_url, "admin", role="admin", user_id="u-admin")
    rep_ids = [
        create_user_direct(postgres_url, f"rep{i}", user_id=f"u-rep{i}") for i in range(WRITERS)
    ]
    engine = make_engine(postgres_url, pool_size=WRITERS + 2)
    sessions = make_session_factory(engine)
    errors: list[BaseException] = []
    writers_done = threading.Event()
    acknowledged: dict[str, int] = {}
    ack_lock = threading.Lock()

    def writer(n: int) -> None:
        rng = random.Random(n)
        clock = HybridLogicalClock(f"w{n}")
        try:
            with sessions() as s:
                user = s.get(User, rep_ids[n])
                assert user is not None
                principal = principal_for(s, user, f"dev-{n}")
            for b in range(BATCHES):
                mutations = [
                    Mutation(
                        id=f"m-{n}-{b}-{k}",
                        collection="customers",
                        record_id=f"c-{n}-{b}-{k}",
                        op="upsert",
                        fields={"name": f"客户 {n}-{b}-{k}", "status": "potential"},
                        hlc=clock.now().encode(),
                    )
                    for k in range(3)
                ]
                # Hold the commit back for a random while, sometimes long enough for the
                # puller to run several pulls against a half-finished history.
                hold = rng.choice([0.0, 0.005, 0.02, 0.05])
                with sessions() as s:
                    out = apply_push(
                        s.connection(),
                        principal,
                        CRM_SCHEMA,
                        mutations,
                        now_ms=int(time.time() * 1000),
                        server_hlc=clock.now().encode,
                        before_commit=lambda hold=hold: time.sleep(hold),
                    )
                    s.commit()
                with ack_lock:
                    for m, r in zip(mutations, out.results, strict=True):
                        assert r.version is not None
                        acknowledged[m.record_id] = max(acknowledged.get(m.record_id, 0), r.version)
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)

    seen: dict[str, int] = {}
    pulls = 0

    def pull_once(checkpoint: str | None) -> tuple[str, bool]:
        nonlocal pulls

        with sessions() as s:
            user = s.get(User, admin_id)
            assert user is not None
            page = pull_page(
                s.connection(), principal_for(s, user), checkpoint, limit=7, server_hlc="x"
            )
        pulls += 1
        body = json.loads(page.body)
        for change in body["changes"]:
            seen[change["record_id"]] = change["version"]
        return page.checkpoint, page.has_more

    def puller() -> None:
        checkpoint: str | None = None
        try:
            while not writers_done.is_set():
                checkpoint, _ = pull_once(checkpoint)
                time.sleep(0.002)
            more = True
            while more:
                checkpoint, more = pull_once(checkpoint)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    pull_thread = threading.Thread(target=puller)
    pull_thread.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    writers_done.set()
    pull_thread.join(60)
    assert not errors, errors
    assert pulls > 10

    with sessions() as s:
        stored = {
            r.record_id: r.version for r in s.execute(select(Record.record_id, Record.version))
        }
    engine.dispose()
    assert len(stored) == WRITERS * BATCHES * 3
    # Every acknowledged write is stored, and the puller holds the latest of each record.
    assert all(stored[rid] >= v for rid, v in acknowledged.items())
    assert seen == stored
