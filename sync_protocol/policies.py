"""Value-level merges of the field policies ``max``, ``union`` and ``append``.

Pure functions of (base, local, remote) values, used by :func:`sync_protocol.merge_record`
for concurrent writes, and usable on their own (an SDK can preview what the server will
make of an edit).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .schema import FieldSpec, FieldType


def greater(a: Any, b: Any, spec: FieldSpec | None = None) -> bool:
    """``a > b`` for the ``max`` policy; ``None`` is the smallest value.

    Date-times are compared as instants (``…+08:00`` versus ``…Z``), not as strings.
    """
    if b is None:
        return a is not None
    if a is None:
        return False
    if spec is not None and spec.type is FieldType.DATETIME:
        try:
            return _instant(a) > _instant(b)
        except (TypeError, ValueError):
            pass
    try:
        return bool(a > b)
    except TypeError:
        return str(a) > str(b)


def _instant(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def merge_union(base: Any, local: Any, remote: Any) -> list[Any]:
    """Three-way set merge of lists: keep both sides' additions, honour removals.

    Order: the server's order first, then the device's additions in its order.
    """
    base_l = list(base or [])
    local_l = list(local or [])
    remote_l = list(remote or [])
    removed = [v for v in base_l if v not in local_l]
    out = [v for v in remote_l if v not in removed]
    for v in local_l:
        if v not in base_l and v not in out:
            out.append(v)
    return out


def merge_append(base: Any, local: Any, remote: Any) -> str:
    """Append-only text: what the device added to its base is appended to the server's.

    The device's addition is the text after its ``base``; when the device rewrote the
    text instead of appending, the whole of it is appended (kept, never dropped).
    Leading lines of the addition that the server already holds, in order, after the
    base — the device's own earlier append of a queued edit, or a retried one — are not
    repeated.
    Appended text starts on a new line.
    """
    base_s = str(base or "")
    local_s = str(local or "")
    remote_s = str(remote or "")
    addition = local_s[len(base_s) :] if local_s.startswith(base_s) else local_s
    addition = addition.lstrip("\n")
    if not addition:
        return remote_s
    tail = remote_s[len(base_s) :] if remote_s.startswith(base_s) else remote_s
    tail_lines = tail.split("\n")
    lines = addition.split("\n")
    lines = lines[_held_prefix(tail_lines, lines) :]
    if not lines:
        return remote_s
    rest = "\n".join(lines)
    if not remote_s:
        return rest
    return remote_s + ("" if remote_s.endswith("\n") else "\n") + rest


def _held_prefix(held: list[str], lines: list[str]) -> int:
    """How many leading ``lines`` already appear, in order, among the ``held`` lines.

    Matching in order (not necessarily adjacent) makes the merge idempotent: the text it
    produces holds the whole addition in order, so merging the same edit again adds
    nothing.
    """
    i = 0
    for line in held:
        if i < len(lines) and line == lines[i]:
            i += 1
    return i
