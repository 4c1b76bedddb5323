"""CRM domain rules the sync engine runs on every write path (push, manager API, import).

The engine (:mod:`server.repository.push`) knows nothing of customers or orders; a
schema brings its own :class:`~server.repository.push.PushRules`, run on each unit
(a mutation, or a group) after it is applied in memory and before anything is stored.
:func:`push_rules` picks the rules for a schema: the CRM's for ``fieldsync-crm``, none
for any other (an SDK developer's own schema).

* :mod:`.totals` — quote/order totals by :mod:`sync_protocol.orders`: stated totals are
  checked (``total_mismatch``); unstated ones are kept up to date by the server.
"""

from __future__ import annotations

from collections.abc import Sequence

from sync_protocol import CRM_SCHEMA, SchemaRegistry

from ..repository.push import NO_RULES, PushBatch, PushRules, UnitWrite
from .totals import OrderTotalsRule


class CrmRules:
    """Every CRM rule, in order."""

    def __init__(self, rules: Sequence[PushRules]) -> None:
        self.rules = tuple(rules)

    def check_unit(self, batch: PushBatch, unit: Sequence[UnitWrite]) -> None:
        for rule in self.rules:
            rule.check_unit(batch, unit)


CRM_RULES = CrmRules([OrderTotalsRule()])


def push_rules(schema: SchemaRegistry) -> PushRules:
    """The domain rules of ``schema`` (none unless it is the CRM's)."""
    return CRM_RULES if schema.name == CRM_SCHEMA.name else NO_RULES


__all__ = ["CRM_RULES", "CrmRules", "push_rules"]
