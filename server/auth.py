"""Credentials: Argon2id password hashes, signed access tokens, refresh tokens, TOTP,
and the login rate limiter.

Access tokens are short-lived and stateless: ``fs1.<payload>.<hmac>`` where the payload
is base64url JSON ``{"sub": user id, "dev": device id, "exp": epoch seconds}`` signed with
HMAC-SHA256 under ``Settings.secret_key``. Every request still loads the device, so a
revocation takes effect on the very next request, not at token expiry.

Refresh tokens are random, stored only as SHA-256 hashes, bound to one device, and rotate
on every use; presenting a rotated token again (a stolen copy being replayed) revokes
every refresh token of that device.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import RateLimited, TokenExpired, Unauthorized

# OWASP's Argon2id baseline (19 MiB, t=2, p=1): ~20 ms per hash on this machine.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_TOKEN_PREFIX = "fs1"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


#: A hash to verify against when the username is unknown, so a miss costs the same
#: time as a wrong password (no user enumeration by timing).
_DUMMY_HASH = hash_password("fieldsync-no-such-user")


def burn_password_check(password: str) -> None:
    verify_password(_DUMMY_HASH, password)


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    device_id: str
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issues and checks access tokens. ``clock`` is injectable for expiry tests."""

    def __init__(
        self, secret_key: str, ttl_s: int, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._key = hashlib.sha256(("fieldsync-access:" + secret_key).encode()).digest()
        self.ttl_s = ttl_s
        self.clock = clock

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, user_id: str, device_id: str, *, now: float | None = None) -> str:
        issued = int(self.clock() if now is None else now)
        body = {"sub": user_id, "dev": device_id, "exp": issued + self.ttl_s, "iat": issued}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{_TOKEN_PREFIX}.{payload}.{self._sign(payload)}"

    def verify(self, token: str) -> AccessClaims:
        try:
            prefix, payload, signature = token.split(".")
        except ValueError:
            raise Unauthorized("malformed access token") from None
        if prefix != _TOKEN_PREFIX or not hmac.compare_digest(signature, self._sign(payload)):
            raise Unauthorized("invalid access token")
        try:
            body = json.loads(_unb64(payload))
            claims = AccessClaims(str(body["sub"]), str(body["dev"]), int(body["exp"]))
        except (ValueError, KeyError, TypeError):
            raise Unauthorized("invalid access token") from None
        if claims.expires_at <= self.clock():
            raise TokenExpired(
                "access token expired; use the refresh token",
                details={"expired_at": claims.expires_at},
            )
        return claims


def new_refresh_token() -> tuple[str, str]:
    """(token for the client, hash to store)."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_totp_secret() -> str:
    return str(pyotp.random_base32())


def verify_totp(secret: str, code: str, *, at: float | None = None) -> bool:
    """Accept the current code and its neighbours (±30 s of clock difference)."""
    totp = pyotp.TOTP(secret)
    return bool(totp.verify(code, for_time=at, valid_window=1))


class LoginRateLimiter:
    """Sliding-window limits on login attempts, kept in process memory.

    * per username: failed attempts (a correct password is not slowed down by an
      attacker's guesses once the window has passed);
    * per client address: all attempts (stops one address spraying many usernames).

    With several worker processes each keeps its own window, so the effective limit is
    per worker; a shared store (the database or Redis) would make it global.
    """

    def __init__(
        self,
        *,
        max_failures_per_user: int,
        max_attempts_per_address: int,
        window_s: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures_per_user = max_failures_per_user
        self.max_attempts_per_address = max_attempts_per_address
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._attempts: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _trim(self, q: deque[float], now: float) -> None:
        while q and q[0] <= now - self.window_s:
            q.popleft()

    def _retry_after(self, q: deque[float], now: float) -> int:
        return max(1, int(q[0] + self.window_s - now) + 1)

    def check(self, username: str, address: str) -> None:
        """Raise :class:`RateLimited` when either limit is reached; else count the try."""
        now = self.clock()
        key = username.casefold()
        with self._lock:
            failures = self._failures.setdefault(key, deque())
            attempts = self._attempts.setdefault(address, deque())
            self._trim(failures, now)
            self._trim(attempts, now)
            if len(failures) >= self.max_failures_per_user:
                raise RateLimited(
                    "too many failed sign-ins for this account; try again later",
                    retry_after_s=self._retry_after(failures, now),
                )
            if len(attempts) >= self.max_attempts_per_address:
                raise RateLimited(
                    "too many sign-in attempts from this address; try again later",
                    retry_after_s=self._retry_after(attempts, now),
                )
            attempts.append(now)

    def record_failure(self, username: str) -> None:
        with self._lock:
            self._failures.setdefault(username.casefold(), deque()).append(self.clock())

    def record_success(self, username: str) -> None:
        with self._lock:
            self._failures.pop(username.casefold(), None)
