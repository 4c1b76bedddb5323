"""Schema evolution against a real server process (issue 13, Done-when 2).

An app on schema v1 keeps pulling and pushing while the server is upgraded to v2
(a field added), v3 (a collection added) and v4 (more fields, one on the new
collection); a device on the newest schema works beside it. No field is lost on either
side: the server keeps what the old app cannot see, and the old app keeps (and carries
through) what it cannot show. A server whose ``min_client_version`` passes the app
refuses it with ``UpgradeRequired`` (``schema_too_old``) and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from client_sdk import FAST_KDF, HttpTransport, ServerError, Store, SyncClient, UpgradeRequired
from client_sdk.testing import FakeServer
from sync_protocol import SchemaRegistry, parse_schema_file
from tests.support.server_proc import ServerProcess, create_team_direct, create_user_direct

PASSWORD = "evolution-test-password"

V1 = """
name = "inspections"
version = {version}
min_client_version = {minimum}

[collections.sites]
search_fields = ["name"]
[collections.sites.fields]
name = {{ type = "string", required = true }}
phone = {{ type = "phone" }}
"""
V2 = """hazards = { type = "tags", merge = "union", added_in = 2 }
"""
V3 = """
[collections.readings]
scope = "parent"
parent = "sites"
parent_field = "site_id"
added_in = 3
[collections.readings.fields]
site_id = { type = "ref", ref = "sites", required = true }
pressure_bar = { type = "number", required = true, minimum = 0 }
"""
V4_SITES = """rating = { type = "integer", minimum = 1, maximum = 5, added_in = 4 }
"""
V4_READINGS = """note = { type = "text", added_in = 4 }
"""


def schema_text(version: int, minimum: int = 1) -> str:
    text = V1.format(version=version, minimum=minimum)
    if version >= 2:
        text += V2
    if version >= 4:
        text += V4_SITES
    if version >= 3:
        text += V3
    if version >= 4:
        text += V4_READINGS
    return text


def schema(version: int, minimum: int = 1) -> SchemaRegistry:
    return parse_schema_file(schema_text(version, minimum))


class Deployment:
    """One database; the server restarted on each schema version, like an upgrade."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.db = f"sqlite:///{tmp_path / 'server.db'}"
        self.proc: ServerProcess | None = None

    def serve(self, version: int, minimum: int = 1) -> str:
        self.stop()
        path = self.tmp_path / f"inspections-v{version}-min{minimum}.toml"
        path.write_text(schema_text(version, minimum), encoding="utf-8")
        self.proc = ServerProcess(self.db, serve_args=("--schema", str(path)), migrate=False)
        self.proc.start()
        return self.proc.url

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(tmp_path)
    from tests.support.server_proc import migrate

    migrate(d.db)
    team = create_team_direct(d.db, "Boilers")
    create_user_direct(d.db, "ines", PASSWORD, team_id=team, user_id="u-ines")
    try:
        yield d
    finally:
        d.stop()


def device(tmp_path: Path, name: str, version: int, url: str) -> tuple[Store, SyncClient]:
    store = Store.open(tmp_path / f"{name}.db", "passphrase", schema=schema(version), kdf=FAST_KDF)
    client = SyncClient(store, HttpTransport(url))
    client.login("ines", PASSWORD, device_name=name)
    return store, client


def reconnect(client: SyncClient, url: str) -> SyncClient:
    """The same app and store, talking to the upgraded server (same address space)."""
    fresh = SyncClient(client.store, HttpTransport(url))
    client.close()
    return fresh


def test_an_app_on_v1_keeps_working_through_v2_v3_and_v4(
    deployment: Deployment, tmp_path: Path
) -> None:
    url = deployment.serve(1)
    old_store, old = device(tmp_path, "old-phone", 1, url)
    site = old_store.collection("sites").insert({"name": "Hotel Aurora", "phone": "+44 1"})
    old.sync()

    # ---- v2: a field added ------------------------------------------------------
    url = deployment.serve(2)
    old = reconnect(old, url)
    new_store, new = device(tmp_path, "new-phone-v2", 2, url)
    new.sync()
    new_store.collection("sites").update(site.id, {"hazards": ["asbestos"]})
    new.sync()
    old_store.collection("sites").update(site.id, {"phone": "+44 2"})  # only what it knows
    old.sync()
    new.sync()
    assert new_store.collection("sites")[site.id].fields == {
        "name": "Hotel Aurora",
        "phone": "+44 2",  # the old app's write arrived
        "hazards": ["asbestos"],  # and did not erase the field it does not know
        "owner_id": "u-ines",
    }
    assert old_store.collection("sites")[site.id]["hazards"] == ["asbestos"]  # kept, carried
    second = old_store.collection("sites").insert({"name": "Bakery"})  # inserts still work
    assert old.sync().applied == 1

    # ---- v3: a collection added --------------------------------------------------
    url = deployment.serve(3)
    old = reconnect(old, url)
    new_store.close()
    new_store, new = device(tmp_path, "new-phone-v3", 3, url)
    new.sync()
    reading = new_store.collection("readings").insert({"site_id": site.id, "pressure_bar": 1.5})
    new_store.collection("sites").update(second.id, {"hazards": ["flour dust"]})
    new.sync()
    old_store.collection("sites").update(second.id, {"name": "Müller Bakery"})
    report = old.sync()
    assert report.rejected == 0 and report.pulled >= 2  # the reading came down: not shown
    with pytest.raises(KeyError):
        old_store.collection("readings")  # the v1 app has no such collection

    # ---- v4: more fields, on an old and on the new collection ----------------------
    url = deployment.serve(4)
    old = reconnect(old, url)
    new_store.close()
    new_store, new = device(tmp_path, "new-phone-v4", 4, url)
    new.sync()
    new_store.collection("sites").update(site.id, {"rating": 4})
    new_store.collection("readings").update(reading.id, {"note": "after service"})
    new.sync()
    old_store.collection("sites").update(site.id, {"name": "Hotel Aurora (B2)"})
    old_store.collection("sites").insert({"name": "School", "phone": "+44 3"})
    report = old.sync()
    assert report.applied == 2 and report.rejected == 0
    new.sync()
    sites = new_store.collection("sites")
    assert sites[site.id].fields == {
        "name": "Hotel Aurora (B2)",
        "phone": "+44 2",
        "hazards": ["asbestos"],
        "rating": 4,
        "owner_id": "u-ines",
    }
    assert sites[second.id].fields == {
        "name": "Müller Bakery",
        "hazards": ["flour dust"],
        "owner_id": "u-ines",
    }
    assert sites.count() == 3
    assert new_store.collection("readings")[reading.id].fields == {
        "site_id": site.id,
        "pressure_bar": 1.5,
        "note": "after service",
    }
    old_view = old_store.collection("sites")[site.id]
    assert old_view["rating"] == 4 and old_view["hazards"] == ["asbestos"]  # nothing dropped

    # the old app is upgraded to v4 on the same store: everything it could not show is there
    old_store.close()
    old.close()
    upgraded = Store.open(tmp_path / "old-phone.db", "passphrase", schema=schema(4), kdf=FAST_KDF)
    try:
        assert upgraded.collection("readings")[reading.id]["note"] == "after service"
        assert upgraded.collection("sites")[site.id]["rating"] == 4
        assert upgraded.status().pending_total == 0
    finally:
        upgraded.close()
    new_store.close()
    new.close()


def test_a_server_past_the_apps_schema_refuses_it_and_changes_nothing(
    deployment: Deployment, tmp_path: Path
) -> None:
    url = deployment.serve(1)
    old_store, old = device(tmp_path, "old-phone", 1, url)
    site = old_store.collection("sites").insert({"name": "Hotel Aurora"})
    old.sync()
    old_store.collection("sites").update(site.id, {"name": "unsent edit"})

    url = deployment.serve(4, minimum=2)
    old = reconnect(old, url)
    with pytest.raises(UpgradeRequired) as refused:
        old.sync()
    assert refused.value.code == "schema_too_old" and refused.value.status == 426
    assert old_store.status().pending_total == 1  # the unsent edit waits for the update
    assert old_store.collection("sites")[site.id]["name"] == "unsent edit"
    new_store, new = device(tmp_path, "new-phone", 4, url)
    new.sync()
    assert new_store.collection("sites")[site.id]["name"] == "Hotel Aurora"  # nothing arrived
    new_store.close()
    new.close()
    old_store.close()
    old.close()


def test_an_app_pointed_at_another_apps_server_takes_nothing_from_it(tmp_path: Path) -> None:
    """The inspections app against a CRM server: refused before anything is pulled or
    pushed (round 1 pulled 589 CRM records into the app's store)."""
    crm = FakeServer(users={"ines": PASSWORD})
    crm.put("customers", "c-1", {"name": "A CRM customer", "status": "potential"})
    store = Store.open(None, "passphrase", schema=schema(1), kdf=FAST_KDF)
    client = SyncClient(store, crm.transport())
    client.login("ines", PASSWORD)
    site = store.collection("sites").insert({"name": "Hotel Aurora"})
    with pytest.raises(ServerError) as refused:
        client.sync()
    assert refused.value.code == "schema_mismatch" and refused.value.status == 409
    assert refused.value.details == {"client": "inspections", "served": "fieldsync-crm"}
    assert crm.fields("customers", "c-1") is not None and crm.fields("sites", site.id) is None
    assert store.status().pending_total == 1  # kept for the right server
    assert store.unsent_work().pending_writes == 1
    store.close()
