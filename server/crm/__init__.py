"""CRM domain rules the sync engine runs on every write path (push, manager API, import).

The engine (:mod:`server.repository.push`) knows nothing of customers or orders; a
schema brings its own :class:`~server.repository.units.PushRules`, run on each unit
(a mutation, or a group) after it is applied in memory and before anything is stored.
:func:`push_rules` picks the rules for a schema: the CRM's for ``fieldsync-crm``, none
for any other (an SDK developer's own schema).

* :mod:`.totals` — quote/order totals by :mod:`sync_protocol.orders`: stated totals are
  checked (``total_mismatch``); unstated ones are kept up to date by the server;
* :mod:`.references` — referenced records exist and are in the writer's scope;
* :mod:`.custom` — typed custom fields (:mod:`sync_protocol.custom_fields`);
* :mod:`.conversion` — a lead turns ``converted`` only with live links;
* :mod:`.service_desk` — ticket SLA due times, linked knowledge articles, survey
  questions and answers;
* :mod:`.duplicates` — ``possible_duplicate`` (last to refuse: it remembers accepted
  keys);
* :class:`server.integration.events.EventsRule` — notes ``lead.converted`` and
  ``order.placed`` of the accepted unit (it refuses nothing).

On flush, :mod:`.indexing` keeps the duplicate keys of every written record (its search
text is caught up apart, off the request path), :mod:`.reminders` the reminders of
tasks, contracts and customers, :mod:`.grants` the grants that take a ticket to its
assigned agent, and :func:`server.integration.events.write_events` the webhook outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sync_protocol import CRM_SCHEMA, SchemaRegistry

from ..integration.events import EventsRule, write_events
from ..repository.rows import RowState
from ..repository.units import NO_RULES, Batch, PushRules, UnitWrite
from .conversion import ConversionRule
from .custom import CustomFieldsRule
from .duplicates import DuplicatesRule
from .grants import index_grants
from .indexing import IndexedRow, index_keys
from .references import ReferencesRule
from .reminders import index_reminders
from .service_desk import ServiceDeskRule
from .totals import OrderTotalsRule


class UnitRule(Protocol):
    """One CRM check of a unit (raise :class:`~server.repository.units.Rejected`)."""

    def check_unit(self, batch: Batch, unit: Sequence[UnitWrite]) -> None: ...


class CrmRules:
    """Every CRM rule, in order, and the derived tables on flush."""

    def __init__(self, rules: Sequence[UnitRule]) -> None:
        self.rules = tuple(rules)

    def check_unit(self, batch: Batch, unit: Sequence[UnitWrite]) -> None:
        for rule in self.rules:
            rule.check_unit(batch, unit)

    def on_flush(self, batch: Batch, written: Sequence[RowState]) -> None:
        # A row the batch inserted (no ``pk``) has no keys or reminder yet: nothing to
        # delete first; a stored one's keys are replaced by difference with those of its
        # stored fields. Search entries are not written here (caught up from the
        # versions, :func:`.indexing.catch_up_search`).
        for fresh in (False, True):
            rows = [
                IndexedRow(
                    r.collection,
                    r.record_id,
                    r.record.fields,
                    r.record.deleted,
                    r.owner_id,
                    stored=None if r.stored is None or r.stored.deleted else r.stored.fields,
                )
                for r in written
                if (r.pk is None) == fresh
            ]
            index_keys(batch.conn, rows, fresh=fresh)
            index_reminders(batch.conn, rows, fresh=fresh)
        index_grants(batch, written)
        write_events(batch.conn, batch, written, batch.now_ms)


CRM_RULES = CrmRules(
    [
        ReferencesRule(),
        CustomFieldsRule(),
        OrderTotalsRule(),
        ConversionRule(),
        ServiceDeskRule(),
        DuplicatesRule(),  # last to refuse: it remembers the keys of accepted units
        EventsRule(),  # after every refusal: notes the events of accepted units
    ]
)


def push_rules(schema: SchemaRegistry) -> PushRules:
    """The domain rules of ``schema`` (none unless it is the CRM's)."""
    return CRM_RULES if schema.name == CRM_SCHEMA.name else NO_RULES


__all__ = ["CRM_RULES", "CrmRules", "push_rules"]
