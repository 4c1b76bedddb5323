"""A real Fieldsync server process for integration and end-to-end tests.

``ServerProcess(db_url)`` migrates the database (and optionally seeds the demo data)
in-process, then runs ``python -m server serve`` as a child process on a free loopback
port and waits until ``/healthz`` answers. It can be stopped (SIGTERM), killed
(SIGKILL, like a power cut) and restarted on the same port and database; it always
cleans up (context manager, ``atexit`` and the fixture's finaliser).

    with ServerProcess(sqlite_url, seed_demo=True) as server:
        httpx.post(f"{server.url}/v1/auth/login", json=...)

    @pytest.fixture
    def server(db_url):
        with ServerProcess(db_url, seed_demo=True) as proc:
            yield proc

An EMPTY database is not migrated (and seeded) in place: it becomes a copy of a template
migrated (and seeded with the same ``demo_customers``) once per process by the same
code — tests/support/dbtemplate.py; a database that is not empty is migrated and seeded
here as before. ``migrate(db_url)`` does the same for tests that migrate by hand.

``create_user_direct`` / ``create_team_direct`` add accounts straight into a test
database (no HTTP), e.g. a second team or a user with TOTP.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from .dbtemplate import DatabaseTemplate, shared_template

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_SECRET = "fieldsync-test-secret-0123456789"
_LIVE: weakref.WeakSet[ServerProcess] = weakref.WeakSet()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _upgrade(db_url: str) -> None:
    from server.migrate import upgrade

    upgrade(db_url)


#: A migrated database, built once per process (tests/support/dbtemplate.py).
MIGRATED_TEMPLATE = shared_template("migrated", _upgrade)


def migrate(db_url: str) -> None:
    """Migrate the database to head: an empty one becomes a copy of a database migrated
    once per process (the same ``upgrade``); anything else is upgraded here."""
    if not MIGRATED_TEMPLATE.fill(db_url):
        _upgrade(db_url)


def demo_template(customers: int) -> DatabaseTemplate:
    """Migrated + ``seed_demo(customers)``, built once per process and day (the demo's
    dates are relative to today)."""

    def build(db_url: str) -> None:
        _upgrade(db_url)
        seed_demo(db_url, customers)

    return shared_template(f"demo{customers}_{date.today():%Y%m%d}", build)


def seed_demo(db_url: str, customers: int = 200) -> None:
    from server.db import make_engine, make_session_factory
    from server.demo import database_is_empty
    from server.demo import seed_demo as _seed

    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            if database_is_empty(session):
                _seed(session, customers=customers)
    finally:
        engine.dispose()


def create_team_direct(db_url: str, name: str, *, team_id: str | None = None) -> str:
    from server.accounts import create_team
    from server.db import make_engine, make_session_factory

    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            team = create_team(session, name, team_id=team_id)
            session.commit()
            return team.id
    finally:
        engine.dispose()


def create_user_direct(
    db_url: str,
    username: str,
    password: str = "correct horse battery staple",
    *,
    role: str = "rep",
    team_id: str | None = None,
    user_id: str | None = None,
    totp_secret: str | None = None,
) -> str:
    """Create a user (and nothing else) in the database at ``db_url``; returns its id."""
    from server.accounts import create_user
    from server.db import make_engine, make_session_factory

    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            user = create_user(
                session,
                username=username,
                password=password,
                role=role,
                team_id=team_id,
                user_id=user_id,
                totp_secret=totp_secret,
            )
            session.commit()
            return user.id
    finally:
        engine.dispose()


class ServerProcess:
    """A uvicorn process serving Fieldsync on ``self.url``."""

    def __init__(
        self,
        db_url: str,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        *,
        migrate: bool = True,
        seed_demo: bool = False,
        demo_customers: int = 200,
        startup_timeout_s: float = 30.0,
        log_path: Path | None = None,
        module: str = "server",
        quiet: bool = True,
        serve_args: tuple[str, ...] = (),
    ) -> None:
        self.db_url = db_url
        #: More ``serve`` options, e.g. ``("--schema", "app.toml")``.
        self.serve_args = serve_args
        #: ``python -m <module> serve …``: a test may run a wrapper that injects a fault.
        self.module = module
        #: Warnings only and no access lines; False: the log settings of ``env`` apply.
        self.quiet = quiet
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.url = f"http://{self.host}:{self.port}"
        self.extra_env = dict(env or {})
        self._migrate = migrate
        self._seed = seed_demo
        self._demo_customers = demo_customers
        self._prepared = False
        self.startup_timeout_s = startup_timeout_s
        self.log_path = log_path
        self._log: Any = None
        self.process: subprocess.Popen[bytes] | None = None
        _LIVE.add(self)

    # ---- lifecycle ----------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "FIELDSYNC_ENV": "test",
                "FIELDSYNC_SECRET_KEY": TEST_SECRET,
                "FIELDSYNC_DATABASE_URL": self.db_url,
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def prepare(self) -> None:
        if self._prepared:
            return
        if self._migrate and self._seed and demo_template(self._demo_customers).fill(self.db_url):
            pass  # an empty database became a copy of a migrated and seeded one
        else:
            if self._migrate:
                migrate(self.db_url)
            if self._seed:
                seed_demo(self.db_url, self._demo_customers)
        self._prepared = True

    def start(self) -> ServerProcess:
        if self.running:
            return self
        self.prepare()
        cmd = [
            sys.executable,
            "-m",
            self.module,
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--database-url",
            self.db_url,
            *self.serve_args,
        ]
        if self.quiet:
            cmd += ["--log-level", "warning", "--no-access-log"]
        if self.log_path is not None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap
            out: Any = self._log
        else:
            out = subprocess.DEVNULL
        self.process = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=self.environment(), stdout=out, stderr=out
        )
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = self.process.returncode if self.process else None
                self._reap()
                raise RuntimeError(f"server process exited during start-up (code {code})")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server did not answer /healthz within {self.startup_timeout_s} s")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self, timeout_s: float = 10.0) -> None:
        """Graceful stop (SIGTERM), then SIGKILL if it lingers."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reap()

    def kill(self) -> None:
        """SIGKILL: the process dies mid-whatever, like a power cut."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reap()

    def restart(self, *, kill: bool = False) -> ServerProcess:
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start()

    def _reap(self) -> None:
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- conveniences ---------------------------------------------------------------

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 30.0), **kwargs)

    def login(
        self,
        username: str,
        password: str = "fieldsync-demo",
        device_id: str = "test-device",
        **extra: Any,
    ) -> dict[str, Any]:
        """POST /v1/auth/login; returns the TokenResponse JSON (raises on failure)."""
        body = {"username": username, "password": password, "device_id": device_id, **extra}
        response = httpx.post(f"{self.url}/v1/auth/login", json=body, timeout=30.0)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


@atexit.register
def _cleanup() -> None:
    for proc in list(_LIVE):
        with contextlib.suppress(Exception):
            proc.kill()
