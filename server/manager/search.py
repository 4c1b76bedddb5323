"""Server search and pinyin order over the stored search keys (``record_search``).

``q`` matches a record when it is a substring of its search text — the searchable
fields as typed, compacted, and for Chinese their full pinyin and initials
(:mod:`server.crm.keys`): ``张``, ``zhangsan`` and ``zs`` all find 张三, and
``13800000000`` finds ``+86 138 0000 0000``. Results come in pinyin order of the name
(安 < 白 < 张), the order a Chinese user expects; ``sort=pinyin`` asks for that order
without a query. The match, the scope and — when nothing else filters — the page are
one SQL statement over the narrow ``record_search`` table joined to ``records``.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Connection, Table, and_, func, or_, select

from ..accounts import Principal
from ..crm.indexing import SEARCHED, search_t
from ..crm.keys import search_needle
from ..models import Record
from .records import _COLUMNS, StoredRow, _decode, scope_owners

records_t = cast(Table, Record.__table__)


def searchable(collection: str) -> bool:
    return collection in SEARCHED


def _like(needle: str) -> str:
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_rows(
    conn: Connection,
    principal: Principal,
    collection: str,
    query: str | None,
    *,
    descending: bool = False,
    page: tuple[int, int] | None = None,
) -> tuple[int, list[StoredRow]]:
    """(total, rows): live records of ``collection`` in scope matching ``query`` (every
    one when ``None``), in pinyin order; ``page=(offset, limit)`` pages in SQL."""
    needle = search_needle(query) if query else ""
    match: list[Any] = [search_t.c.collection == collection]
    if needle:
        match.append(search_t.c.text.like(_like(needle), escape="\\"))
    owners = scope_owners(principal)
    source: Any = search_t
    if owners is not None:  # below admin: the owner column of ``records`` decides
        source = search_t.join(
            records_t,
            and_(
                records_t.c.collection == search_t.c.collection,
                records_t.c.record_id == search_t.c.record_id,
            ),
        )
        match.append(or_(records_t.c.owner_id.in_(owners), records_t.c.owner_id.is_(None)))
    # ``record_search`` holds live records only (a deletion removes the entry), so an
    # admin's search never touches ``records`` until the page is loaded.
    order = (
        search_t.c.sort_key.desc() if descending else search_t.c.sort_key,
        search_t.c.record_id,
    )
    ids_stmt = select(search_t.c.record_id).select_from(source).where(*match).order_by(*order)
    if page is None:
        ids = list(conn.execute(ids_stmt).scalars())
        total = len(ids)
    else:
        offset, limit = page
        total = int(
            conn.execute(select(func.count()).select_from(source).where(*match)).scalar_one()
        )
        ids = list(conn.execute(ids_stmt.offset(offset).limit(limit)).scalars())
    rows: dict[str, StoredRow] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        for r in conn.execute(
            select(*_COLUMNS).where(
                records_t.c.collection == collection, records_t.c.record_id.in_(chunk)
            )
        ):
            row = _decode(r)
            if not row.deleted:
                rows[row.id] = row
    return total, [rows[i] for i in ids if i in rows]


__all__ = ["search_rows", "searchable"]
