"""Server search and pinyin order over the stored search keys (``record_search``).

``q`` matches a record when it is a substring of its search text — the searchable
fields as typed, compacted, and for Chinese their full pinyin and initials
(:mod:`server.crm.keys`): ``张``, ``zhangsan`` and ``zs`` all find 张三, and
``13800000000`` finds ``+86 138 0000 0000``. Results come in pinyin order of the name
(安 < 白 < 张), the order a Chinese user expects; ``sort=pinyin`` asks for that order
without a query.

One statement over the narrow ``record_search`` table answers the match, the scope and
the page; ``records`` is read only for the page's rows:

* **up to date** — the push does not write search entries; they are caught up from the
  change sequence (:mod:`server.crm.indexing`), and the search first catches up
  whatever committed change is not indexed yet, so it never misses a committed write;
* **scope** — ``record_search.owner_id`` is a copy of the record's owner (kept by the
  catch-up, :mod:`server.crm.indexing`), filtered by the one scope rule
  (:func:`server.scope.owner_filter`); the page's rows are then checked again against
  the owner stored in ``records`` (:meth:`Principal.sees_owner`), so a stale copy could
  only ever hide a record, never show one outside the caller's scope;
* **match** — ``LIKE '%needle%'`` (PostgreSQL: served by the trigram index for three
  characters or more); on PostgreSQL a one- or two-character needle (``zw``, ``张伟``,
  ``张``), which trigrams cannot serve, is ``fieldsync_search_grams(collection, text) @>
  ARRAY['customers:zw']`` instead (migration ``0011``): the same answer — the needle is
  one of the text's one- or two-character pieces — read from a GIN index of those
  pieces, as a materialised first step (the planner would otherwise walk the sort index
  computing every passed row's grams);
* **order** — ``ORDER BY sort_key`` with the page's ``LIMIT``: a broad match walks the
  ``(collection, sort_key)`` index and stops after one page, a narrow one sorts its few
  matching rows. The total is counted only when the page does not show it (a first page
  shorter than the limit is the whole answer).

SQLite runs the same statement without the grams test (a scan of the narrow table).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, Text, bindparam, func, select, union_all
from sqlalchemy.dialects.postgresql import ARRAY

from ..accounts import Principal
from ..crm.indexing import SEARCHED, ensure_search_current, search_t
from ..crm.keys import search_needle
from ..models import Record
from ..scope import owner_filter, visible_owners
from .records import _COLUMNS, StoredRow, _decode

records_t = cast(Table, Record.__table__)

#: The PostgreSQL function of migration ``0011`` (the GIN index is on its result).
GRAMS_FUNCTION = "fieldsync_search_grams"
#: Needles this short are served by the grams index (trigrams need three characters).
GRAMS_UP_TO = 2


def searchable(collection: str) -> bool:
    return collection in SEARCHED


def _like(needle: str) -> str:
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def grams_served(conn: Connection, needle: str) -> bool:
    """Whether ``needle`` is read from the grams index (PostgreSQL, 1–2 characters)."""
    return conn.dialect.name == "postgresql" and 0 < len(needle) <= GRAMS_UP_TO


def text_match(conn: Connection, collection: str, needle: str) -> list[Any]:
    """The conditions on ``record_search`` for *settled* records of ``collection`` whose
    text contains ``needle`` (on SQLite, every record: all are settled) — one branch of
    :func:`matching_entries`, which adds the unsettled ones."""
    if grams_served(conn, needle):
        # exact on its own (a needle has no "|", so it never spans two values): a LIKE
        # beside it would only spoil the row estimate that picks the plan
        grams = getattr(func, GRAMS_FUNCTION)(search_t.c.collection, search_t.c.text)
        wanted = bindparam("search_gram", [f"{collection}:{needle}"], type_=ARRAY(Text))
        return [grams.op("@>")(wanted)]
    return [search_t.c.text.like(_like(needle), escape="\\")]


def matching_entries(
    conn: Connection, collection: str, needle: str, columns: Sequence[Any], where: Sequence[Any]
) -> Any:
    """``SELECT columns FROM record_search WHERE where`` and, when ``needle`` is not
    empty, the entry's text contains it.

    PostgreSQL: the GIN indexes (trigrams; one- and two-character pieces) hold settled
    entries only — they are partial, ``WHERE settled`` — and the catch-up writes entries
    unsettled (:func:`server.crm.indexing.settle_search` settles them later). So a text
    match is two branches, ``UNION ALL``: the settled entries through the index
    (:func:`text_match`) and the unsettled ones by ``LIKE`` (off the partial index
    ``ix_record_search_unsettled``: none, or one burst's worth). An entry is exactly one
    of the two in a statement's snapshot, so the union is the same answer as one
    ``LIKE`` over every entry. Two branches rather than an ``OR``: a bitmap scan would
    recheck an ``OR`` row by row, computing the grams of every candidate."""
    if not needle:
        return select(*columns).where(*where)
    if conn.dialect.name != "postgresql":
        return select(*columns).where(*where, *text_match(conn, collection, needle))
    settled = select(*columns).where(
        *where, search_t.c.settled, *text_match(conn, collection, needle)
    )
    unsettled = select(*columns).where(
        *where,
        ~search_t.c.settled,
        # (an unscoped grams search has no collection test: a gram names its
        # collection, an unsettled entry's text does not)
        search_t.c.collection == collection,
        search_t.c.text.like(_like(needle), escape="\\"),
    )
    return union_all(settled, unsettled)


def search_rows(
    conn: Connection,
    principal: Principal,
    collection: str,
    query: str | None,
    *,
    descending: bool = False,
    page: tuple[int, int] | None = None,
    owner_id: str | None = None,
) -> tuple[int, list[StoredRow]]:
    """(total, rows): live records of ``collection`` in scope matching ``query`` (every
    one when ``None``), owned by ``owner_id`` when given, in pinyin order;
    ``page=(offset, limit)`` pages in SQL."""
    # Every committed write is in the table before it is read (read your writes: the
    # push leaves search entries to the catch-up, :mod:`server.crm.indexing`).
    ensure_search_current(conn)
    needle = search_needle(query) if query else ""
    match: list[Any] = []
    scoped = visible_owners(principal) is not None or owner_id is not None
    if scoped or not grams_served(conn, needle):
        # a gram names its collection (customers:张), so an unscoped grams lookup needs
        # no collection test; a scoped one keeps it: it leads the owner index
        match.append(search_t.c.collection == collection)
    match.append(owner_filter(principal, search_t.c.owner_id))
    if owner_id is not None:
        match.append(search_t.c.owner_id == owner_id)
    # ``record_search`` holds live records only (a deletion removes the entry).
    matched: Any = matching_entries(
        conn, collection, needle, (search_t.c.record_id, search_t.c.sort_key), match
    )
    if grams_served(conn, needle):
        # read the matches off the grams index first: walking the sort index instead
        # would compute the grams of every row it passes (the planner cannot tell)
        matched = matched.cte("matched").prefix_with("MATERIALIZED")
    else:
        matched = matched.subquery("matched")
    order = (
        matched.c.sort_key.desc() if descending else matched.c.sort_key,
        matched.c.record_id.desc() if descending else matched.c.record_id,
    )
    ids_stmt = select(matched.c.record_id).order_by(*order)
    if page is None:
        ids = list(conn.execute(ids_stmt).scalars())
        total = len(ids)
    else:
        offset, limit = page
        ids = list(conn.execute(ids_stmt.offset(offset).limit(limit)).scalars())
        if offset == 0 and len(ids) < limit:
            total = len(ids)  # the whole answer is on this page
        else:
            total = int(conn.execute(select(func.count()).select_from(matched)).scalar_one())
    rows: dict[str, StoredRow] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        for r in conn.execute(
            select(*_COLUMNS).where(
                records_t.c.collection == collection, records_t.c.record_id.in_(chunk)
            )
        ):
            row = _decode(r)
            # the stored owner decides: a stale copy in record_search never widens scope
            if not row.deleted and principal.sees_owner(row.owner_id):
                rows[row.id] = row
    return total, [rows[i] for i in ids if i in rows]


__all__ = [
    "GRAMS_FUNCTION",
    "grams_served",
    "matching_entries",
    "search_rows",
    "searchable",
    "text_match",
]
