"""Server search answers from ``record_search`` alone — its copy of each record's owner
decides the scope — so the copy must follow every move, and a stale copy must never
show a record outside the caller's scope. And the one-statement search answers exactly
what the previous statement (the search text joined to ``records`` for the owner, a
plain ``LIKE``) answered — SQLite and PostgreSQL (where one- and two-character needles
are read from the grams index instead of a ``LIKE``)."""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, or_, select, update

from server.accounts import principal_for
from server.crm.indexing import catch_up_search, search_t
from server.crm.keys import search_needle
from server.manager.records import scope_owners
from server.manager.search import _like, search_rows
from server.models import Record, User
from tests.server.conftest import World, new_id
from tests.server.manager.conftest import Web

records_t = cast(Table, Record.__table__)
PEOPLE = ("admin", "mgr_a", "mgr_b", "rep_a1", "rep_a2", "rep_b1")


def _principal(world: World, conn: Connection, name: str) -> Any:
    from sqlalchemy.orm import Session

    with Session(bind=conn) as session:
        user = session.get(User, world.users[name])
        assert user is not None
        return principal_for(session, user)


def found(
    world: World, name: str, q: str | None, collection: str = "customers", *, exact: bool = True
) -> set[str]:
    """What ``name``'s search for ``q`` returns (ids), through the server's function."""
    with world.context.engine.connect() as conn:
        total, rows = search_rows(conn, _principal(world, conn, name), collection, q)
        assert total == len(rows) or not exact
        return {r.id for r in rows}


def owner_copies_agree(world: World) -> None:
    """Every search entry's owner equals its record's (the invariant the scope rests on)."""
    with world.context.engine.connect() as conn:
        wrong = conn.execute(
            select(search_t.c.collection, search_t.c.record_id, search_t.c.owner_id)
            .join(
                records_t,
                and_(
                    records_t.c.collection == search_t.c.collection,
                    records_t.c.record_id == search_t.c.record_id,
                ),
            )
            .where(
                or_(
                    records_t.c.owner_id != search_t.c.owner_id,
                    and_(records_t.c.owner_id.is_(None), search_t.c.owner_id.is_not(None)),
                    and_(records_t.c.owner_id.is_not(None), search_t.c.owner_id.is_(None)),
                    records_t.c.deleted.is_(True),
                )
            )
        ).all()
    assert wrong == []


def test_the_owner_copy_follows_reassignment_team_moves_merges_and_deletes(world: World) -> None:
    tag = uuid.uuid4().hex[:6]
    admin = Web(world, "admin")
    a1, a2, b1 = world.phone("rep_a1"), world.phone("rep_a2"), world.phone("rep_b1")
    c1, c2, c3 = new_id("c"), new_id("c"), new_id("c")
    for phone, cid, name in ((a1, c1, "甲"), (a2, c2, "乙"), (b1, c3, "丙")):
        fields = {"name": f"{name}客户", "status": "potential", "company": f"寻{tag}"}
        assert phone.push_one("customers", cid, fields)["status"] == "applied"
    lead = new_id("l")
    a1.push_one("leads", lead, {"name": "线索", "status": "new", "company": f"寻{tag}"})
    q = f"xun{tag}"
    assert found(world, "mgr_a", q) == {c1, c2} and found(world, "mgr_b", q) == {c3}
    assert found(world, "rep_a1", q) == {c1} and found(world, "admin", q) == {c1, c2, c3}
    owner_copies_agree(world)

    # reassignment: c1 to team B's rep
    done = admin.post(
        "/v1/manager/customers/reassign",
        json={"customer_ids": [c1], "new_owner_id": world.users["rep_b1"]},
    )
    assert done.status_code == 200, done.text
    assert found(world, "mgr_a", q) == {c2} and found(world, "rep_a1", q) == set()
    assert found(world, "mgr_b", q) == {c1, c3} and found(world, "rep_b1", q) == {c1, c3}
    owner_copies_agree(world)
    # a lead's reassignment too
    assert found(world, "mgr_a", q, "leads") == {lead}
    moved = admin.post(
        "/v1/manager/leads/reassign",
        json={"lead_ids": [lead], "new_owner_id": world.users["rep_b1"]},
    )
    assert moved.status_code == 200, moved.text
    assert found(world, "mgr_a", q, "leads") == set()
    assert found(world, "mgr_b", q, "leads") == {lead}
    owner_copies_agree(world)

    # team move: rep_a2 (owner of c2) joins team B — the owner is unchanged, the scope moves
    team = admin.patch(f"/v1/manager/users/{world.users['rep_a2']}", json={"team_id": "team-b"})
    assert team.status_code == 200, team.text
    assert found(world, "mgr_a", q) == set()
    assert found(world, "mgr_b", q) == {c1, c2, c3} and found(world, "rep_a2", q) == {c2}
    owner_copies_agree(world)

    # merge: c3 (rep_b1) into c2 (rep_a2): the loser leaves every search
    merged = admin.post("/v1/manager/customers/merge", json={"survivor_id": c2, "loser_id": c3})
    assert merged.status_code == 200, merged.text
    assert found(world, "mgr_b", q) == {c1, c2} and found(world, "rep_b1", q) == {c1}
    owner_copies_agree(world)

    # delete
    b1.sync_down()
    assert (
        b1.push_one("customers", c1, op="delete", base_version=b1.versions[("customers", c1)])[
            "status"
        ]
        == "applied"
    )
    assert found(world, "admin", q) == {c2}
    owner_copies_agree(world)


def test_a_stale_owner_copy_hides_but_never_shows(world: World) -> None:
    """Corrupt the copy on purpose: team B's customer claims to be rep_a1's. Team A's
    manager must still not get it (the page is checked against ``records``)."""
    tag = uuid.uuid4().hex[:6]
    theirs = new_id("c")
    world.phone("rep_b1").push_one(
        "customers", theirs, {"name": "乙队的", "status": "potential", "company": f"藏{tag}"}
    )

    def set_copy(owner: str) -> None:
        with world.context.engine.begin() as conn:
            conn.execute(
                update(search_t)
                .where(search_t.c.collection == "customers", search_t.c.record_id == theirs)
                .values(owner_id=world.users[owner])
            )

    catch_up_search(world.context.engine)  # the entry exists before it is corrupted
    set_copy("rep_a1")
    try:
        assert found(world, "mgr_a", f"cang{tag}", exact=False) == set()
        listed = Web(world, "mgr_a").get(
            "/v1/manager/records/customers", params={"q": f"cang{tag}"}
        )
        assert listed.status_code == 200 and listed.json()["items"] == []
        # …and the rightful manager, whose copy no longer names the owner, misses it:
        # hiding is the only failure a stale copy can cause (owner_copies_agree guards it)
        assert found(world, "mgr_b", f"cang{tag}") == set()
    finally:
        set_copy("rep_b1")
    assert found(world, "mgr_b", f"cang{tag}") == {theirs}
    owner_copies_agree(world)


NAMES = [
    ("张三", "星辰科技有限公司", "+86 139 1111 0001"),
    ("张伟", "张氏集团", "13911110002"),
    ("章伟", "Costco Co., Ltd.", "13911110003"),
    ("安娜", "Anna GmbH", "+86 139 2222 0004"),
    ("白云", "白云山制药", "13911110005"),
    ("欧阳锋", "西毒有限公司", "13911110006"),
    ("Zhang Wei", "zw_%trading", "13911110007"),
    ("王小明", "小明100%", "13911110008"),
]
NEEDLES = ["张", "z", "w", "zw", "张伟", "伟", "zhang", "zhangwei", "keji", "139", "11",
           "1", "co", "%", "_", "w_", "gmbh", "ouyang", "oy", "欧阳", "西毒", "xd", "100%",
           "zw_", "anna", "a", "不在"]  # fmt: skip


def _previous(conn: Connection, principal: Any, needle: str) -> list[str]:
    """The previous statement: search text joined to ``records`` for the owner, ``LIKE``."""
    match: list[Any] = [search_t.c.collection == "customers"]
    if needle:
        match.append(search_t.c.text.like(_like(needle), escape="\\"))
    source: Any = search_t
    owners = scope_owners(principal)
    if owners is not None:
        source = search_t.join(
            records_t,
            and_(
                records_t.c.collection == search_t.c.collection,
                records_t.c.record_id == search_t.c.record_id,
            ),
        )
        match.append(or_(records_t.c.owner_id.in_(owners), records_t.c.owner_id.is_(None)))
    stmt = (
        select(search_t.c.record_id)
        .select_from(source)
        .where(*match)
        .order_by(search_t.c.sort_key, search_t.c.record_id)
    )
    return list(conn.execute(stmt).scalars())


def test_results_equal_the_previous_statement(world: World) -> None:
    owners = ("rep_a1", "rep_a2", "rep_b1", "mgr_a")
    for i, (name, company, phone) in enumerate(NAMES):
        owner = world.phone(owners[i % len(owners)])
        fields = {"name": name, "company": company, "phone": phone, "status": "potential"}
        assert owner.push_one("customers", new_id("c"), fields)["status"] == "applied"
    checked = 0
    catch_up_search(world.context.engine)  # the previous statement reads the table as is
    with world.context.engine.connect() as conn:
        for person in PEOPLE:
            principal = _principal(world, conn, person)
            for q in NEEDLES:
                want = _previous(conn, principal, search_needle(q))
                total, rows = search_rows(conn, principal, "customers", q)
                assert (total, [r.id for r in rows]) == (len(want), want), (person, q)
                for offset, limit in ((0, 2), (2, 2), (0, 100)):
                    total, rows = search_rows(conn, principal, "customers", q, page=(offset, limit))
                    assert total == len(want), (person, q, offset)
                    assert [r.id for r in rows] == want[offset : offset + limit], (person, q)
                checked += bool(want)
    assert checked > len(PEOPLE) * len(NEEDLES) // 2  # most needles find something
