"""``GET /healthz``: the process answers and the database is reachable."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from ..deps import SessionDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(session: SessionDep) -> dict[str, Any]:
    session.execute(text("SELECT 1"))
    return {"status": "ok"}
