"""The wire conformance suite runs every test twice: against the SDK's in-process
``FakeServer`` and against a real server process (SQLite, demo accounts), so the fake
cannot drift from the server the SDK meets in the field."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from client_sdk import HttpTransport, Transport
from client_sdk.testing import FakeServer
from tests.support.server_proc import ServerProcess

from .wire import PASSWORD, Device

MakeDevice = Callable[..., Device]


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = Path(tmp_path_factory.mktemp("conformance")) / "server.db"
    with ServerProcess(f"sqlite:///{db}", seed_demo=True, demo_customers=0) as proc:
        yield proc


@pytest.fixture(params=["fake", "real"])
def transport(request: pytest.FixtureRequest) -> Iterator[Transport]:
    if request.param == "fake":
        server = FakeServer(users={"rep1": PASSWORD, "rep2": PASSWORD})
        yield server.transport()
        return
    real = HttpTransport(request.getfixturevalue("real_server").url)
    yield real
    real.close()


@pytest.fixture
def device(transport: Transport) -> MakeDevice:
    def make(username: str = "rep1") -> Device:
        return Device(transport, username)

    return make
