"""Security state shared by every server instance (issue 12, defects 5 and 6): two real
server processes (uvicorn) on one PostgreSQL database.

* 30 wrong passwords for one account, spread over both instances and sent
  concurrently, are stopped at the configured limit: exactly ``limit`` of them are
  tried, every other one answers ``429 rate_limited`` — the limit is one counter in
  the database, not one per process;
* a one-time (TOTP) code signs in once: replayed on the same or the other instance
  inside its 30-second window it is refused;
* a logout on one instance ends the access token on the other at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pyotp
import pytest
from sqlalchemy import text

from server.db import make_engine
from tests.conftest import scratch_postgres
from tests.support.server_proc import ServerProcess, create_user_direct, migrate

LIMIT = 5
PASSWORD = "correct horse battery staple"
ENV = {
    "FIELDSYNC_LOGIN_MAX_FAILURES_PER_USER": str(LIMIT),
    "FIELDSYNC_LOGIN_WINDOW_S": "300",
}

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """One PostgreSQL database for this module (the tests use different accounts)."""
    with scratch_postgres("fs_sec") as url:
        yield url


@pytest.fixture(scope="module")
def two_instances(postgres_url: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two server processes on the one database, shared by the module's tests."""
    migrate(postgres_url)
    with (
        ServerProcess(postgres_url, env=ENV, migrate=False) as one,
        ServerProcess(postgres_url, env=ENV, migrate=False) as two,
    ):
        yield one, two


def _login(url: str, username: str, password: str, device: str, **extra: str) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/auth/login",
        json={"username": username, "password": password, "device_id": device, **extra},
        timeout=60,
    )


def _failures_tried(postgres_url: str) -> int:
    """Password checks the instances actually made: the audited failures."""
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM audit_log WHERE action = 'login.failure' "
                        "AND target = 'users/victim'"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_thirty_wrong_passwords_over_two_instances_stop_at_the_limit(
    postgres_url: str, two_instances: tuple[ServerProcess, ServerProcess]
) -> None:
    one, two = two_instances
    create_user_direct(postgres_url, "victim", PASSWORD, user_id="u-victim")
    urls = [one.url, two.url] * 15

    def guess(i: int) -> int:
        return _login(urls[i], "victim", f"guess-{i}", f"dev-attacker-{i}").status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(guess, range(30)))
    assert statuses.count(401) == LIMIT, statuses
    assert statuses.count(429) == 30 - LIMIT, statuses
    assert _failures_tried(postgres_url) == LIMIT  # the others never reached the password
    # Both instances refuse, even the right password, until the window ends.
    for url in (one.url, two.url):
        locked = _login(url, "victim", PASSWORD, "dev-owner")
        assert locked.status_code == 429
        assert locked.json()["error"]["code"] == "rate_limited"
        assert int(locked.headers["Retry-After"]) > 0


def test_a_totp_code_works_once_across_instances(
    postgres_url: str, two_instances: tuple[ServerProcess, ServerProcess]
) -> None:
    one, two = two_instances
    secret = pyotp.random_base32()
    create_user_direct(postgres_url, "boss", PASSWORD, role="manager", totp_secret=secret)
    code = pyotp.TOTP(secret).now()
    first = _login(one.url, "boss", PASSWORD, "dev-boss-1", totp=code)
    assert first.status_code == 200, first.text
    for url in (two.url, one.url):  # replayed inside its window, on either instance
        replay = _login(url, "boss", PASSWORD, "dev-boss-2", totp=code)
        assert replay.status_code == 401, replay.text
        assert replay.json()["error"]["code"] == "unauthorized"

    # A logout on one instance ends the access token on the other at once.
    token = first.json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{two.url}/v1/manager/teams", headers=headers).status_code == 200
    assert httpx.post(f"{one.url}/v1/auth/logout", headers=headers).status_code == 204
    after = httpx.get(f"{two.url}/v1/manager/teams", headers=headers)
    assert after.status_code == 401


def _poll(url: str, token: str, device: str, checkpoint: str | None) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/sync/pull",
        json={"device_id": device, "schema_version": 1, "checkpoint": checkpoint, "limit": 100},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def test_a_revocation_on_one_instance_refuses_the_next_poll_on_the_other(
    postgres_url: str, two_instances: tuple[ServerProcess, ServerProcess]
) -> None:
    """Issue 19: polls verify a token from a per-process cache while the database's auth
    generation stands still; a revocation committed by the other instance moves it."""
    from tests.support.server_proc import create_team_direct

    one, two = two_instances
    team = create_team_direct(postgres_url, "Poll team", team_id="team-poll")
    create_user_direct(postgres_url, "poll-boss", PASSWORD, role="manager", team_id=team)
    create_user_direct(postgres_url, "poller", PASSWORD, team_id=team)
    rep = _login(two.url, "poller", PASSWORD, "dev-poller").json()["access_token"]
    boss = _login(one.url, "poll-boss", PASSWORD, "dev-poll-boss").json()["access_token"]
    first = _poll(two.url, rep, "dev-poller", None)
    assert first.status_code == 200, first.text
    checkpoint = first.json()["checkpoint"]
    for _ in range(5):  # instance two now answers these from its cache
        assert _poll(two.url, rep, "dev-poller", checkpoint).status_code == 200
    revoked = httpx.post(
        f"{one.url}/v1/manager/devices/dev-poller/revoke",
        headers={"Authorization": f"Bearer {boss}"},
        timeout=60,
    )
    assert revoked.status_code == 200, revoked.text
    refused = _poll(two.url, rep, "dev-poller", checkpoint)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "device_revoked"


def test_a_deactivation_by_an_operators_tool_ends_polls_on_both_instances(
    postgres_url: str, two_instances: tuple[ServerProcess, ServerProcess]
) -> None:
    one, two = two_instances
    create_user_direct(postgres_url, "leaver", PASSWORD, user_id="u-leaver")
    token = _login(two.url, "leaver", PASSWORD, "dev-leaver").json()["access_token"]
    checkpoint = _poll(two.url, token, "dev-leaver", None).json()["checkpoint"]
    for _ in range(3):
        for url in (one.url, two.url):
            assert _poll(url, token, "dev-leaver", checkpoint).status_code == 200
    engine = make_engine(postgres_url)  # an operator's tool: neither instance sees it
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE users SET active = false WHERE id = 'u-leaver'"))
    finally:
        engine.dispose()
    for url in (one.url, two.url):
        assert _poll(url, token, "dev-leaver", checkpoint).status_code == 401
