"""How much work a push does per mutation, not how fast: the behaviour behind each cut
of the push path's per-mutation Python cost (issue 19, SQLite at 100,000 records).

Each test counts something a regression would multiply — a computation repeated per
row, a statement repeated per row — on a real push through the app.
"""

from __future__ import annotations

from typing import Any

import pytest

from server.crm import keys
from tests.server.conftest import World, new_id


def _customers(n: int, tag: str) -> list[dict[str, Any]]:
    return [
        {
            "name": f"客户 {tag} {i}",
            "company": f"星辰科技有限公司 {tag}",
            "status": "potential",
            "phone": f"+86 21 8801 {i:04d}",
            "mobile": f"+86 139 8801 {i:04d}",
            "email": f"{tag}{i}@example.com",
        }
        for i in range(n)
    ]


def test_duplicate_keys_are_computed_once_per_pushed_customer(
    sqlite_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prefetch, the unit's new keys, the keys the batch remembers and the flush's
    ``record_keys`` all ask for a new customer's keys: computed once, not four times."""
    computed: list[tuple[Any, ...]] = []
    real = keys._compute_keys

    def counting(*parts: Any) -> frozenset[str]:
        computed.append(parts)
        return real(*parts)

    monkeypatch.setattr(keys, "_compute_keys", counting)
    keys._memo_keys.cache_clear()
    rep = sqlite_world.phone("rep_a1")
    fields = _customers(40, "once")
    results = rep.push([rep.mutation("customers", new_id("c"), f) for f in fields])
    assert [r["status"] for r in results] == ["applied"] * 40
    assert len(computed) == 40
    # ... and still a match: the same phone in a later push is refused.
    again = rep.push_one("customers", new_id("c"), {**fields[0], "email": "x@example.com"})
    assert again["error"]["code"] == "possible_duplicate"


def test_the_served_app_hides_its_startup_objects_from_the_collector(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """``fieldsync serve`` builds the app through :func:`server.app.serve_app`, which
    freezes what the app holds once built: a full collection during a push no longer
    walks ~350,000 long-lived objects."""
    import gc

    import uvicorn

    from server import app as app_module
    from server.cli import main

    for name in ("FIELDSYNC_DATABASE_URL", "FIELDSYNC_SCHEMA", "FIELDSYNC_ACCESS_LOG"):
        monkeypatch.setenv(name, "")  # cmd_serve sets them: restored afterwards
        monkeypatch.delenv(name)
    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: seen.update(target=target, **kw))
    main(["serve", "--database-url", f"sqlite:///{tmp_path / 'x.db'}", "--port", "1"])
    assert seen["target"] == "server.app:serve_app" and seen["factory"] is True

    monkeypatch.setenv("FIELDSYNC_SECRET_KEY", "fieldsync-test-secret-0123456789")
    monkeypatch.setenv("FIELDSYNC_ENV", "test")
    gc.unfreeze()
    threshold = gc.get_threshold()
    try:
        app_module.serve_app()
        assert gc.get_freeze_count() > 50_000
        assert gc.get_threshold()[0] == app_module.GC_YOUNG_THRESHOLD > 5_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_a_new_records_clocks_encode_as_the_general_encoding_does() -> None:
    """A record created by one write shares one clock among its fields, and its clocks
    are put together without a list per field — the very text ``json.dumps`` gives."""
    import json

    from server.repository.rows import encode_clocks
    from sync_protocol import FieldClock, StoredRecord

    def reference(record: StoredRecord) -> str:
        clocks: dict[str, Any] = {n: [c.hlc, c.version] for n, c in record.clocks.items()}
        if record.deleted_clock is not None:
            clocks["_deleted"] = [record.deleted_clock.hlc, record.deleted_clock.version]
        return json.dumps(clocks, sort_keys=True, separators=(",", ":"))

    shared = FieldClock('001764720000123:00001:dev-"张"\\', 7)
    names = ["phone", "name", "Zeta", "a_b", "名字", "email"]
    cases = [
        StoredRecord(fields={}, clocks=dict.fromkeys(names, shared)),
        StoredRecord(fields={}, clocks={"x": shared}),
        StoredRecord(fields={}, clocks={n: FieldClock(shared.hlc, 7) for n in names}),
        StoredRecord(fields={}, clocks=dict.fromkeys(names, shared), deleted_clock=shared),
        StoredRecord(fields={}, clocks={}),
        # The same names in another order, and again (the sorted names are cached by
        # the order they arrive in).
        StoredRecord(fields={}, clocks=dict.fromkeys(reversed(names), shared)),
        StoredRecord(fields={}, clocks=dict.fromkeys(names, FieldClock("h", 8))),
        StoredRecord(fields={}, clocks=dict.fromkeys(names[:3], shared)),
    ]
    for record in cases:
        assert encode_clocks(record) == reference(record)
    # The push takes the shared-clock path for a new record: one clock object.
    record = cases[0]
    assert len({id(c) for c in record.clocks.values()}) == 1


def test_the_mutation_digest_is_the_canonical_json_of_the_whole_message() -> None:
    """The digest stored with each result — an honest retry must match it, also one
    stored before this encoding — is SHA-256 of ``model_dump(mode="json")``, canonical."""
    import hashlib
    import json

    from server.repository.units import mutation_digest
    from sync_protocol import Mutation

    def reference(m: Mutation) -> str:
        text = json.dumps(
            m.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    hlc = "001764720000123:00001:dev-1"
    messages = [
        Mutation(id="m1", collection="customers", record_id="c1", op="upsert", hlc=hlc),
        Mutation(
            id="m2",
            collection="customers",
            record_id="c2",
            op="upsert",
            hlc=hlc,
            base_version=3,
            fields={"name": '张三 "q" \\ \u2028', "tags": ["a", "b"], "n": 1.5, "z": None},
            base={"name": "old", "nested": {"b": [1, {"y": True}], "a": 2**70}},
            group="g1",
            override=["possible_duplicate"],
            resolves=["x1"],
        ),
        Mutation(id="m3", collection="tasks", record_id="t1", op="delete", hlc=hlc),
        Mutation(
            id="m4",
            collection="customers",
            record_id="c4",
            op="upsert",
            hlc=hlc,
            fields={"when": __import__("datetime").date(2026, 12, 3), "nan": float("nan")},
        ),
    ]
    for m in messages:
        assert mutation_digest(m) == reference(m)


def _nested(depth: int, leaf: str) -> str:
    return "[" * depth + leaf + "]" * depth


WIRE_BODIES = [
    '{"a": 1}',
    "5",
    "NaN",
    "[NaN]",
    '{"x": -Infinity}',
    '{"x": Infinity}',
    f'{{"n": {2**63 - 1}, "m": {-(2**63)}}}',
    f'{{"n": {2**63}}}',
    f'{{"n": {-(2**63) - 1}}}',
    '{"f": 1e308, "g": -1.5e-400}',
    '{"f": 1e309}',
    '{"f": -1E+0400}',
    '{"s": "a\\u0000b"}',
    '{"a\\u0000": 1}',
    '{"s": "a\\\\u0000b"}',
    '{"s": "\\ud800"}',
    '{"s": "\\udfff x"}',
    '{"s": "\\ud83d\\ude00"}',
    '{"s": "\\u5ba2\\u6237"}',
    '{"s": "3fe1234e567"}',
    '{"bad": }',
    "",
    "\ufeff" + '{"bom": true}',
    '{"t": [true, false, null, 1.5, "x", {}, []]}',
    _nested(63, "1"),
    _nested(64, "1"),
    _nested(64, ""),
    _nested(65, ""),
    _nested(66, "1"),
    _nested(2000, "1"),
    '{"a": ' * 70 + "1" + "}" * 70,
]


def test_the_body_check_quick_path_finds_exactly_what_the_walk_finds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each request body is checked for values no store can carry; the quick path (the
    C parser and one pass over the values) must agree with the walk that names each
    problem, on bodies with and without problems."""
    from server import middleware

    for text in WIRE_BODIES:
        body = text.encode("utf-8")
        quick = middleware.checked_json(body)
        walked = middleware._walk_problems(body.decode("utf-8-sig"), middleware.MAX_JSON_DEPTH)
        assert quick[1] == walked[1], text[:80]
        if not walked[1]:
            assert quick[0] == walked[0], text[:80]


def test_an_ordinary_push_body_is_checked_without_the_walk(
    sqlite_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server import middleware

    def walk(*_args: Any) -> Any:
        raise AssertionError("the slow walk ran for an ordinary body")

    monkeypatch.setattr(middleware, "_walk_problems", walk)
    rep = sqlite_world.phone("rep_a1")
    fields = _customers(50, "body")
    results = rep.push([rep.mutation("customers", new_id("c"), f) for f in fields])
    assert [r["status"] for r in results] == ["applied"] * 50


def test_wal_checkpoints_run_beside_the_requests(tmp_path: Any) -> None:
    """A commit no longer copies the WAL into the database (SQLite's default after 1,000
    pages, about every other 1,000-mutation push); the server's background task does,
    with a PASSIVE checkpoint, whenever the WAL was written since its last look."""
    from sqlalchemy import text

    from server import db
    from server.app import create_app
    from server.migrate import upgrade
    from server.settings import Settings
    from tests.support.server_proc import TEST_SECRET

    url = f"sqlite:///{tmp_path / 'wal.db'}"
    upgrade(url)
    engine = db.make_engine(url)
    try:
        with engine.begin() as conn:
            auto = conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one()
            assert auto == db.WAL_AUTOCHECKPOINT_PAGES >= 10_000
            conn.execute(text("CREATE TABLE filler (x TEXT)"))
        checkpoint = db.checkpoint_task(engine)
        assert checkpoint is not None
        checkpoint()
        for _ in range(3):  # ~1,500 pages of WAL: past SQLite's default, no checkpoint
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO filler VALUES (:x)"), [{"x": "x" * 4000}] * 500)
        # More than 1,000 frames since the WAL last started over: no commit checkpointed
        # (the writer after a checkpoint starts the WAL over).
        busy, frames, done = checkpoint() or (1, 0, -1)
        assert busy == 0 and frames > 1_000 and done == frames
        assert checkpoint() is None  # nothing written since
        with engine.begin() as conn:  # the next writer starts the WAL over
            conn.execute(text("INSERT INTO filler VALUES ('y')"))
        busy, frames, done = checkpoint() or (1, 0, -1)
        assert busy == 0 and 0 < frames < 10 and done == frames
    finally:
        engine.dispose()
    app = create_app(Settings(env="test", database_url=url, secret_key=TEST_SECRET))
    names = [t.name for t in app.state.fieldsync.ops.tasks]
    assert "wal-checkpoint" in names
    app.state.fieldsync.engine.dispose()


def test_duplicate_lookups_probe_only_the_collections_the_push_compares_with(
    sqlite_world: World,
) -> None:
    """A push of customers compares with customers only: its ``record_keys`` lookup
    names one collection (an index probe per key); a lead in the push adds customers'
    and leads' keys (leads are compared with both)."""
    from tests.server.test_push_statements import statements

    rep = sqlite_world.phone("rep_a1")
    customers = [rep.mutation("customers", new_id("c"), f) for f in _customers(5, "probe")]
    with statements(sqlite_world.context.engine) as sql:
        assert [r["status"] for r in rep.push(customers)] == ["applied"] * 5
    [lookup] = [s for s in sql if "FROM record_keys" in s]
    assert "collection IN ('customers') AND" in lookup

    lead = rep.mutation(
        "leads", new_id("l"), {"name": "线索 一", "phone": "+86 139 7777 0001", "status": "new"}
    )
    with statements(sqlite_world.context.engine) as sql:
        assert rep.push([lead])[0]["status"] == "applied"
    [lookup] = [s for s in sql if "FROM record_keys" in s]
    assert "collection IN ('customers', 'leads') AND" in lookup


def test_entities_know_their_reference_and_read_only_fields() -> None:
    """Worked out once per entity (a push asks for every record), and worked out again
    when an entity is derived from another."""
    import dataclasses

    from sync_protocol import CRM_SCHEMA, FieldSpec, FieldType

    for entity in CRM_SCHEMA.entities.values():
        refs = {n for n, s in entity.fields.items() if s.type is FieldType.REF}
        read_only = {n for n, s in entity.fields.items() if s.read_only}
        assert entity.ref_fields == refs and entity.read_only_fields == read_only
    customers = CRM_SCHEMA["customers"]
    more = dataclasses.replace(
        customers,
        fields={**customers.fields, "referrer_id": FieldSpec(FieldType.REF, ref="customers")},
    )
    assert "referrer_id" in more.ref_fields and "referrer_id" not in customers.ref_fields


def test_a_push_body_is_parsed_once(sqlite_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The body middleware parses and checks the JSON; the push route validates that
    document instead of parsing the ~650 kB of a 1,000-mutation push a second time."""
    import json

    from server import middleware

    large: list[int] = []

    def counting(real: Any) -> Any:
        def parse(text: Any, *args: Any, **kwargs: Any) -> Any:
            if len(text) > 5_000:
                large.append(len(text))
            return real(text, *args, **kwargs)

        return parse

    monkeypatch.setattr(json, "loads", counting(json.loads))
    monkeypatch.setattr(middleware, "from_json", counting(middleware.from_json))
    rep = sqlite_world.phone("rep_a1")
    fields = _customers(30, "once-parsed")
    results = rep.push([rep.mutation("customers", new_id("c"), f) for f in fields])
    assert [r["status"] for r in results] == ["applied"] * 30
    assert len(large) == 1
    # A malformed push is still refused as before (the route parses nothing it was not
    # handed): wrong types answer 422 validation_failed naming the field.
    bad = rep.mutation("customers", new_id("c"), fields[0])
    bad["base_version"] = "1"
    response = rep.push_raw([bad])
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"
    assert any("base_version" in f["field"] for f in response.json()["error"]["details"]["fields"])


def test_a_whole_push_is_looked_up_in_one_statement_per_table(sqlite_world: World) -> None:
    """600 new customers (2,400 duplicate keys): one lookup of their records and one of
    their keys — not one per 500 ids."""
    from tests.server.test_push_statements import statements

    rep = sqlite_world.phone("rep_a1")
    fields = [
        {**f, "phone": f"+86 21 7701 {i:04d}", "mobile": f"+86 139 7701 {i:04d}"}
        for i, f in enumerate(_customers(600, "whole"))
    ]
    with statements(sqlite_world.context.engine) as sql:
        results = rep.push([rep.mutation("customers", new_id("c"), f) for f in fields])
    assert [r["status"] for r in results] == ["applied"] * 600
    assert len([s for s in sql if "FROM record_keys" in s]) == 1
    assert (
        len([s for s in sql if s.startswith("SELECT id, record_id") and "FROM records" in s]) == 1
    )
