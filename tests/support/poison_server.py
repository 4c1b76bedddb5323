"""``python -m tests.support.poison_server serve …``: the real Fieldsync server, except
that it fails (an internal error, as a server bug would) on every push carrying a
record whose id starts with ``poison-`` — the "poison write" that blocks a device's
outbox, for ``fieldsync doctor`` tests. Everything else is the unchanged server.
"""

from __future__ import annotations

from typing import Any

import server.routers.sync as sync_router
from server.cli import main

_real_apply_push = sync_router.apply_push


def _apply_push(conn: Any, principal: Any, schema: Any, mutations: Any, **kwargs: Any) -> Any:
    if any(m.record_id.startswith("poison-") for m in mutations):
        raise RuntimeError("simulated server bug on one write")
    return _real_apply_push(conn, principal, schema, mutations, **kwargs)


sync_router.apply_push = _apply_push  # type: ignore[assignment]

if __name__ == "__main__":
    raise SystemExit(main())
