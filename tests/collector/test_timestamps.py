"""collector.pipeline.timestamps: Segment's clock-skew formula and time forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.pipeline.timestamps import UnreadableTime, iso_z, parse_time, segment_times

times = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
RECEIVED = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


@given(device=times, sent=times, received=times)
def test_corrected_time_keeps_the_device_interval(
    device: datetime, sent: datetime, received: datetime
) -> None:
    t = segment_times(timestamp=device, original_timestamp=None, sent_at=sent, received_at=received)
    assert received - t.timestamp == sent - device
    assert t.original_timestamp == device and t.sent_at == sent


def test_skewed_device_clock_an_hour_ahead() -> None:
    sent = RECEIVED + timedelta(hours=1)
    t = segment_times(
        timestamp=sent - timedelta(seconds=5),
        original_timestamp=None,
        sent_at=sent,
        received_at=RECEIVED,
    )
    assert t.timestamp == RECEIVED - timedelta(seconds=5)


def test_without_sent_at_the_device_value_stands_and_without_any_receipt() -> None:
    device = datetime(2020, 1, 1, tzinfo=UTC)
    t = segment_times(timestamp=device, original_timestamp=None, sent_at=None, received_at=RECEIVED)
    assert t.timestamp == device
    t = segment_times(timestamp=None, original_timestamp=device, sent_at=None, received_at=RECEIVED)
    assert t.timestamp == device and t.original_timestamp == device
    t = segment_times(timestamp=None, original_timestamp=None, sent_at=device, received_at=RECEIVED)
    assert t.timestamp == RECEIVED and t.original_timestamp is None


@given(times)
def test_iso_z_round_trips_to_the_millisecond(value: datetime) -> None:
    text = iso_z(value)
    assert text.endswith("Z") and "+" not in text
    assert parse_time(text) == value.replace(microsecond=value.microsecond // 1000 * 1000)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-01T10:00:00", datetime(2024, 1, 1, 10, tzinfo=UTC)),
        ("2024-01-01T10:00:00Z", datetime(2024, 1, 1, 10, tzinfo=UTC)),
        ("2024-01-01T12:00:00+02:00", datetime(2024, 1, 1, 10, tzinfo=UTC)),
        ("2024-01-01", datetime(2024, 1, 1, tzinfo=UTC)),
        (1714564800000, datetime(2024, 5, 1, 12, tzinfo=UTC)),
        (1714564800, datetime(2024, 5, 1, 12, tzinfo=UTC)),
        (1714564800.5, datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        (
            datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))),
            datetime(2024, 1, 1, 10, tzinfo=UTC),
        ),
        (None, None),
    ],
)
def test_accepted_forms(value: object, expected: datetime | None) -> None:
    assert parse_time(value) == expected


@pytest.mark.parametrize(
    "value",
    ["Invalid Date", "", "  ", "2024-02-30", "yesterday", True, [], {}, 1e300, float("nan")],
)
def test_unreadable_forms_raise_without_quoting(value: object) -> None:
    with pytest.raises(UnreadableTime) as info:
        parse_time(value)
    if isinstance(value, str) and value.strip():
        assert value not in str(info.value)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=5,
    )
)
def test_any_json_value_parses_or_is_unreadable(value: object) -> None:
    try:
        result = parse_time(value)
    except UnreadableTime:
        return
    assert result is None or result.tzinfo is UTC
