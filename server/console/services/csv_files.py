"""CSV files as Chinese Excel writes and reads them.

* **Reading**: Excel on a Chinese Windows saves "CSV" in the ANSI code page (GBK); newer
  Excel saves "CSV UTF-8" with a byte-order mark; "Unicode text" is UTF-16 with tabs.
  :func:`decode` tries UTF-8 (with or without BOM) strictly, then UTF-16 when it has its
  BOM, then GB18030 (a superset of GBK and GB2312), and says which one it used.
* **Headers and values** may be the schema's Chinese or English labels (``姓名``,
  ``Name``) and choice labels (``意向客户``, ``Intent``): :func:`to_field_names` rewrites
  them to field names and codes, then the manager API's importer validates the rows as
  usual, so the report's row numbers are the spreadsheet's.
* **Writing**: every CSV the console sends starts with a UTF-8 BOM (see ``routes/common``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from sync_protocol import CRM_SCHEMA

from ..i18n import CHOICES


class Unreadable(ValueError):
    """The bytes are not text in any encoding we read."""


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    encoding: str


def decode(data: bytes) -> Decoded:
    if data.startswith(b"\xef\xbb\xbf"):
        return Decoded(data[3:].decode("utf-8", errors="strict"), "UTF-8 (BOM)")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return Decoded(data.decode("utf-16"), "UTF-16")
    try:
        return Decoded(data.decode("utf-8"), "UTF-8")
    except UnicodeDecodeError:
        pass
    try:
        return Decoded(data.decode("gb18030"), "GB18030/GBK")
    except UnicodeDecodeError as exc:
        raise Unreadable(str(exc)) from exc


def _labels(collection: str) -> dict[str, str]:
    entity = CRM_SCHEMA[collection]
    names: dict[str, str] = {}
    for name, spec in entity.fields.items():
        for label in (name, spec.label, spec.label_zh):
            if label:
                names[label.strip().casefold()] = name
    names["id"] = "id"
    names["编号"] = "id"
    return names


def _choice_codes(collection: str, field: str) -> dict[str, str]:
    spec = CRM_SCHEMA[collection].fields.get(field)
    if spec is None or not spec.choices:
        return {}
    codes: dict[str, str] = {}
    for code in spec.choices:
        codes[code.casefold()] = code
        for label in CHOICES.get(code, ()):
            codes.setdefault(label.casefold(), code)
    return codes


def to_field_names(collection: str, text: str) -> str:
    """The CSV with label headers and label values rewritten to names and codes."""
    sample = text[:2000]
    delimiter = (
        "\t" if "\t" in sample.split("\n", 1)[0] and "," not in sample.split("\n", 1)[0] else ","
    )
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return ""
    labels = _labels(collection)
    names = [labels.get(h.strip().casefold(), h.strip()) for h in header]
    codes = {i: _choice_codes(collection, n) for i, n in enumerate(names)}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for row in reader:
        writer.writerow(
            [
                codes[i].get(cell.strip().casefold(), cell) if codes.get(i) else cell
                for i, cell in enumerate(row)
            ]
        )
    return out.getvalue()


def template(collection: str, lang: str) -> str:
    """A header row in the page's language, for a manager to fill in."""
    entity = CRM_SCHEMA[collection]
    skip = {"owner_id", "custom", "location", "last_contacted_at"}
    header = [
        (spec.label_zh if lang == "zh" else spec.label) or name
        for name, spec in entity.fields.items()
        if name not in skip and not spec.read_only
    ]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(header)
    return out.getvalue()
