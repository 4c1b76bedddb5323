"""An in-process fake Fieldsync server for tests, demos and trying the SDK offline.

:class:`FakeServer` speaks the sync protocol (sign-in and refresh, push with the
protocol's own merge and answer rules, mutation groups, paged pull with checkpoints,
``_conflicts`` records) over a :class:`~client_sdk.MockTransport`, with knobs for the
unhappy paths: expire tokens, revoke a device (with or without a wipe), evict a record,
demand a resync, fail the next requests.

It is *not* the real server (``server/``): it keeps one team in which everybody sees
every record. The wire conformance suite (``tests/conformance``) runs the same protocol
exchanges against it and against a real server process, so the two cannot drift apart.
"""

from ._server import FakeServer

__all__ = ["FakeServer"]
