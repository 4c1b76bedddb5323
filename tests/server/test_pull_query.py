"""The page of a pull a few changes behind, served on the event loop, is read in one
statement (issue 19): every stream of the caller's scope — each owner's range, reference
data, granted records, evictions — is one part of one ``UNION ALL`` (one round trip on
PostgreSQL instead of one per stream). The worker thread (large pages) reads stream by
stream. Either way: merged by version, each version once.

Timing is not asserted here: the figures are in bench/server_bench.py.
"""

from __future__ import annotations

from typing import Any

import pytest

import server.repository.pull as pull_module
import server.routers.sync as sync_routes
from tests.server.conftest import World, customer_fields, new_id
from tests.server.test_scope_matrix import full_fields


@pytest.mark.parametrize("where", ["loop", "worker"])
def test_a_managers_page_is_one_statement_with_each_version_once(
    world: World, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """On the loop (a few changes): one statement. In the worker thread (large pages):
    a statement per stream, merged. Either way each version once."""
    if where == "worker":
        monkeypatch.setattr(sync_routes, "LOOP_PAGE_VERSIONS", 0)
    rep, mate, manager = world.phone("rep_a1"), world.phone("rep_a2"), world.phone("mgr_a")
    manager.sync_down()
    customer = new_id("c")
    assert rep.push_one("customers", customer, customer_fields())["status"] == "applied"
    other = new_id("c")
    assert mate.push_one("customers", other, customer_fields())["status"] == "applied"
    # A ticket of rep_a1's assigned to the manager: the manager sees it by owner (a
    # member of the team) AND by grant — two streams, one version.
    ticket = new_id("t")
    fields = full_fields("tickets", customer, world.users["rep_a1"], lambda _c: customer)
    fields["assignee_id"] = world.users["mgr_a"]
    assert rep.push([rep.mutation("tickets", ticket, fields)])[0]["status"] == "applied"
    statements: list[str] = []
    real = pull_module.page_statement

    def counted(*args: Any) -> tuple[str, dict[str, Any]]:
        sql, params = real(*args)
        statements.append(sql)
        return sql, params

    # page_statement is the page's SQL whichever connection runs it (the loop's, for a
    # few changes; a pooled one in a worker thread otherwise): one call, one statement
    monkeypatch.setattr(pull_module, "page_statement", counted)
    changes = manager.sync_down()
    if where == "loop":
        assert len(statements) == 1, statements  # one page, one statement
        assert "record_grants" in statements[0] and "evictions" in statements[0]
    else:
        assert statements == []  # the worker thread reads stream by stream
    ids = [c["record_id"] for c in changes]
    assert sorted(ids) == sorted([customer, other, ticket])  # the ticket once
    versions = [c["version"] for c in changes]
    assert versions == sorted(versions)


@pytest.mark.parametrize("where", ["loop", "worker"])
def test_pages_cut_at_the_limit_still_deliver_everything_once(
    world: World, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Small pages over several streams: nothing skipped, nothing twice — read on the
    loop's connection or in a worker thread alike."""
    if where == "worker":
        monkeypatch.setattr(sync_routes, "LOOP_PAGE_VERSIONS", 0)
    rep, mate, manager = world.phone("rep_a1"), world.phone("rep_a2"), world.phone("mgr_a")
    manager.sync_down()
    pushed: list[str] = []
    for phone in (rep, mate, rep, mate, rep):
        ids = [new_id("c") for _ in range(3)]
        phone.push([phone.mutation("customers", r, customer_fields()) for r in ids])
        pushed += ids
    seen = [c["record_id"] for c in manager.sync_down(limit=2)]
    assert sorted(seen) == sorted(pushed)
