"""A database that is momentarily unavailable answers 503 ``service_unavailable``.

A lock wait that times out (SQLite busy, PostgreSQL lock timeout) or a dropped
connection is not a bug: the transaction rolled back, nothing changed, and the client
retries with the same mutation ids. It must not look like a 500.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy.exc

import server.routers.sync as sync_router
from tests.server.conftest import World, customer_fields, new_id


def test_operational_error_answers_503_and_changes_nothing(
    sqlite_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    phone = sqlite_world.phone("rep_a1")
    phone.login()

    def busy(*_args: Any, **_kwargs: Any) -> Any:
        raise sqlalchemy.exc.OperationalError(
            "UPDATE sync_state", {}, Exception("database is locked")
        )

    record_id = new_id()
    monkeypatch.setattr(sync_router, "apply_push", busy)
    response = phone.push_raw([phone.mutation("customers", record_id, customer_fields())])
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response.headers["Retry-After"] == "1"

    monkeypatch.undo()
    assert record_id not in {c["record_id"] for c in phone.sync_down()}
    result = phone.push_one("customers", record_id, customer_fields())
    assert result["status"] == "applied"


def test_pool_exhausted_is_the_error_the_server_maps(postgres_url: str) -> None:
    """Every pooled connection taken for ``pool_timeout`` raises SQLAlchemy's
    ``TimeoutError`` — not an OperationalError — so the server must map that class too."""
    from server.app import _UNAVAILABLE
    from server.db import make_engine

    engine = make_engine(postgres_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    try:
        with engine.connect(), pytest.raises(sqlalchemy.exc.TimeoutError) as caught:
            engine.connect()
        assert isinstance(caught.value, _UNAVAILABLE)
        assert not isinstance(caught.value, sqlalchemy.exc.OperationalError)
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["pool_timeout", "psycopg"])
def test_no_connection_to_be_had_answers_503_and_changes_nothing(
    sqlite_world: World, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    import psycopg

    phone = sqlite_world.phone("rep_a1")
    phone.login()

    def unavailable(*_args: Any, **_kwargs: Any) -> Any:
        if kind == "pool_timeout":
            raise sqlalchemy.exc.TimeoutError(
                "QueuePool limit of size 10 overflow 20 reached, connection timed out"
            )
        raise psycopg.OperationalError("connection is lost")

    record_id = new_id()
    monkeypatch.setattr(sync_router, "apply_push", unavailable)
    response = phone.push_raw([phone.mutation("customers", record_id, customer_fields())])
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response.headers["Retry-After"] == "1"

    monkeypatch.undo()
    assert record_id not in {c["record_id"] for c in phone.sync_down()}
    assert phone.push_one("customers", record_id, customer_fields())["status"] == "applied"
