"""The scope matrix: role × CRM entity × pull / create / update / delete, for a record in
the caller's team and one in another team.

The expectations below are written from the product rules, not from the server code:

* a rep sees own customers and everything hanging off them — never a teammate's; a
  manager the team's; an admin all; reference data (products, stages, knowledge, campaigns) goes to everyone;
* writes outside scope are ``forbidden``; reference data and sales targets are written
  by managers and admins only; append-only events refuse updates and deletes;
* a refused write changes nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from server.accounts import principal_for
from server.models import Record, User
from server.repository import apply_push, read_counter
from server.repository.pull import format_checkpoint
from sync_protocol import CRM_SCHEMA, FieldSpec, FieldType, HybridLogicalClock, Mutation, Scope
from tests.server.conftest import World, build_world

ROLES = {"rep": "rep_a1", "manager": "mgr_a", "admin": "admin"}
#: whose data the target record is: the rep's own (rep_a1), a teammate's (rep_a2, same
#: team A: the manager sees it, the rep must not) or another team's (rep_b1, team B).
TARGETS = {"own": "rep_a1", "teammate": "rep_a2", "other": "rep_b1"}
ACTIONS = ("pull", "create", "update", "delete")
ENTITIES = sorted(CRM_SCHEMA.entities)
MANAGERS = {"manager", "admin"}
_ids = itertools.count()


def expected(role: str, entity: str, action: str, target: str) -> str:
    """ "ok", "forbidden" or "append_only" — from the product rules."""
    e = CRM_SCHEMA[entity]
    reference = e.scope is Scope.REFERENCE
    in_scope = (
        reference
        or role == "admin"
        or target == "own"
        or (target == "teammate" and role == "manager")
    )
    if action == "pull":
        return "ok" if in_scope else "forbidden"
    if e.write_roles is not None and role not in e.write_roles:
        return "forbidden"
    if action in ("update", "delete") and e.append_only:
        return "append_only"
    if action == "create" and entity in ("customers", "leads"):
        return "ok"  # created for oneself: the owner is the author, always in scope
    return "ok" if in_scope else "forbidden"


def _value(name: str, spec: FieldSpec, salt: int) -> Any:
    t = spec.type
    if spec.choices:
        return spec.choices[salt % len(spec.choices)]
    if name == "key":  # a custom field declaration's key: unique, a-z0-9_
        return f"k{salt}_{next(_ids)}"
    if t in (FieldType.STRING, FieldType.TEXT):
        return f"{name}-{salt}"
    if t in (FieldType.INTEGER, FieldType.NUMBER):
        low = int(spec.minimum or 0)
        return max(low, min(int(spec.maximum or 5), 1 + salt % 3))
    if t is FieldType.DATE:
        return f"2026-12-{1 + salt % 27:02d}"
    if t is FieldType.DATETIME:
        return f"2026-12-{1 + salt % 27:02d}T10:00:00Z"
    if t is FieldType.REF:
        return f"ref-{salt}"
    if t is FieldType.BOOLEAN:
        return bool(salt % 2)
    if t is FieldType.JSON:  # valid wherever a JSON field is required (a survey's questions)
        return {"items": [{"key": "q1", "label": f"{name}-{salt}", "type": "score"}]}
    raise AssertionError(f"no sample for {t}")


def full_fields(
    entity: str, customer_id: str, owner_id: str, refs: Callable[[str], str] | None = None
) -> dict[str, Any]:
    """The required fields; references point to real records (``refs(collection)``)
    because the server refuses dangling ones."""
    e = CRM_SCHEMA[entity]
    fields: dict[str, Any] = {}
    for name, spec in e.fields.items():
        if not spec.required or spec.read_only:
            continue
        if name == e.customer_field and e.scope is Scope.CUSTOMER:
            fields[name] = customer_id
        elif name == e.owner_field:
            fields[name] = owner_id
        elif spec.type is FieldType.REF and spec.ref in CRM_SCHEMA and refs is not None:
            fields[name] = refs(spec.ref)
        else:
            fields[name] = _value(name, spec, 0)
    return fields


def patch_fields(entity: str) -> dict[str, Any]:
    e = CRM_SCHEMA[entity]
    for name, spec in e.fields.items():
        if spec.read_only or spec.type is FieldType.REF or name == e.owner_field:
            continue
        if spec.type in (
            FieldType.STRING,
            FieldType.INTEGER,
            FieldType.NUMBER,
            FieldType.DATE,
            FieldType.DATETIME,
        ):
            return {name: _value(name, spec, 1)}
    raise AssertionError(entity)


class Matrix:
    def __init__(self, world: World) -> None:
        self.world = world
        self.clock = HybridLogicalClock("matrix-setup")
        self.phones = {role: world.phone(name) for role, name in ROLES.items()}
        self._refs: dict[tuple[str, str], str] = {}
        self.customers = {t: self.seed("customers", TARGETS[t]) for t in TARGETS}

    def ref(self, collection: str, target: str) -> str:
        """One record of ``collection`` for ``target``'s customer, to point at."""
        key = (collection, target)
        if key not in self._refs:
            self._refs[key] = self.seed(collection, TARGETS[target], target)
        return self._refs[key]

    def seed(self, entity: str, owner_name: str, customer_target: str | None = None) -> str:
        """Create a record directly as its owner (or an admin for reference data)."""
        rid = f"mx-{entity}-{next(_ids)}"
        owner_id = self.world.users[owner_name]
        customer = self.customers[customer_target] if customer_target else "none"
        target = customer_target or "own"
        fields = full_fields(entity, customer, owner_id, lambda c: self.ref(c, target))
        e = CRM_SCHEMA[entity]
        author = owner_name
        if e.scope is Scope.REFERENCE or e.write_roles is not None:
            author = "admin"
        with self.world.context.sessions() as s:
            user = s.get(User, self.world.users[author])
            assert user is not None
            m = Mutation(
                id=f"seed-{rid}",
                collection=entity,
                record_id=rid,
                op="upsert",
                fields=fields,
                hlc=self.clock.now().encode(),
            )
            out = apply_push(
                s.connection(),
                principal_for(s, user, "seed"),
                CRM_SCHEMA,
                [m],
                now_ms=0,
                server_hlc=lambda: self.clock.now().encode(),
            )
            assert out.results[0].error is None, out.results[0].error
            s.commit()
        return rid

    def snapshot(self) -> list[tuple[Any, ...]]:
        with self.world.context.sessions() as s:
            return [
                tuple(r) for r in s.execute(select(Record.record_id, Record.version, Record.data))
            ]

    def counter(self) -> int:
        with self.world.context.sessions() as s:
            return read_counter(s.connection()).counter


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    url = f"sqlite:///{tmp_path_factory.mktemp('matrix') / 'matrix.db'}"
    world, client = build_world(url)
    with client:
        yield Matrix(world)
    world.context.engine.dispose()


CASES = [
    (role, entity, action, target)
    for role in sorted(ROLES)
    for entity in ENTITIES
    for action in ACTIONS
    for target in sorted(TARGETS)
    # reference data belongs to no team: one case each
    if not (CRM_SCHEMA[entity].scope is Scope.REFERENCE and target != "own")
]


@pytest.mark.parametrize(("role", "entity", "action", "target"), CASES)
def test_scope_matrix(matrix: Matrix, role: str, entity: str, action: str, target: str) -> None:
    want = expected(role, entity, action, target)
    phone = matrix.phones[role]
    owner_name = TARGETS[target]
    if action == "pull":
        before = matrix.counter()
        rid = matrix.seed(entity, owner_name, target)
        page = phone.pull_raw(format_checkpoint(before), limit=100).json()
        seen = {(c["collection"], c["record_id"]) for c in page["changes"]}
        assert ((entity, rid) in seen) == (want == "ok")
        return
    if action == "create":
        rid = f"mx-new-{next(_ids)}"
        m = phone.mutation(
            entity,
            rid,
            full_fields(
                entity,
                matrix.customers[target],
                matrix.world.users[owner_name],
                lambda c: matrix.ref(c, target),
            ),
        )
    else:
        rid = matrix.seed(entity, owner_name, target)
        if action == "update":
            m = phone.mutation(entity, rid, patch_fields(entity), base_version=matrix.counter())
        else:
            m = phone.mutation(entity, rid, op="delete", base_version=matrix.counter())
    before = matrix.snapshot()
    result = phone.push([m])[0]
    if want == "ok":
        assert result["status"] == "applied", result
        assert matrix.snapshot() != before
    else:
        assert result["status"] == "rejected"
        assert result["error"]["code"] == want
        assert matrix.snapshot() == before  # a refused write changes nothing


#: Who pulls a ticket on rep_a1's customer assigned to rep_b1 (team B): its owner's
#: scope, plus the agent it is assigned to — read only — and nobody else of team B.
TICKET_AGENT = {"rep_a1": True, "rep_a2": False, "mgr_a": True, "admin": True,
                "rep_b1": True, "mgr_b": False}  # fmt: skip


def test_scope_matrix_a_ticket_reaches_its_agent_in_another_team(matrix: Matrix) -> None:
    world = matrix.world
    phones = {name: world.phone(name) for name in TICKET_AGENT}
    before = matrix.counter()
    tid = f"mx-ticket-agent-{next(_ids)}"
    fields = {**full_fields("tickets", matrix.customers["own"], world.users["rep_a1"])}
    fields["assignee_id"] = world.users["rep_b1"]
    owner = phones["rep_a1"]
    assert owner.push([owner.mutation("tickets", tid, fields)])[0]["status"] == "applied"
    for name, want in TICKET_AGENT.items():
        page = phones[name].pull_raw(format_checkpoint(before), limit=500).json()
        seen = [c["op"] for c in page["changes"] if c["record_id"] == tid]
        assert seen == (["upsert"] if want else []), name
    # the grant is for reading: the agent's own writes keep the owner rule
    agent = phones["rep_b1"]
    refused = agent.push([agent.mutation("tickets", tid, {"title": "x"}, base_version=0)])[0]
    assert refused["status"] == "rejected" and refused["error"]["code"] == "forbidden"
