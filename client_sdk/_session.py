"""The signed-in user's tokens, kept sealed in the store.

One ``Session`` per :class:`~client_sdk.SyncClient`, shared with the attachment uploader
and downloader, so every request of the device uses the same access token, and a
refresh (which rotates the refresh token — the server treats a reuse as theft) happens
once, under :attr:`lock`, whichever thread hit the ``401`` first.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from sync_protocol import UserInfo

from ._core import StoreCore
from ._errors import AuthError

_TOKENS = "tokens"


class Session:
    def __init__(self, core: StoreCore) -> None:
        self.core = core
        self.lock = threading.RLock()
        self._tokens: dict[str, Any] | None = None

    def tokens(self) -> dict[str, Any] | None:
        if self._tokens is None and not self.core.closed and not self.core.local.closed:
            self._tokens = self.core.local.meta.get_secret(_TOKENS)
        return self._tokens

    def access_token(self) -> str:
        tokens = self.tokens()
        if not tokens:
            raise AuthError("not logged in", code="unauthorized", status=401)
        return str(tokens["access_token"])

    def user(self) -> UserInfo | None:
        tokens = self.tokens()
        return UserInfo.model_validate(tokens["user"]) if tokens and tokens.get("user") else None

    def user_id(self) -> str | None:
        tokens = self.tokens()
        user = tokens.get("user") if tokens else None
        return str(user["id"]) if isinstance(user, dict) and "id" in user else None

    def accept(self, content: bytes) -> UserInfo:
        """Keep the tokens of a login or refresh answer (read tolerantly)."""
        body = read_tokens(content)
        user = UserInfo.model_validate(body["user"])
        data = {
            "access_token": body["access_token"],
            "refresh_token": body["refresh_token"],
            "expires_at": self.core.clock.time() + float(body.get("expires_in") or 0),
            "user": user.model_dump(mode="json"),
        }
        self.core.local.meta.set_secret(_TOKENS, data)
        self._tokens = data
        return user

    def forget(self) -> None:
        self._tokens = None
        if not self.core.closed and not self.core.local.closed:
            self.core.local.meta.set_secret(_TOKENS, None)


def read_tokens(content: bytes) -> dict[str, Any]:
    """A ``TokenResponse`` body, unknown fields ignored; ``ValueError`` when it is not one."""
    try:
        body = json.loads(content)
        if not all(isinstance(body.get(k), str) for k in ("access_token", "refresh_token")):
            raise TypeError("tokens missing")
        if not isinstance(body.get("user"), dict):
            raise TypeError("user missing")
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a valid token answer: {exc}") from None
    user = {k: v for k, v in body["user"].items() if k in UserInfo.model_fields}
    return {**body, "user": user}
