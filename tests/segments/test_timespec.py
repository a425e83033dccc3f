"""Time values: ISO parsing in UTC and calendar months."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from segments_app.timespec import LastWindow, add_months, parse_iso, subtract


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T10:30", datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
        ("2024-05-01 10:30:15", datetime(2024, 5, 1, 10, 30, 15, tzinfo=UTC)),
        ("2024-05-01T10:30:15.5Z", datetime(2024, 5, 1, 10, 30, 15, 500000, tzinfo=UTC)),
        ("2024-05-01T00:30:00+02:00", datetime(2024, 4, 30, 22, 30, tzinfo=UTC)),
        ("2024-05-01T23:00:00-05:00", datetime(2024, 5, 2, 4, 0, tzinfo=UTC)),
        # ISO 8601 also allows the offset without its colon or minutes, a comma, and more fraction digits.
        ("2024-05-01T00:30:00+0200", datetime(2024, 4, 30, 22, 30, tzinfo=UTC)),
        ("2024-05-01T00:30:00+02", datetime(2024, 4, 30, 22, 30, tzinfo=UTC)),
        ("2024-05-01T10:30:15,25Z", datetime(2024, 5, 1, 10, 30, 15, 250000, tzinfo=UTC)),
        ("2024-05-01T10:30:15.123456789Z", datetime(2024, 5, 1, 10, 30, 15, 123456, tzinfo=UTC)),
    ],
)
def test_iso_values_are_read_in_utc(text, expected):
    assert parse_iso(text) == expected


@pytest.mark.parametrize(
    "text", ["2024-5-1", "2024-02-30", "2024-05-01T24:00", "20240501", "2024-05-01T10", "2024-05-01+02:00", "soon", "",
             "2024-05-01T10:30+2", "2024-05-01T10:30:15.1234567890Z"]
)
def test_not_iso_values(text):
    with pytest.raises(ValueError):
        parse_iso(text)


@pytest.mark.parametrize(
    ("moment", "months", "expected"),
    [
        (datetime(2024, 3, 31, 12, tzinfo=UTC), -1, datetime(2024, 2, 29, 12, tzinfo=UTC)),
        (datetime(2023, 3, 31, 12, tzinfo=UTC), -1, datetime(2023, 2, 28, 12, tzinfo=UTC)),
        (datetime(2024, 1, 15, tzinfo=UTC), -1, datetime(2023, 12, 15, tzinfo=UTC)),
        (datetime(2024, 5, 31, tzinfo=UTC), -6, datetime(2023, 11, 30, tzinfo=UTC)),
        (datetime(2024, 1, 31, tzinfo=UTC), 1, datetime(2024, 2, 29, tzinfo=UTC)),
        (datetime(2024, 2, 29, tzinfo=UTC), -12, datetime(2023, 2, 28, tzinfo=UTC)),
    ],
)
def test_calendar_months_clamp_to_the_last_day(moment, months, expected):
    assert add_months(moment, months) == expected


def test_units_and_spans():
    now = datetime(2024, 6, 15, 12, tzinfo=UTC)
    assert subtract(now, 2, "weeks") == datetime(2024, 6, 1, 12, tzinfo=UTC)
    assert subtract(now, 36, "hours") == datetime(2024, 6, 14, 0, tzinfo=UTC)
    span = LastWindow(1, "months").span(now)
    assert (span.start, span.end) == (datetime(2024, 5, 15, 12, tzinfo=UTC), now)
    assert span.contains(span.start) and span.contains(now)
