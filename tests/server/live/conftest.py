"""One PostgreSQL database and two server instances shared by the package's
two-instance tests (test_instances_pg.py, test_balancer.py): starting processes is the
slow part. A test that stops an instance starts it again (``running_pair``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.live import module_database
from tests.support.server_proc import ServerProcess, create_team_direct, create_user_direct

PASSWORD = "correct horse battery staple"
#: The periodic re-read and credential check are off, so only LISTEN/NOTIFY (and its
#: reconnect recovery) can deliver a poke or a revocation in time; B's listener comes
#: back 2 s after it is killed, so writes can land while nobody listens.
ENV = {
    "FIELDSYNC_LIVE_POLL_S": "3600",
    "FIELDSYNC_LIVE_AUTH_CHECK_S": "3600",
    "FIELDSYNC_LIVE_HEARTBEAT_S": "1",
    "FIELDSYNC_LIVE_RECONNECT_S": "2",
}


@pytest.fixture(scope="package")
def pair() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with module_database() as url:
        a = ServerProcess(url, env=ENV)
        a.prepare()
        team = create_team_direct(url, "A", team_id="team-a")
        create_user_direct(url, "mgr_a", PASSWORD, role="manager", team_id=team)
        create_user_direct(url, "rep_a1", PASSWORD, team_id=team)
        b = ServerProcess(url, env=ENV, migrate=False)
        with a, b:
            yield a, b


@pytest.fixture
def running_pair(
    pair: tuple[ServerProcess, ServerProcess],
) -> tuple[ServerProcess, ServerProcess]:
    for proc in pair:
        if not proc.running:
            proc.start()
    return pair
