"""UUIDv7 ids sort in the order this process made them, even within one millisecond."""

from __future__ import annotations

import uuid

from client_sdk._ids import uuid7


def test_ids_made_in_one_millisecond_sort_in_the_order_they_were_made() -> None:
    ids = [uuid7(1_700_000_000_000) for _ in range(5000)]  # overflows the 12-bit counter
    ids += [uuid7(1_699_999_999_990) for _ in range(3)]  # the clock stepped back a little
    ids += [uuid7() for _ in range(100)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122


def test_a_clock_set_to_another_day_is_taken_as_it_is() -> None:
    later = uuid7(1_800_000_000_000)
    earlier = uuid7(1_600_000_000_000)
    assert uuid.UUID(earlier).int >> 80 == 1_600_000_000_000
    assert earlier < later
