"""The poll's loop connection (:class:`server.repository.pull.LoopReader`) is never
closed under a coroutine still inside a statement on it: psycopg's ``close()`` frees the
driver's connection without taking the connection's lock."""

from __future__ import annotations

import asyncio

import pytest

from server.repository.pull import LoopReader
from tests.server.conftest import build_world


@pytest.mark.postgres
def test_a_dropped_connection_is_closed_by_its_last_user_not_under_it(
    postgres_url: str,
) -> None:
    world, client = build_world(postgres_url, search_index_interval_s=0)
    with client:
        reader = LoopReader(world.context.engine)

        async def scenario() -> None:
            assert await reader.read() is not None
            conn = reader.dbapi_connection
            assert conn is not None
            async with reader._using(conn):  # another poll, mid-statement
                await reader.aclose()  # this one timed out: drop the connection
                assert reader.dbapi_connection is None  # new polls open another
                assert not conn.closed  # but not closed under the other poll
                async with conn.cursor() as cursor:  # which finishes its statement
                    await cursor.execute("SELECT 1")
                    assert await cursor.fetchone() == (1,)
            assert conn.closed  # closed by its last user
            assert await reader.read() is not None  # a fresh connection
            fresh = reader.dbapi_connection
            assert fresh is not None and fresh is not conn
            await reader.aclose()  # nobody inside: closed at once
            assert fresh.closed

        asyncio.run(scenario())
    world.context.engine.dispose()
