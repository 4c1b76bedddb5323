"""The duplicate check as it was before issue 19's fast paths (``server/crm/
duplicates.py`` at 71ffce5, with the frozen reference keys of :mod:`.reference_keys`):
the reference the rule is held equal to (``test_duplicates_fast.py``). Do not optimise
this file."""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Set
from typing import Any, cast

from server.crm.keys import DUPLICATE_FIELDS, matched_on
from server.repository.push import LOOKUP_CHUNK
from server.repository.units import Batch, Rejected, UnitWrite
from server.repository.writing import KEYS, key_list, lookup
from sync_protocol import ErrorCode
from tests.server.crm.reference_keys import duplicate_keys

OVERRIDE = "possible_duplicate"
#: What each collection is compared with.
TARGETS: dict[str, tuple[str, ...]] = {
    "customers": ("customers",),
    "leads": ("leads", "customers"),
}
_SEEN = "duplicate_keys_seen"
_NONE: frozenset[str] = frozenset()


_STORED = "duplicate_keys_stored"
_COMPARED = "duplicate_keys_compared"


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


def _stored(batch: Batch, keys: Set[str]) -> dict[str, list[tuple[str, str]]]:
    """Stored records holding each of ``keys`` (in ``record_keys`` at the batch's reads).

    The first call reads the keys of *every* mutation of the push at once — a push of
    1,000 new customers asks the database once, not once per customer; a key only the
    merged record has (an update naming one of the fields) is read when first asked."""
    cache = cast(dict[str, list[tuple[str, str]]] | None, batch.scratch.get(_STORED))
    if cache is not None and all(k in cache for k in keys):
        return cache  # the common case after the first call: read with the batch's keys
    wanted = set(keys)
    if cache is None:
        cache = batch.scratch[_STORED] = {}
        compared: set[str] = set()
        for m in batch.mutations:
            if m.collection in TARGETS:
                compared.update(TARGETS[m.collection])
                if m.op == "upsert":
                    wanted |= duplicate_keys(m.fields)
        # Every unit checked in this batch is one of its mutations: its targets are here.
        batch.scratch[_COMPARED] = _lookup_sql(sorted(compared))
    missing = sorted(k for k in wanted if k not in cache)
    for key in missing:
        cache[key] = []
    if missing and batch.conn.dialect.name == "postgresql":
        # Pushes do not serialise on PostgreSQL: two pushes creating the same phone at
        # the same moment would both find it free. Claiming each key — a row of
        # ``duplicate_key_claims`` inserted or updated (one statement, in hash order)
        # — makes the second wait until the first commits; its lookup below, a later
        # statement, then sees the first's keys. Rows, not advisory locks: a push of
        # 1,000 customers claims ~4,000 keys, and advisory locks live in the shared lock
        # table (max_locks_per_transaction × max_connections = 6,400 entries by
        # default): two such pushes at once ran out of it ("out of shared memory").
        batch.conn.exec_driver_sql(_LOCK_KEYS, (key_list(missing),))
    for start in range(0, len(missing), LOOKUP_CHUNK):  # a push's keys in one statement
        chunk = missing[start : start + LOOKUP_CHUNK]
        sql = cast(str, batch.scratch[_COMPARED])
        for collection, record_id, key in lookup(batch.conn, sql, "key", chunk):
            cache[key].append((collection, record_id))
    return cache


def _seen(batch: Batch) -> dict[str, set[tuple[str, str]]]:
    return cast(dict[str, set[tuple[str, str]]], batch.scratch.setdefault(_SEEN, {}))


class ReferenceDuplicatesRule:
    def check_unit(self, batch: Batch, unit: Sequence[UnitWrite]) -> None:
        for w in unit:
            new_keys = self._new_keys(w)
            if not new_keys:
                continue
            if OVERRIDE not in (w.mutation.override or ()):
                matches = self._matches(batch, w, new_keys)
                if matches:
                    first = matches[0]
                    raise Rejected(
                        ErrorCode.POSSIBLE_DUPLICATE,
                        f"{w.mutation.collection}: looks like an existing record "
                        f"(same {first['matched_on'].replace('_', ' + ')}); "
                        "resend with override to save it anyway",
                        {"matches": matches},
                        mutation_id=w.mutation.id,
                    )
        seen = _seen(batch)
        for w in unit:  # accepted: later units of this push compare with it too
            if w.mutation.collection in TARGETS and not w.row.record.deleted:
                found = (w.row.collection, w.row.record_id)
                for key in duplicate_keys(w.row.record.fields):
                    seen.setdefault(key, set()).add(found)

    @staticmethod
    def _new_keys(w: UnitWrite) -> Set[str]:
        m = w.mutation
        if m.collection not in TARGETS or m.op != "upsert" or w.row.record.deleted:
            return _NONE
        before = w.before if w.before is not None and not w.before.record.deleted else None
        if before is None:
            return duplicate_keys(w.row.record.fields)
        if not any(n in m.fields for n in DUPLICATE_FIELDS):
            return _NONE
        return duplicate_keys(w.row.record.fields) - duplicate_keys(before.record.fields)

    def _matches(self, batch: Batch, w: UnitWrite, keys: Set[str]) -> list[dict[str, Any]]:
        targets = TARGETS[w.mutation.collection]
        stored = _stored(batch, keys)
        candidates: dict[tuple[str, str], str] = {}
        for key in sorted(keys):
            for found in stored.get(key, ()):
                if found[0] in targets:
                    candidates.setdefault(found, key)
        seen = _seen(batch)
        for key in keys:
            for found in seen.get(key, ()):
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
