"""Keeping ``record_keys`` (duplicates) and ``record_search`` (search, pinyin sort) true.

**Duplicate keys — in the write's transaction.** Every write path ends in a push flush,
which calls :func:`index_keys` with the rows it wrote: the duplicate check of the next
push (:mod:`.duplicates`) reads them, so they cannot wait.

**Search entries — caught up from the change sequence, off the request path.** An entry
costs far more than the rest of a record's write: the search text in Python (pinyin,
initials) and, on PostgreSQL, two GIN indexes (trigrams; the one- and two-character
pieces, ~150 keys a customer) — about half of a PostgreSQL push of new customers when
it was written inside the push. So no write path writes search entries. Every change
to a record gets a new ``records.version`` (a push, a manager edit, a reassignment, a
team move, a merge, a deletion), and :func:`catch_up_search` reads the records whose
version is above the cursor of ``search_state`` — like a pull, and like
:func:`server.reports.facts.catch_up` — and rewrites their entries (a deleted record
loses its entry), each entry stamped with the version it was made from:

* **who runs it** — a background task per server process (``search_index_interval_s``,
  :mod:`server.operations`) works off what the pushes left, in batches (one multi-row
  statement per batch); on PostgreSQL one instance at a time (an advisory transaction
  lock; an instance finding it taken skips its turn);
* **read your writes** — every reader of ``record_search`` (the manager API's search and
  pinyin order, :mod:`server.manager.search`; the console's customer and lead lists)
  calls :func:`ensure_search_current` first: when anything committed is not indexed yet,
  it catches up itself (waiting for a running catch-up, then doing the rest, up to the
  newest version committed when it began) before it reads. So a search never misses a
  committed write; what it costs is paid by the first search after a burst of writes
  the background task has not worked off yet;
* **the cursor never skips a late commit** — it only moves up to the visibility horizon
  (:func:`server.repository.state.read_counter`: every version up to it has committed
  and is visible). Records committed above the horizon are indexed too when they are
  seen (a reader must find them), but the cursor stays below them until the horizon
  passes, and their entries' versions tell the next catch-up they are done; a record
  with a lower version that commits late is therefore still above the cursor when it
  becomes visible;
* **scope** — ``record_search.owner_id`` copies the record's owner, so a scoped search
  never joins ``records``. A reassignment gives the record a new version, so its entry
  is redone with the new owner by the catch-up every search runs first (and
  :func:`move_search_owner` moves it at once in the reassignment's transaction); a team
  move changes who sees an owner, not the owner; a merge is a reassignment followed by
  pushes; a deletion removes the entry. Pages are checked again against
  ``records.owner_id`` (:mod:`server.manager.search`), so a stale copy could only hide.

The migration that created the tables backfills them with
:func:`server.crm.backfill.reindex_all`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    false,
    func,
    or_,
    select,
    text,
    true,
    update,
)

from sync_protocol import CRM_SCHEMA

from ..models import Record, RecordKey, RecordSearch, SearchState
from ..repository.state import read_counter
from ..repository.writing import delete_by_key, insert_rows
from .keys import KEYED, duplicate_keys, search_text, sort_key

keys_t = cast(Table, RecordKey.__table__)
search_t = cast(Table, RecordSearch.__table__)
records_t = cast(Table, Record.__table__)
state_t = cast(Table, SearchState.__table__)

#: Collections with search text: every CRM entity that declares search fields.
SEARCHED = tuple(e.name for e in CRM_SCHEMA.entities.values() if e.search_fields)
_CHUNK = 500
_KEY_COLUMNS = (("collection", "text"), ("record_id", "text"), ("key", "text"))
#: Records read per catch-up transaction (the window of versions one batch covers).
BATCH = 500
#: The clock of the catch-up's budgets (a test's to replace).
_clock = time.monotonic
#: PostgreSQL advisory lock of the search catch-up ("fssearch"): outside the range of the
#: writers' marks (:mod:`server.repository.state`), so it never holds back a pull.
LOCK_KEY = 0x6673736561726368


# Not frozen: a frozen dataclass sets each field through object.__setattr__ (~1.3 µs a
# row against ~0.3; the push flush builds one per written row). Treated as a value.
@dataclass(slots=True)
class IndexedRow:
    collection: str
    record_id: str
    fields: dict[str, Any]
    deleted: bool
    #: The record's ``owner_id`` column (copied into ``record_search``).
    owner_id: str | None = None
    #: The record's ``version`` (stamped on its search entry).
    version: int = 0
    #: Its duplicate keys when the caller has them already (computed when None).
    keys: frozenset[str] | None = None
    #: The fields stored for it before this write (``None``: nothing stored, or a
    #: deleted record — no keys): whose keys ``record_keys`` holds for it now. Not
    #: known (the default) only where nothing is stored (``fresh``).
    stored: Mapping[str, Any] | Literal["unknown"] | None = "unknown"


def index_keys(conn: Connection, rows: Sequence[IndexedRow], *, fresh: bool = False) -> None:
    """Replace the duplicate keys of ``rows`` (deleted rows lose theirs); ``fresh``: the
    table holds none of them yet (new records, a backfill), nothing to delete.

    **By difference.** ``record_keys`` is one B-tree keyed ``(collection, key,
    record_id)`` (migration 0019) with no index by record: what it holds for a record
    is the keys of the record's stored fields (``IndexedRow.stored`` — every write path
    ends in a push flush, which writes exactly those), so the keys those gave and the new
    fields do not are deleted by their full key, and only the new ones are inserted. An
    update that leaves the five key fields alone writes nothing here.

    A key inserted when it is already there is skipped, not an error: were the stored
    keys ever not what the stored fields give now (``duplicate_keys`` changed its
    normalisation without re-backfilling the table), the write still succeeds; the
    leftover key can only name a candidate that :mod:`.duplicates` re-checks against
    the record's fields, and a re-backfill (:func:`.backfill.reindex_all`) removes it."""
    gone: list[tuple[str, str, str]] = []
    key_rows: list[tuple[str, str, str]] = []
    for r in rows:
        if r.collection not in KEYED:
            continue
        new = _NO_KEYS if r.deleted else duplicate_keys(r.fields) if r.keys is None else r.keys
        if fresh:
            key_rows.extend((r.collection, r.record_id, k) for k in sorted(new))
            continue
        if isinstance(r.stored, str):
            raise ValueError(f"{r.collection}/{r.record_id}: the stored fields are needed")
        old = _NO_KEYS if r.stored is None else duplicate_keys(r.stored)
        if old != new:
            gone.extend((r.collection, k, r.record_id) for k in sorted(old - new))
            key_rows.extend((r.collection, r.record_id, k) for k in sorted(new - old))
    if gone:
        _delete_keys(conn, gone)
    # One statement straight to the driver (a push of 1,000 customers has ~4,000 keys:
    # SQLAlchemy's executemany paid a round of Python per row).
    insert_rows(conn, "record_keys", _KEY_COLUMNS, key_rows, skip_taken=True)


_NO_KEYS: frozenset[str] = frozenset()


def _delete_keys(conn: Connection, keys: Sequence[tuple[str, str, str]]) -> None:
    """Delete the ``record_keys`` rows ``(collection, key, record_id)``: each an equality
    on the full primary key (PostgreSQL: found key by key and deleted by ``ctid``, as
    :func:`server.repository.writing.delete_by_key` — plan-stable)."""
    if conn.dialect.name == "postgresql":
        for start in range(0, len(keys), _CHUNK * 4):
            payload = json.dumps(keys[start : start + _CHUNK * 4], ensure_ascii=False)
            conn.exec_driver_sql(
                "DELETE FROM record_keys WHERE ctid = ANY(ARRAY(SELECT q.ctid FROM "
                "jsonb_array_elements(%s::jsonb) AS e CROSS JOIN LATERAL (SELECT ctid FROM "
                "record_keys WHERE collection = e->>0 AND key = e->>1 AND record_id = e->>2 "
                "OFFSET 0) AS q))",
                (payload,),
            )
        return
    conn.exec_driver_sql(
        "DELETE FROM record_keys WHERE collection = ? AND key = ? AND record_id = ?", keys
    )


def _entry(r: IndexedRow) -> tuple[str, str, str, str, str | None, int]:
    return (
        r.collection,
        r.record_id,
        search_text(r.fields, CRM_SCHEMA[r.collection].search_fields),
        sort_key(r.fields),
        r.owner_id,
        r.version,
    )


_ENTRY_COLUMNS = "collection, record_id, text, sort_key, owner_id, version"


def index_search(conn: Connection, rows: Sequence[IndexedRow], *, fresh: bool = False) -> None:
    """Write the search entries of ``rows`` (a deleted row loses its entry); ``fresh``:
    the table holds none of them yet (a backfill): plain inserts, settled (in the GIN
    indexes at once). Otherwise one upsert of every live row (PostgreSQL: the batch
    travels as one JSON array, as :func:`server.reports.facts.catch_up` writes facts;
    the entries unsettled, :func:`settle_search`) and a delete by key of the deleted
    ones."""
    searched = [r for r in rows if r.collection in SEARCHED]
    removed = [r for r in searched if r.deleted]
    _write_search(conn, [_entry(r) for r in searched if not r.deleted], removed, fresh=fresh)


def _write_search(
    conn: Connection,
    entries: Sequence[tuple[str, str, str, str, str | None, int]],
    removed: Sequence[IndexedRow],
    *,
    fresh: bool = False,
) -> None:
    """:func:`index_search` once the entries (:func:`_entry`) are made."""
    if not fresh:
        _delete(conn, "record_search", removed)
    if not entries:
        return
    conflict = (
        ""
        if fresh
        else " ON CONFLICT (collection, record_id) DO UPDATE SET text = excluded.text, "
        "sort_key = excluded.sort_key, owner_id = excluded.owner_id, version = excluded.version"
    )
    if conn.dialect.name == "postgresql":
        payload = json.dumps(entries, ensure_ascii=False, separators=(",", ":"))
        if fresh:
            columns, settled = _ENTRY_COLUMNS, ""
        else:
            # Unsettled: outside the GIN indexes (partial, ``WHERE settled``) until
            # :func:`settle_search` — found meanwhile by ``LIKE`` (search.matching_entries).
            columns, settled = f"{_ENTRY_COLUMNS}, settled", ", false"
            conflict += ", settled = false"
        conn.exec_driver_sql(
            f"INSERT INTO record_search ({columns}) SELECT e->>0, e->>1, e->>2, e->>3, "
            f"e->>4, (e->>5)::bigint{settled} FROM jsonb_array_elements(%s::jsonb) AS e"
            f"{conflict}",
            (payload,),
        )
        return
    conn.exec_driver_sql(
        f"INSERT INTO record_search ({_ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?){conflict}",
        entries,
    )


def index_records(conn: Connection, rows: Sequence[IndexedRow], *, fresh: bool = False) -> None:
    """Duplicate keys and search entries of ``rows`` at once (the backfill)."""
    index_keys(conn, rows, fresh=fresh)
    index_search(conn, rows, fresh=fresh)


def move_search_owner(conn: Connection, keys: Sequence[tuple[str, str]], owner_id: str) -> None:
    """The records ``keys`` (collection, record_id) now belong to ``owner_id``: their
    search entries follow (a reassignment; entries of collections not searched are
    simply not there). Per collection, by key (an index search on both databases).
    The catch-up would redo these entries anyway (the records have new versions); this
    keeps the copy right before it runs."""
    by_collection: dict[str, list[str]] = {}
    for collection, record_id in keys:
        if collection in SEARCHED:
            by_collection.setdefault(collection, []).append(record_id)
    for collection, unsorted in sorted(by_collection.items()):
        ids = sorted(set(unsorted))
        for start in range(0, len(ids), _CHUNK):
            conn.execute(
                update(search_t)
                .where(
                    search_t.c.collection == collection,
                    search_t.c.record_id.in_(ids[start : start + _CHUNK]),
                )
                .values(owner_id=owner_id)
            )


def _delete(conn: Connection, table: str, rows: Sequence[IndexedRow]) -> None:
    """Delete ``table``'s rows of ``rows``: per collection, by key (an index search on
    both databases, :func:`server.repository.writing.delete_by_key`)."""
    by_collection: dict[str, list[str]] = {}
    for r in rows:
        by_collection.setdefault(r.collection, []).append(r.record_id)
    for collection, ids in sorted(by_collection.items()):
        for start in range(0, len(ids), _CHUNK):
            delete_by_key(conn, table, collection, sorted(ids[start : start + _CHUNK]))


# ---- catching up -----------------------------------------------------------------------


@dataclass(slots=True)
class SearchCatchUp:
    """What one :func:`catch_up_search` did."""

    cursor: int
    #: Entries written (new or redone) and removed (deleted records).
    indexed: int = 0
    removed: int = 0
    #: Transactions it took (0: nothing was pending).
    batches: int = 0
    #: PostgreSQL, ``wait=False``: another instance was catching up; nothing done.
    skipped: bool = False
    #: ``stop`` said so before the first batch: nothing done.
    yielded: bool = False
    #: PostgreSQL: entries settled afterwards (:func:`settle_search`, background only).
    settled: int = 0


def _pending_condition() -> Any:
    """A record (``records_t``, left-joined to its entry) whose entry is not what it
    should be: a live record without an entry of its version, or a deleted one with an
    entry."""
    has_entry = search_t.c.record_id.is_not(None)
    return or_(
        and_(records_t.c.deleted == true(), has_entry),
        and_(
            records_t.c.deleted == false(),
            or_(~has_entry, search_t.c.version != records_t.c.version),
        ),
    )


def _joined() -> Any:
    return records_t.outerjoin(
        search_t,
        and_(
            search_t.c.collection == records_t.c.collection,
            search_t.c.record_id == records_t.c.record_id,
        ),
    )


def read_cursor(conn: Connection) -> int:
    return int(conn.execute(select(state_t.c.cursor).where(state_t.c.id == 1)).scalar_one())


def _searched(conn: Connection) -> Any:
    """``records.collection`` is one of :data:`SEARCHED` — for the reads of what is
    pending above the cursor, which must be a range scan of ``records.version``.

    SQLite (no planner statistics) would rather serve ``collection IN (…)`` from the
    ``(collection, record_id)`` index and walk every customer, lead, … row there
    checking its version: ~64 ms at 112,000 records when nothing is pending — on every
    background tick (once a second, beside the pushes) and before every search. As
    ``collection || ''`` no index matches it, and the version range (empty when all is
    indexed) is the plan (``tests/server/crm/test_search_catch_up.py``). PostgreSQL
    plans the range by its statistics."""
    if conn.dialect.name == "postgresql":
        return records_t.c.collection.in_(SEARCHED)
    return (records_t.c.collection + "").in_(SEARCHED)


def search_pending(conn: Connection) -> bool:
    """Whether a committed change of a searched record is not in ``record_search`` yet
    (two reads: the cursor, then the records above it — an index range scan on
    ``records.version``, empty when all is indexed)."""
    cursor = read_cursor(conn)
    stmt = (
        select(records_t.c.version)
        .select_from(_joined())
        .where(records_t.c.version > cursor, _searched(conn), _pending_condition())
        .limit(1)
    )
    return conn.execute(stmt).first() is not None


def search_backlog(conn: Connection) -> int:
    """How many committed changes of searched records are not in ``record_search`` yet
    (a figure for benches and metrics; readers use :func:`search_pending`)."""
    cursor = read_cursor(conn)
    stmt = (
        select(func.count())
        .select_from(_joined())
        .where(records_t.c.version > cursor, _searched(conn), _pending_condition())
    )
    return int(conn.execute(stmt).scalar_one())


def _lock(conn: Connection, *, wait: bool) -> bool:
    """Take the catch-up's turn for this transaction. PostgreSQL: the advisory
    transaction lock (``wait=False``: give up when another instance holds it). SQLite:
    the write lock, taken first (a read-then-write transaction could not take it
    later once another writer committed).

    PostgreSQL: the transaction also commits without waiting for its WAL flush
    (``synchronous_commit = off``, this transaction only): search entries are derived
    from ``records`` and commit together with the cursor, so a crash that loses the last
    batches loses both, and the next catch-up redoes them — while a search waiting for a
    backlog does not wait for a disk flush per batch."""
    if conn.dialect.name == "postgresql":
        take = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
        row = conn.execute(
            text(f"SELECT set_config('synchronous_commit', 'off', true), {take}(:k)"),
            {"k": LOCK_KEY},
        ).one()
        return True if wait else bool(row[1])
    conn.execute(update(state_t).where(state_t.c.id == 1).values(cursor=state_t.c.cursor))
    return True


def _catch_up_batch(
    conn: Connection,
    outcome: SearchCatchUp,
    after: int,
    batch: int,
    cap: list[int],
    over: Callable[[], bool] | None = None,
) -> int:
    """One transaction's worth (after :func:`_lock`): the next ``batch`` records with a
    version above ``after`` (at least the cursor), their entries redone where they
    differ, the cursor moved. Returns where the next batch starts, or -1 when the window
    reached the end (nothing more to read now).

    ``over`` (the budget spent, or ``stop``): the window ends early at the first record
    met while it says so (at least one is taken) — exactly as if the window had been
    that short, so a budget holds to about one record's work instead of one batch's (the
    background tick runs beside pushes and holds the GIL, and on SQLite the write lock,
    meanwhile).

    ``cap`` (one catch-up's state, empty at first): once a window has read past its
    horizon, the next windows start above that window — so a version between the horizon
    and the window's end that commits *meanwhile* is never read by this catch-up, and
    the cursor must not move past it: it stays at most at the first such horizon for
    the rest of the catch-up (the next one re-reads from there; entries already of their
    version are not redone)."""
    cursor = read_cursor(conn)
    # The horizon first: every version up to it has committed and is visible to the
    # statements below (READ COMMITTED: a snapshot per statement, taken later).
    horizon = read_counter(conn).counter
    after = max(after, cursor)
    window = (
        select(
            records_t.c.collection,
            records_t.c.record_id,
            records_t.c.version,
            records_t.c.deleted,
            records_t.c.owner_id,
            records_t.c.data,
        )
        .where(records_t.c.version > after)
        .order_by(records_t.c.version)
        .limit(batch)
        .subquery("window")
    )
    rows = conn.execute(
        select(
            window,
            search_t.c.record_id.is_not(None).label("has_entry"),
            search_t.c.version.label("indexed"),
        )
        .select_from(
            window.outerjoin(
                search_t,
                and_(
                    search_t.c.collection == window.c.collection,
                    search_t.c.record_id == window.c.record_id,
                ),
            )
        )
        .order_by(window.c.version)
    ).all()
    entries: list[tuple[str, str, str, str, str | None, int]] = []
    removed: list[IndexedRow] = []
    read = len(rows)
    for i, r in enumerate(rows):
        if over is not None and i and over():
            read = i
            break
        if r.collection not in SEARCHED:
            continue
        if r.deleted:
            if r.has_entry:
                removed.append(IndexedRow(r.collection, r.record_id, {}, True, r.owner_id))
        elif r.indexed != r.version:
            fields = json.loads(r.data) if r.data else {}
            live = IndexedRow(r.collection, r.record_id, fields, False, r.owner_id, r.version)
            entries.append(_entry(live))  # the pinyin: what ``over`` is checked against
    _write_search(conn, entries, removed)
    outcome.removed += len(removed)
    outcome.indexed += len(entries)
    done = read == len(rows) < batch
    last = int(rows[read - 1].version) if rows else after
    # Everything visible up to the window's last version is indexed; the cursor moves
    # there, but never past the horizon (a version below it may still commit). Records
    # above the horizon were indexed all the same: their entries carry their versions.
    reach = horizon if done else min(horizon, last)
    if cap:
        reach = min(reach, cap[0])
    if not done and last > horizon and not cap:
        cap.append(horizon)
    if reach > cursor:
        conn.execute(update(state_t).where(state_t.c.id == 1).values(cursor=reach))
        cursor = reach
    outcome.cursor = cursor
    return -1 if done else last


def catch_up_search(
    engine: Engine,
    *,
    batch: int = BATCH,
    wait: bool = True,
    limit: int | None = None,
    budget_s: float | None = None,
    upto: int | None = None,
    checked: bool = False,
    settle: bool | None = None,
    stop: Callable[[], bool] | None = None,
) -> SearchCatchUp:
    """Bring ``record_search`` up to every committed change: transactions of ``batch``
    records each, until the end (or ``limit`` batches, or the first record met after
    ``budget_s`` seconds — at least one is indexed per call, and the batch it ends is
    committed —, or once the records up to version ``upto`` are done).
    ``wait=False`` (the background task): on PostgreSQL, skip when another instance is
    catching up. ``checked``: the caller found something pending already
    (:func:`ensure_search_current`). ``settle`` (default: the background task's
    ``wait=False``): then settle entries (:func:`settle_search`) with what is left of
    ``budget_s`` — after the catch-up, which is what a search waits for. ``stop`` (the
    background tick while pushes come: "a push is running now"): nothing is started
    while it says so, and a window is cut at the first record met once it does (as by
    the budget) — so the tick works in the gaps between pushes, not beside them."""
    started = _clock()
    outcome = _catch_up(engine, batch, wait, limit, budget_s, upto, checked, stop)
    if stop is not None and stop():
        return outcome
    if (wait is False if settle is None else settle) and engine.dialect.name == "postgresql":
        left = None if budget_s is None else budget_s - (_clock() - started)
        if left is None or left > 0:
            outcome.settled = settle_search(engine, budget_s=left)
    return outcome


def _catch_up(
    engine: Engine,
    batch: int,
    wait: bool,
    limit: int | None,
    budget_s: float | None,
    upto: int | None,
    checked: bool,
    stop: Callable[[], bool] | None = None,
) -> SearchCatchUp:
    if stop is not None and stop():
        return SearchCatchUp(0, yielded=True)
    cursor = 0
    if not checked:
        with engine.connect() as conn:
            # The common case — nothing pending, the cursor at the horizon — costs
            # three reads, no lock and no commit.
            pending = search_pending(conn)
            cursor = read_cursor(conn)
            behind = read_counter(conn).counter > cursor
            conn.rollback()
        if not pending and not behind:
            return SearchCatchUp(cursor)
    outcome = SearchCatchUp(cursor)
    after = cursor
    cap: list[int] = []
    deadline = None if budget_s is None else _clock() + budget_s

    def over() -> bool:
        return (deadline is not None and _clock() >= deadline) or (stop is not None and stop())

    while limit is None or outcome.batches < limit:
        if stop is not None and stop():
            outcome.yielded = not outcome.batches
            break
        if deadline is not None and outcome.batches and _clock() >= deadline:
            break
        with engine.begin() as conn:
            if not _lock(conn, wait=wait):
                outcome.skipped = True
                return outcome
            after = _catch_up_batch(
                conn,
                outcome,
                after,
                batch,
                cap,
                over if deadline is not None or stop is not None else None,
            )
        outcome.batches += 1
        if after < 0 or (upto is not None and after >= upto):
            break
    return outcome


#: Entries one settle transaction takes into the GIN indexes (~0.5-1 ms each on
#: PostgreSQL): short, so a catch-up meeting its row locks waits little.
SETTLE_BATCH = 100


def settle_search(
    engine: Engine, *, batch: int = SETTLE_BATCH, budget_s: float | None = None
) -> int:
    """PostgreSQL: put unsettled search entries into the GIN indexes (set ``settled``;
    the indexes are partial, ``WHERE settled``), ``batch`` per transaction, until none is
    left or the first transaction that ends after ``budget_s``. Returns how many.

    Correct whatever runs beside it: an entry is in the GIN indexes exactly when its row
    version says ``settled`` (that is what a partial index is), and a search matches the
    unsettled ones by ``LIKE`` — so settling only moves an entry from one way of being
    found to the other. Rows another transaction holds (a catch-up rewriting them, another
    instance settling) are skipped, never waited for. SQLite: nothing to do (0)."""
    if engine.dialect.name != "postgresql":
        return 0
    deadline = None if budget_s is None else _clock() + budget_s
    done = 0
    while True:
        with engine.begin() as conn:
            # (derived data: no need to wait for the WAL flush, as in :func:`_lock`)
            conn.execute(text("SELECT set_config('synchronous_commit', 'off', true)"))
            moved = conn.execute(
                text(
                    "UPDATE record_search SET settled = true WHERE (collection, record_id) IN "
                    "(SELECT collection, record_id FROM record_search WHERE NOT settled "
                    "LIMIT :n FOR UPDATE SKIP LOCKED)"
                ),
                {"n": batch},
            ).rowcount
        done += moved
        if moved < batch or (deadline is not None and _clock() >= deadline):
            return done


def search_unsettled(conn: Connection) -> int:
    """How many search entries are not in the GIN indexes yet (PostgreSQL; 0 on SQLite):
    a figure for benches — searches find them all the same."""
    if conn.dialect.name != "postgresql":
        return 0
    return int(
        conn.execute(
            select(func.count()).select_from(search_t).where(~search_t.c.settled)
        ).scalar_one()
    )


def ensure_search_current(conn: Connection) -> None:
    """Before reading ``record_search`` on ``conn``: catch up when a committed change is
    not indexed yet (read your writes). The catch-up runs on its own connection and
    commits, so ``conn``'s next statement sees it."""
    if search_pending(conn):
        # Up to the newest version committed now, not beyond: under writes faster than
        # indexing, chasing every later commit would never end (and a search only
        # owes its caller what committed before it started).
        upto = conn.execute(select(func.max(records_t.c.version))).scalar()
        catch_up_search(conn.engine, checked=True, upto=int(upto or 0))


__all__ = [
    "BATCH",
    "LOCK_KEY",
    "SEARCHED",
    "IndexedRow",
    "SearchCatchUp",
    "catch_up_search",
    "ensure_search_current",
    "index_keys",
    "index_records",
    "index_search",
    "move_search_owner",
    "search_backlog",
    "search_pending",
    "search_unsettled",
    "settle_search",
]
