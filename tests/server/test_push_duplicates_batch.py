"""The duplicate check reads ``record_keys`` once per push for the keys the push's
mutations name; a key only a *merged* record has (an update naming the name, the
company coming from the stored record) is not among them and must still be read when
first asked — the per-unit shortcut over the batch's cache must not skip it."""

from __future__ import annotations

from tests.server.conftest import World, new_id


def test_a_key_only_the_merged_record_has_is_still_looked_up(sqlite_world: World) -> None:
    rep = sqlite_world.phone("rep_a1")
    first, second = new_id("c"), new_id("c")
    company = "星辰科技有限公司"
    stored = rep.push(
        [
            rep.mutation(
                "customers", first, {"name": "张三", "company": company, "status": "potential"}
            ),
            rep.mutation(
                "customers", second, {"name": "李四", "company": company, "status": "potential"}
            ),
        ]
    )
    assert [r["status"] for r in stored] == ["applied", "applied"]
    # One push: a new customer (the batch's key cache is filled from it), then the
    # second customer renamed to the first's name: its name + company key exists only
    # in the merged record.
    results = rep.push(
        [
            rep.mutation(
                "customers",
                new_id("c"),
                {"name": "王五", "phone": "+86 138 5555 0001", "status": "potential"},
            ),
            rep.mutation("customers", second, {"name": "张三"}, base_version=stored[1]["version"]),
        ]
    )
    assert results[0]["status"] == "applied"
    assert results[1]["status"] == "rejected"
    assert results[1]["error"]["code"] == "possible_duplicate"
    assert results[1]["error"]["details"]["matches"][0]["record_id"] == first
