"""Credentials: Argon2id password hashes, signed access tokens, refresh tokens, TOTP.

Access tokens are short-lived: ``fs1.<payload>.<hmac>`` where the payload is base64url
JSON ``{"sub": user id, "dev": device id, "ug": user generation, "dg": device
generation, "exp": epoch seconds}`` signed with HMAC-SHA256 under
``Settings.secret_key``. :func:`server.deps.check_token` compares the two generations
with the device and user rows: a password reset, deactivation, logout or revocation
raises a generation in the database, which ends every token issued before *at once, on
every instance* — not at token expiry. The pull path keeps a successful check while the
database's auth generation stands still (:mod:`server.authcache`); every other route
reads the rows on each request.

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
import time
from collections.abc import Callable
from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import TokenExpired, Unauthorized

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
    #: The user's and the device's token generation when the token was issued.
    user_generation: int = 0
    device_generation: int = 0


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

    def issue(
        self,
        user_id: str,
        device_id: str,
        *,
        user_generation: int = 0,
        device_generation: int = 0,
        now: float | None = None,
    ) -> str:
        issued = int(self.clock() if now is None else now)
        body = {
            "sub": user_id,
            "dev": device_id,
            "ug": user_generation,
            "dg": device_generation,
            "exp": issued + self.ttl_s,
            "iat": issued,
        }
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
            claims = AccessClaims(
                str(body["sub"]),
                str(body["dev"]),
                int(body["exp"]),
                int(body.get("ug", 0)),
                int(body.get("dg", 0)),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
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


def totp_step(secret: str, code: str, *, at: float | None = None) -> int | None:
    """The time step whose code ``code`` is — the current one or a neighbour (±30 s of
    clock difference) — or ``None`` when it matches none. The caller accepts a step only
    once (:func:`server.accounts.accept_totp_step`), so a code cannot be replayed."""
    totp = pyotp.TOTP(secret)
    now = time.time() if at is None else at
    current = int(now // totp.interval)
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def verify_totp(secret: str, code: str, *, at: float | None = None) -> bool:
    """Whether ``code`` is valid now (replay not considered: see :func:`totp_step`)."""
    return totp_step(secret, code, at=at) is not None
