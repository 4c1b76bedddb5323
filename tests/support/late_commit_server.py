"""``python -m tests.support.late_commit_server serve …``: the real Fieldsync server,
except that every push holds its transaction open for a random while (0, 5, 20 or
50 ms) just before it commits — after its versions are allocated and its rows written —
so that commits of concurrent writers on several instances arrive late and out of
order. For the "a checkpoint never skips a late commit" tests across instances."""

from __future__ import annotations

import random
import time
from typing import Any

import server.routers.sync as sync_router
from server.cli import main

_real_apply_push = sync_router.apply_push
_rng = random.Random()


def _hold() -> None:
    time.sleep(_rng.choice([0.0, 0.005, 0.02, 0.05]))


def _apply_push(conn: Any, principal: Any, schema: Any, mutations: Any, **kwargs: Any) -> Any:
    kwargs["before_commit"] = _hold
    return _real_apply_push(conn, principal, schema, mutations, **kwargs)


sync_router.apply_push = _apply_push  # type: ignore[assignment]

if __name__ == "__main__":
    raise SystemExit(main())
