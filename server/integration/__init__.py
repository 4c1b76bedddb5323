"""The integration layer (集成层): how ERP, finance and e-mail systems connect — with an
API key, signed webhooks and a change feed, never with a person's password.

* :mod:`.keys` — API keys: hashed, scoped to a role and team through a service-account
  user, read-only or read-write, revocable, audited; :mod:`.auth` lets every manager
  route accept them (``Authorization: Bearer fsk_…``);
* :mod:`.events` — the outbox, written in the transaction of the change it announces
  (``record.changed``, ``lead.converted``, ``order.placed``; ``reminder.due`` by the
  dispatcher);
* :mod:`.dispatcher` — fan-out to webhooks in scope, HMAC-signed POSTs (:mod:`.signing`),
  retries with exponential backoff, every attempt in the delivery log;
* :mod:`.webhooks` — subscriptions and the delivery log;
* :mod:`.routes` — ``/v1/integration/keys``, ``/webhooks``, ``/webhooks/{id}/deliveries``
  and ``/changes`` (the change feed: pull's body and cursor semantics).

Tables in :mod:`.models` (migration ``0007_integration``). See docs/manager-api.md.
This package's ``__init__`` imports nothing eagerly: :mod:`server.crm` imports
:mod:`.events` while the server context is still being imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def install_integration(app: FastAPI) -> None:
    """Mount ``/v1/integration``."""
    from . import routes

    app.include_router(routes.router)


__all__ = ["install_integration"]
