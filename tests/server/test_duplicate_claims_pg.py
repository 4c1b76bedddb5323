"""Four large pushes open at once on PostgreSQL: each claims the duplicate keys of its
customers (4 a customer) until it commits. With one advisory lock per key they held
~16,000 entries of the shared lock table, sized max_locks_per_transaction ×
max_connections (6,400 by default, plus some slack): pushes failed with "out of shared
memory" (503). Claims are rows (:mod:`server.crm.duplicates`), so all apply. (That the
second of two pushes with one phone waits and is refused is
``tests/server/test_counter_pg.py``.)"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from server.accounts import principal_for
from server.crm import CRM_RULES
from server.db import make_engine, make_session_factory
from server.migrate import upgrade
from server.models import User
from server.repository import apply_push
from sync_protocol import CRM_SCHEMA, HybridLogicalClock, Mutation
from tests.support.server_proc import create_user_direct

pytestmark = pytest.mark.postgres
CUSTOMERS = 1000
PUSHES = 4


def _customer(n: int, i: int) -> dict[str, Any]:
    return {
        "name": f"客户 {n}-{i:05d}",
        "status": "potential",
        "company": f"公司 {n}-{i:05d}",
        "phone": f"+86 21 {n}{i:07d}",
        "mobile": f"+86 139 {n}{i:07d}",
        "email": f"c{n}-{i}@example.com",
    }


def test_four_pushes_of_a_thousand_customers_open_at_once_all_apply(postgres_url: str) -> None:
    upgrade(postgres_url)
    ids = [create_user_direct(postgres_url, f"rep{n}", user_id=f"u-rep{n}") for n in range(PUSHES)]
    engine = make_engine(postgres_url, pool_size=PUSHES + 1)
    sessions = make_session_factory(engine)
    clock = HybridLogicalClock("test")
    release = threading.Event()
    holding = threading.Semaphore(0)
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def hold() -> None:
        holding.release()
        release.wait(120)

    def push(n: int) -> None:
        try:
            with sessions() as s:
                user = s.get(User, ids[n])
                assert user is not None
                principal = principal_for(s, user, f"dev-{n}")
                mutations = [
                    Mutation(
                        id=f"m-{n}-{i}",
                        collection="customers",
                        record_id=f"c-{n}-{i}",
                        op="upsert",
                        fields=_customer(n, i),
                        hlc=clock.now().encode(),
                    )
                    for i in range(CUSTOMERS)
                ]
                out = apply_push(
                    s.connection(),
                    principal,
                    CRM_SCHEMA,
                    mutations,
                    now_ms=int(time.time() * 1000),
                    server_hlc=lambda: clock.now().encode(),
                    rules=CRM_RULES,
                    before_commit=hold,
                )
                s.commit()
                results[n] = [
                    r.error.code.value if r.error else r.status.value for r in out.results
                ]
        except BaseException as exc:
            errors.append(exc)
            holding.release()

    threads = [threading.Thread(target=push, args=(n,)) for n in range(PUSHES)]
    for t in threads:
        t.start()
    for _ in threads:  # every push has checked its keys and holds them, uncommitted
        assert holding.acquire(timeout=180)
    release.set()
    for t in threads:
        t.join(120)
    engine.dispose()
    assert not errors, errors
    assert results == {n: ["applied"] * CUSTOMERS for n in range(PUSHES)}
