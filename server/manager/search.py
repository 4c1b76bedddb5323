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
    joined = records_t.join(
        search_t,
        and_(
            search_t.c.collection == records_t.c.collection,
            search_t.c.record_id == records_t.c.record_id,
        ),
    )
    where: list[Any] = [records_t.c.collection == collection, records_t.c.deleted.is_(False)]
    needle = search_needle(query) if query else ""
    if needle:
        where.append(search_t.c.text.like(_like(needle), escape="\\"))
    owners = scope_owners(principal)
    if owners is not None:
        where.append(or_(records_t.c.owner_id.in_(owners), records_t.c.owner_id.is_(None)))
    order = search_t.c.sort_key.desc() if descending else search_t.c.sort_key
    stmt = (
        select(*_COLUMNS).select_from(joined).where(*where).order_by(order, records_t.c.record_id)
    )
    if page is None:
        rows = [_decode(r) for r in conn.execute(stmt)]
        return len(rows), rows
    offset, limit = page
    total = int(conn.execute(select(func.count()).select_from(joined).where(*where)).scalar_one())
    rows = [_decode(r) for r in conn.execute(stmt.offset(offset).limit(limit))]
    return total, rows


__all__ = ["search_rows", "searchable"]
