"""Hybrid logical clock: wire form, monotonicity, receive(), and the skewed-device rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync_protocol import (
    DEFAULT_MAX_DRIFT_MS,
    ClockSkew,
    ErrorCode,
    HybridLogicalClock,
    MergeStatus,
    Timestamp,
    check_drift,
    clamp,
    merge_record,
)
from sync_protocol.hlc import MAX_COUNTER, is_hlc

from .helpers import T0, policy_entity, stored_at_v1, upsert

DAY_MS = 24 * 3600 * 1000


class FakeWall:
    """A settable physical clock."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def test_wire_form_is_fixed_width_and_sorts_like_the_timestamps() -> None:
    stamps = [
        Timestamp(5, 0, "b"),
        Timestamp(5, 1, "a"),
        Timestamp(40, 0, "a"),
        Timestamp(5, 0, "a"),
        Timestamp(T0, 99_999, "z"),
    ]
    assert sorted(stamps) == [Timestamp.parse(s) for s in sorted(t.encode() for t in stamps)]
    assert Timestamp(T0, 7, "dev-1").encode() == f"{T0:015d}:00007:dev-1"
    assert Timestamp.parse(Timestamp(T0, 7, "dev-1").encode()) == Timestamp(T0, 7, "dev-1")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1:2:3",
        f"{T0:015d}:00007:",
        f"{T0:015d}:7:dev",
        f"+{T0:014d}:00007:dev",
        f"{T0:015d}:0000x:dev",
        f"{T0:015d}:00007:a:b",
        f"{T0:016d}:00007:dev",
    ],
)
def test_parse_rejects_malformed_timestamps(text: str) -> None:
    assert not is_hlc(text)
    with pytest.raises(ValueError):
        Timestamp.parse(text)


def test_timestamp_rejects_out_of_range_values() -> None:
    with pytest.raises(ValueError):
        Timestamp(-1, 0, "a")
    with pytest.raises(ValueError):
        Timestamp(0, MAX_COUNTER + 1, "a")
    with pytest.raises(ValueError):
        HybridLogicalClock("a:b")


def test_now_is_monotonic_when_the_wall_clock_goes_backwards() -> None:
    wall = FakeWall(T0)
    clock = HybridLogicalClock("dev", wall=wall)
    first = clock.now()
    wall.ms = T0 - 60_000  # NTP steps the clock back a minute
    second = clock.now()
    third = clock.now()
    assert first < second < third
    assert second.wall_ms == T0 and (second.counter, third.counter) == (1, 2)
    wall.ms = T0 + 1
    assert clock.now() == Timestamp(T0 + 1, 0, "dev")


def test_now_is_monotonic_when_the_counter_is_exhausted() -> None:
    clock = HybridLogicalClock("dev", wall=FakeWall(T0), last=Timestamp(T0, MAX_COUNTER, "dev"))
    nxt = clock.now()
    assert nxt > Timestamp(T0, MAX_COUNTER, "dev") and nxt.wall_ms == T0 + 1


def test_clock_resumes_after_its_persisted_last_reading() -> None:
    stored = Timestamp(T0 + 10_000, 4, "dev").encode()
    clock = HybridLogicalClock("dev", wall=FakeWall(T0), last=stored)
    assert clock.now() > Timestamp.parse(stored)


@pytest.mark.parametrize(
    ("local", "physical", "remote", "expected"),
    [
        # remote ahead of both: adopt its wall time, counter + 1
        ((T0, 3), T0, (T0 + 50, 7), (T0 + 50, 8)),
        # physical clock ahead of both: counter resets
        ((T0, 3), T0 + 100, (T0 + 50, 7), (T0 + 100, 0)),
        # local ahead: keep wall, counter + 1
        ((T0 + 200, 3), T0, (T0 + 50, 7), (T0 + 200, 4)),
        # local and remote on the same millisecond: max counter + 1
        ((T0 + 50, 9), T0, (T0 + 50, 7), (T0 + 50, 10)),
        ((T0 + 50, 2), T0, (T0 + 50, 7), (T0 + 50, 8)),
    ],
)
def test_receive_moves_past_everything_seen(
    local: tuple[int, int],
    physical: int,
    remote: tuple[int, int],
    expected: tuple[int, int],
) -> None:
    clock = HybridLogicalClock("me", wall=FakeWall(physical), last=Timestamp(*local, "me"))
    remote_ts = Timestamp(*remote, "other")
    got = clock.receive(remote_ts.encode())
    assert (got.wall_ms, got.counter) == expected
    assert got > remote_ts and got > Timestamp(*local, "me")
    assert clock.now() > got  # and stays monotonic afterwards


def test_a_device_three_days_ahead_is_refused_with_details() -> None:
    ahead = Timestamp(T0 + 3 * DAY_MS, 0, "fast-phone")
    with pytest.raises(ClockSkew) as caught:
        check_drift(ahead.encode(), server_now_ms=T0)
    err = caught.value
    assert err.code is ErrorCode.CLOCK_SKEW and err.http_status == 409
    assert err.details == {
        "drift_ms": 3 * DAY_MS,
        "server_time_ms": T0,
        "max_drift_ms": DEFAULT_MAX_DRIFT_MS,
    }
    assert err.to_body().code == "clock_skew"
    # behind or within the limit is fine: an offline device carries old timestamps
    assert check_drift(Timestamp(T0 - 30 * DAY_MS, 0, "old"), server_now_ms=T0).node == "old"
    within = Timestamp(T0 + DEFAULT_MAX_DRIFT_MS, 0, "ok")
    assert check_drift(within, server_now_ms=T0) == within


def test_clamp_pulls_a_skewed_timestamp_back_to_the_drift_limit() -> None:
    ahead = Timestamp(T0 + 3 * DAY_MS, 4, "fast-phone")
    clamped = clamp(ahead, server_now_ms=T0, max_drift_ms=DEFAULT_MAX_DRIFT_MS)
    assert clamped == Timestamp(T0 + DEFAULT_MAX_DRIFT_MS, 0, "fast-phone")
    # the counter goes too: a skewed device's edits clamp to one equal timestamp, so a
    # counter from an earlier millisecond cannot order them backwards
    later_ms = Timestamp(T0 + 3 * DAY_MS + 1, 0, "fast-phone")
    assert clamp(later_ms, server_now_ms=T0, max_drift_ms=DEFAULT_MAX_DRIFT_MS) == clamped
    check_drift(clamped, server_now_ms=T0)  # now acceptable
    normal = Timestamp(T0 - 5, 0, "n")
    assert clamp(normal.encode(), server_now_ms=T0, max_drift_ms=1) == normal


def test_a_clamped_write_does_not_beat_a_later_normal_write_forever() -> None:
    schema = policy_entity()
    fast = clamp(
        Timestamp(T0 + 3 * DAY_MS, 0, "fast"), server_now_ms=T0, max_drift_ms=DEFAULT_MAX_DRIFT_MS
    )
    record = stored_at_v1({"title": "base"}, at=Timestamp(T0 - 1000, 0, "origin").encode())
    record = merge_record(
        schema, None, upsert({"title": "fast"}, fast.encode()), record, new_version=2
    ).record
    # a concurrent write one minute later still loses (within the tolerated drift) ...
    soon = Timestamp(T0 + 60_000, 0, "normal").encode()
    lost = merge_record(schema, None, upsert({"title": "soon"}, soon), record, new_version=3)
    assert lost.record.fields["title"] == "fast" and lost.status is MergeStatus.MERGED
    # ... but once real time passes the drift limit, a normal write wins; unclamped, the
    # skewed write would have won for three days
    later = Timestamp(T0 + DEFAULT_MAX_DRIFT_MS + 1, 0, "normal").encode()
    won = merge_record(schema, None, upsert({"title": "later"}, later), record, new_version=3)
    assert won.record.fields["title"] == "later"


def test_a_device_merging_the_server_clock_orders_its_next_edit_after_it() -> None:
    device = HybridLogicalClock("slow", wall=FakeWall(T0 - 10 * 60_000))
    server_hlc = Timestamp(T0, 3, "server")
    device.receive(server_hlc)
    assert device.now() > server_hlc


def _parse_by_parts(text: object) -> Timestamp:
    """The wire form's rule written out piece by piece (the parser before issue 19)."""
    parts = text.split(":", 2) if isinstance(text, str) else []
    if (
        len(parts) != 3
        or len(parts[0]) != 15
        or len(parts[1]) != 5
        or not (parts[0].isascii() and parts[0].isdigit())
        or not (parts[1].isascii() and parts[1].isdigit())
        or not parts[2]
        or ":" in parts[2]
    ):
        raise ValueError(f"not an HLC timestamp: {text!r}")
    return Timestamp(int(parts[0]), int(parts[1]), parts[2])


_HLC_PIECES = st.sampled_from(
    ["0", "9", "٣", "²", ":", "-", "\n", " ", "a", "张", "\x00", "00000", "000000000000000"]
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.lists(_HLC_PIECES, max_size=8).map("".join), st.text(max_size=30)))
def test_parse_accepts_exactly_the_wire_form(text: str) -> None:
    """``Timestamp.parse`` (a pattern, then no range checks) accepts what the piecewise
    rule accepts — ASCII digits only, a non-empty node without ``:`` — and gives the same
    timestamp, equal to one built through the checked constructor."""
    for candidate in (text, f"{T0:015d}:00042:{text}", f"{text}:00042:dev", f"{T0:015d}:{text}"):
        try:
            expected = _parse_by_parts(candidate)
        except ValueError:
            with pytest.raises(ValueError):
                Timestamp.parse(candidate)
            continue
        parsed = Timestamp.parse(candidate)
        assert parsed == expected
        assert (parsed.wall_ms, parsed.counter, parsed.node) == (
            expected.wall_ms,
            expected.counter,
            expected.node,
        )
        assert parsed.encode() == candidate
        assert hash(parsed) == hash(expected)


def test_parse_refuses_what_is_not_text() -> None:
    for value in (None, 17, b"001764720000123:00001:dev"):
        with pytest.raises(ValueError):
            Timestamp.parse(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "٠٠١٧٦٤٧٢٠٠٠٠١٢٣:00001:dev",  # Arabic-Indic digits: isdigit() and \d say yes
        "001764720000123:٠٠٠٠١:dev",
        "00176472000012３:00001:dev",  # a full-width digit
        "001764720000123:00001:dev:x",
        "001764720000123:00001:",
        "001764720000123:00001",
        "001764720000123:000010:dev",
    ],
)
def test_parse_refuses_lookalikes_of_the_wire_form(text: str) -> None:
    with pytest.raises(ValueError):
        _parse_by_parts(text)
    with pytest.raises(ValueError):
        Timestamp.parse(text)


def test_parse_keeps_a_node_with_spaces_and_line_breaks() -> None:
    text = f"{T0:015d}:00001:dev 1\n张"
    assert Timestamp.parse(text) == _parse_by_parts(text) == Timestamp(T0, 1, "dev 1\n张")
