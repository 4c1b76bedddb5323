"""The login throttle, kept in the database so every process and instance shares it.

Two counters, each a row of ``login_throttle`` with a fixed window that starts at its
first count:

* ``user:<name>`` — failed sign-ins of one username. An attempt *reserves* a failure
  before the password is checked (one atomic ``INSERT … ON CONFLICT DO UPDATE …
  RETURNING``, committed at once), so N processes racing on one account still stop at
  the limit: the (limit+1)-th attempt is refused without its password being tried. A
  correct password clears the counter; a correct password still waiting for its
  one-time code gives the reservation back.
* ``addr:<ip>`` — every attempt from one client address (one address spraying many
  usernames).

When a counter passes its limit the attempt answers 429 ``rate_limited`` with
``Retry-After`` (the end of the window). The statement runs on its own short
transaction, never inside the request's session: it must be visible to the other
processes before the slow password hash starts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine, text

from .errors import RateLimited

_BUMP = text(
    "INSERT INTO login_throttle (key, window_start_ms, count) VALUES (:key, :now, 1) "
    "ON CONFLICT (key) DO UPDATE SET "
    "window_start_ms = CASE WHEN login_throttle.window_start_ms <= :expired "
    "THEN :now ELSE login_throttle.window_start_ms END, "
    "count = CASE WHEN login_throttle.window_start_ms <= :expired "
    "THEN 1 ELSE login_throttle.count + 1 END "
    "RETURNING count, window_start_ms"
)
_RELEASE = text("UPDATE login_throttle SET count = count - 1 WHERE key = :key AND count > 0")
_CLEAR = text("DELETE FROM login_throttle WHERE key = :key")
_PURGE = text("DELETE FROM login_throttle WHERE window_start_ms <= :expired")
#: Expired rows are deleted every this many checks (per process).
_PURGE_EVERY = 200


def user_key(username: str) -> str:
    return ("user:" + username.casefold())[:200]


def address_key(address: str) -> str:
    return ("addr:" + address)[:200]


class LoginThrottle:
    """Failed-login and per-address limits over ``window_s``, shared through ``engine``."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_failures_per_user: int,
        max_attempts_per_address: int,
        window_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.max_failures_per_user = max_failures_per_user
        self.max_attempts_per_address = max_attempts_per_address
        self.window_ms = window_s * 1000
        self.clock = clock
        self._calls = 0
        self._lock = threading.Lock()

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def check(self, username: str, address: str) -> None:
        """Count this attempt for ``address`` and reserve a failure for ``username``;
        raise :class:`RateLimited` when either is past its limit."""
        now = self._now_ms()
        expired = now - self.window_ms
        with self.engine.begin() as conn:
            per_address = conn.execute(
                _BUMP, {"key": address_key(address), "now": now, "expired": expired}
            ).one()
            per_user = conn.execute(
                _BUMP, {"key": user_key(username), "now": now, "expired": expired}
            ).one()
            if self._due_for_purge():
                conn.execute(_PURGE, {"expired": expired})
        if int(per_user[0]) > self.max_failures_per_user:
            raise RateLimited(
                "too many failed sign-ins for this account; try again later",
                retry_after_s=self._retry_after(int(per_user[1]), now),
            )
        if int(per_address[0]) > self.max_attempts_per_address:
            raise RateLimited(
                "too many sign-in attempts from this address; try again later",
                retry_after_s=self._retry_after(int(per_address[1]), now),
            )

    def record_success(self, username: str) -> None:
        """The password was right: forget the account's failures."""
        with self.engine.begin() as conn:
            conn.execute(_CLEAR, {"key": user_key(username)})

    def release(self, username: str) -> None:
        """Give back the failure :meth:`check` reserved (a right password still waiting
        for its one-time code is not a failure)."""
        with self.engine.begin() as conn:
            conn.execute(_RELEASE, {"key": user_key(username)})

    def _retry_after(self, window_start_ms: int, now_ms: int) -> int:
        return max(1, (window_start_ms + self.window_ms - now_ms) // 1000 + 1)

    def _due_for_purge(self) -> bool:
        with self._lock:
            self._calls += 1
            return self._calls % _PURGE_EVERY == 0
