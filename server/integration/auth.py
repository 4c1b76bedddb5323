"""The caller of the manager API and the change feed: a person's access token or a
system's API key (:mod:`.keys`), both answering one :class:`~server.deps.AuthContext`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..deps import AuthContext, BearerDep, ContextDep, SessionDep, get_auth
from ..errors import Unauthorized
from .keys import authenticate_key, device_id_of, looks_like_key


def get_caller(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    _scheme: BearerDep = None,  # declares bearerAuth in OpenAPI (server.openapi)
) -> AuthContext:
    """An ``Authorization: Bearer fsk_…`` API key, else a signed access token."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and looks_like_key(token):
        auth = authenticate_key(token, request.method, context, session)
        request.state.device_id = auth.device.id
        return auth
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer access token or API key")
    return get_auth(request, context, session)


CallerAuth = Annotated[AuthContext, Depends(get_caller)]

__all__ = ["CallerAuth", "device_id_of", "get_caller"]
