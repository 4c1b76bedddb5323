"""Duplicate detection on every write path: ``possible_duplicate``, overridable.

A customer whose normalised phone/mobile, e-mail or name + company
(:func:`server.crm.keys.duplicate_keys`) equals another live customer's — or a lead
matching a live lead or customer — is refused with ``possible_duplicate`` (HTTP-table
409). It runs on creation and on every update that changes ``name``, ``company``,
``phone``, ``mobile`` or ``email``, and only for the keys the write introduced, so a
duplicate someone deliberately kept does not come back on every edit.

``details.matches`` lists each match as ``{collection, record_id, matched_on, name,
owner_id}`` when the writer can see it, and only ``{matched_on, visible: false}`` when
it belongs to someone else (another rep's customer: 撞单 — the writer learns it exists,
not whose it is). The writer saves anyway by resending with
``Mutation.override: ["possible_duplicate"]`` (the manager API and CSV import have the
same switch).

Matches come from ``record_keys`` and from this push's own earlier writes; a candidate
is re-checked against its state in the batch, so a record whose phone changed earlier
in the same push no longer matches its old number. This rule must run **last** among
the CRM rules: it remembers the keys of each unit it accepts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Set
from typing import Any, cast

from sync_protocol import ErrorCode

from ..repository.push import LOOKUP_CHUNK
from ..repository.units import Batch, Rejected, UnitWrite
from ..repository.writing import KEYS, key_list, lookup
from .keys import DUPLICATE_FIELDS, duplicate_keys, matched_on

OVERRIDE = "possible_duplicate"
#: What each collection is compared with.
TARGETS: dict[str, tuple[str, ...]] = {
    "customers": ("customers",),
    "leads": ("leads", "customers"),
}
_STATE = "duplicate_keys"
_NONE: frozenset[str] = frozenset()


def _lookup_sql(collections: Sequence[str]) -> str:
    """The ``record_keys`` lookup over ``collections`` (the push's targets only: a push
    of customers probes the index once per key, not once per key and collection)."""
    names = ", ".join(f"'{c}'" for c in collections)
    return f"SELECT collection, record_id, key FROM record_keys WHERE collection IN ({names}) AND {{1}}"


#: A claim row per key (its 64-bit hash) in ``duplicate_key_claims`` (migration 0016),
#: inserted or updated in hash order: the row stays locked until this transaction ends.
_LOCK_KEYS = (
    "INSERT INTO duplicate_key_claims (h) "
    f"SELECT DISTINCT hashtextextended(k.key, 0) FROM {KEYS} ORDER BY 1 "
    "ON CONFLICT (h) DO UPDATE SET h = excluded.h"
)

#: The records of this push holding a key: one record as a bare ``(collection,
#: record_id)`` (nearly every key of a push), more as a set.
_Holders = tuple[str, str] | set[tuple[str, str]]


class _Keys:
    """The rule's state in one push batch (``batch.scratch``)."""

    __slots__ = ("looked", "seen", "sql", "stored")

    def __init__(self) -> None:
        #: The lookup over the push's targets (``None``: nothing read yet).
        self.sql: str | None = None
        #: Every key read from ``record_keys`` so far (held by a record or not).
        self.looked: set[str] = set()
        #: Stored records holding a key, for the keys some record holds (most keys of a
        #: push of new customers are held by none: no object is made for them).
        self.stored: dict[str, list[tuple[str, str]]] = {}
        #: Keys of this push's accepted units and the records holding them.
        self.seen: dict[str, _Holders] = {}


def _state(batch: Batch) -> _Keys:
    state = cast(_Keys | None, batch.scratch.get(_STATE))
    if state is None:
        state = batch.scratch[_STATE] = _Keys()
    return state


def _read_stored(batch: Batch, state: _Keys, keys: Set[str]) -> None:
    """Make sure ``state.stored`` knows the stored records holding each of ``keys`` (in
    ``record_keys`` at the batch's reads).

    The first call reads the keys of *every* mutation of the push at once — a push of
    1,000 new customers asks the database once, not once per customer; a key only the
    merged record has (an update naming one of the fields) is read when first asked."""
    if state.sql is not None and keys <= state.looked:
        return  # the common case after the first call: read with the batch's keys
    wanted = set(keys)
    if state.sql is None:
        compared: set[str] = set()
        for m in batch.mutations:
            if m.collection in TARGETS:
                compared.update(TARGETS[m.collection])
                if m.op == "upsert":
                    wanted |= duplicate_keys(m.fields)
        # Every unit checked in this batch is one of its mutations: its targets are here.
        state.sql = _lookup_sql(sorted(compared))
    fresh = wanted - state.looked
    if not fresh:
        return
    state.looked |= fresh
    postgres = batch.conn.dialect.name == "postgresql"
    # Sorted: SQLite builds and probes the ``IN`` list ~25 % faster in key order (4,000
    # keys: ~3.5 against ~4.8 ms) than the sort costs (~0.7 ms).
    missing = sorted(fresh)
    if postgres:
        # Pushes do not serialise on PostgreSQL: two pushes creating the same phone at
        # the same moment would both find it free. Claiming each key — a row of
        # ``duplicate_key_claims`` inserted or updated (one statement, in hash order)
        # — makes the second wait until the first commits; its lookup below, a later
        # statement, then sees the first's keys. Rows, not advisory locks: a push of
        # 1,000 customers claims ~4,000 keys, and advisory locks live in the shared lock
        # table (max_locks_per_transaction × max_connections = 6,400 entries by
        # default): two such pushes at once ran out of it ("out of shared memory").
        batch.conn.exec_driver_sql(_LOCK_KEYS, (key_list(missing),))
    stored = state.stored
    for start in range(0, len(missing), LOOKUP_CHUNK):  # a push's keys in one statement
        chunk = missing[start : start + LOOKUP_CHUNK]
        for collection, record_id, key in lookup(batch.conn, state.sql, "key", chunk):
            found = stored.get(key)
            if found is None:
                stored[key] = [(collection, record_id)]
            else:
                found.append((collection, record_id))


class DuplicatesRule:
    def check_unit(self, batch: Batch, unit: Sequence[UnitWrite]) -> None:
        state = _state(batch)
        stored, seen = state.stored, state.seen
        # Each member's duplicate keys as the check computed them (``None``: not asked),
        # for the keys the batch remembers below: computed once per member.
        held: list[frozenset[str] | None] = []
        for w in unit:
            m = w.mutation
            keys: frozenset[str] | None = None
            new_keys: Set[str] = _NONE
            if m.collection in TARGETS and m.op == "upsert" and not w.row.record.deleted:
                # The keys the write introduced: all of a new (or revived) record's; of an
                # update naming one of the fields, those its previous state lacked.
                before = w.before
                if before is None or before.record.deleted:
                    keys = new_keys = duplicate_keys(w.row.record.fields)
                elif any(n in m.fields for n in DUPLICATE_FIELDS):
                    keys = duplicate_keys(w.row.record.fields)
                    new_keys = keys - duplicate_keys(before.record.fields)
            held.append(keys)
            if not new_keys or OVERRIDE in (m.override or ()):
                continue
            if (
                state.sql is not None
                and new_keys <= state.looked
                and stored.keys().isdisjoint(new_keys)
                and seen.keys().isdisjoint(new_keys)
            ):
                continue  # read already, and no record holds any of them: no match
            matches = self._matches(batch, state, w, new_keys)
            if matches:
                first = matches[0]
                raise Rejected(
                    ErrorCode.POSSIBLE_DUPLICATE,
                    f"{m.collection}: looks like an existing record "
                    f"(same {first['matched_on'].replace('_', ' + ')}); "
                    "resend with override to save it anyway",
                    {"matches": matches},
                    mutation_id=m.id,
                )
        for w, keys in zip(unit, held, strict=True):
            # accepted: later units of this push compare with it too
            row = w.row
            if w.mutation.collection in TARGETS and not row.record.deleted:
                found = (row.collection, row.record_id)
                if keys is None:
                    keys = duplicate_keys(row.record.fields)
                for key in keys:
                    holders = seen.get(key)
                    if holders is None:
                        seen[key] = found
                    elif isinstance(holders, tuple):
                        if holders != found:
                            seen[key] = {holders, found}
                    else:
                        holders.add(found)

    def _matches(
        self, batch: Batch, state: _Keys, w: UnitWrite, keys: Set[str]
    ) -> list[dict[str, Any]]:
        _read_stored(batch, state, keys)
        stored, seen = state.stored, state.seen
        if stored.keys().isdisjoint(keys) and seen.keys().isdisjoint(keys):
            return []  # no record holds any of them: nothing to confirm
        targets = TARGETS[w.mutation.collection]
        candidates: dict[tuple[str, str], str] = {}
        for key in sorted(keys):
            for found in stored.get(key, ()):
                if found[0] in targets:
                    candidates.setdefault(found, key)
        for key in keys:
            holders = seen.get(key)
            if holders is None:
                continue
            for found in (holders,) if isinstance(holders, tuple) else holders:
                if found[0] in targets:
                    candidates.setdefault(found, key)
        return list(self._confirmed(batch, w, candidates.items()))

    @staticmethod
    def _confirmed(
        batch: Batch, w: UnitWrite, candidates: Iterable[tuple[tuple[str, str], str]]
    ) -> Iterable[dict[str, Any]]:
        own = (w.row.collection, w.row.record_id)
        converted_into = w.row.record.fields.get("converted_customer_id")
        for (collection, record_id), key in sorted(candidates):
            if (collection, record_id) == own or record_id == converted_into:
                continue
            row = batch.row(collection, record_id)
            if row is None or row.record.deleted or key not in duplicate_keys(row.record.fields):
                continue
            if batch.principal.sees_owner(row.owner_id):
                yield {
                    "collection": collection,
                    "record_id": record_id,
                    "matched_on": matched_on(key),
                    "name": row.record.fields.get("name"),
                    "owner_id": row.owner_id,
                }
            else:
                yield {"matched_on": matched_on(key), "visible": False}
