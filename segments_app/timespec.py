"""Time in segment definitions: ISO values, relative times, spans and windows, all in UTC.

The contract's rules, implemented once for the validator and the compiler:

- An ISO 8601 value is a date `YYYY-MM-DD` (midnight UTC) or a datetime
  `YYYY-MM-DDTHH:MM[:SS[.ffffff]]` (a space may replace the `T`) with an optional
  offset `Z` or `+HH:MM`/`-HH:MM`; without an offset it is UTC.
- `{"ago": N, "unit": U}` is now minus N units; `{"last": N, "unit": U}` is the span
  [now minus N units, now], both ends included.
- Units: hours, days, weeks (7 days) and months, which are calendar months: now minus
  N months is the same day of the month clamped to that month's last day, at the
  same time of day (31 March minus 1 month is 29 February in a leap year).

>>> from datetime import datetime, UTC
>>> subtract(datetime(2024, 3, 31, 12, 0, tzinfo=UTC), 1, "months")
datetime.datetime(2024, 2, 29, 12, 0, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone

UNITS: tuple[str, ...] = ("hours", "days", "weeks", "months")

# The largest N per unit: about 200 years, so that "now minus N units" never leaves
# the range of a datetime and the number still means something to a marketer.
MAX_AMOUNT: dict[str, int] = {"hours": 200 * 366 * 24, "days": 200 * 366, "weeks": 200 * 53, "months": 200 * 12}

_ISO = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"(?:[T ](?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?"
    r"(?P<offset>Z|z|[+-]\d{2}(?::?\d{2})?)?)?"
)


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 date or datetime into an aware UTC datetime; ValueError when it is not one.

    >>> parse_iso("2024-05-01")
    datetime.datetime(2024, 5, 1, 0, 0, tzinfo=datetime.timezone.utc)
    >>> parse_iso("2024-05-01T12:30:00+02:00")
    datetime.datetime(2024, 5, 1, 10, 30, tzinfo=datetime.timezone.utc)
    >>> parse_iso("2024-05-01T12:30:00.123456789+0200")
    datetime.datetime(2024, 5, 1, 10, 30, 0, 123456, tzinfo=datetime.timezone.utc)
    """
    match = _ISO.fullmatch(text)
    if match is None:
        raise ValueError("not an ISO 8601 date or datetime")
    parts = match.groupdict()
    tz = UTC
    offset = parts["offset"]
    if offset and offset not in ("Z", "z"):
        digits = offset[1:].replace(":", "")  # +02:00, +0200 and +02 are all ISO 8601
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 23 or minutes > 59:
            raise ValueError("the UTC offset is out of range")
        delta = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-delta if offset[0] == "-" else delta)
    fraction = (parts["fraction"] or "")[:6].ljust(6, "0")  # beyond microseconds: truncated
    # datetime() checks the calendar (no 30 February, no hour 24) and raises ValueError.
    moment = datetime(
        int(parts["year"]),
        int(parts["month"]),
        int(parts["day"]),
        int(parts["hour"] or 0),
        int(parts["minute"] or 0),
        int(parts["second"] or 0),
        int(fraction),
        tzinfo=tz,
    )
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("the datetime is out of range") from exc


def add_months(moment: datetime, months: int) -> datetime:
    """Move by calendar months, clamping the day to the target month's last day."""
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise OverflowError("date value out of range")
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def subtract(moment: datetime, amount: int, unit: str) -> datetime:
    """`moment` minus `amount` units (hours, days, weeks or calendar months)."""
    if unit == "months":
        return add_months(moment, -amount)
    if unit == "weeks":
        return moment - timedelta(weeks=amount)
    if unit == "days":
        return moment - timedelta(days=amount)
    if unit == "hours":
        return moment - timedelta(hours=amount)
    raise ValueError(f"unknown unit {unit!r}")


def midnight_utc(day: date) -> datetime:
    """A date seen as a time: midnight UTC of that day (how `birth_date` is compared)."""
    return datetime.combine(day, time(0), tzinfo=UTC)


@dataclass(frozen=True)
class Absolute:
    """A fixed moment from an ISO value."""

    at: datetime

    def resolve(self, now: datetime) -> datetime:
        return self.at

    def as_json(self) -> str:
        return iso(self.at)


@dataclass(frozen=True)
class Ago:
    """`{"ago": N, "unit": U}`: now minus N units."""

    amount: int
    unit: str

    def resolve(self, now: datetime) -> datetime:
        return subtract(now, self.amount, self.unit)

    def as_json(self) -> dict:
        return {"ago": self.amount, "unit": self.unit}


TimeValue = Absolute | Ago


@dataclass(frozen=True)
class Span:
    """A closed span of time [start, end]; `end` None means no upper bound."""

    start: datetime
    end: datetime | None

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment and (self.end is None or moment <= self.end)


@dataclass(frozen=True)
class LastWindow:
    """`{"last": N, "unit": U}`: from now minus N units up to now, both included."""

    amount: int
    unit: str

    def span(self, now: datetime) -> Span:
        return Span(subtract(now, self.amount, self.unit), now)

    def as_json(self) -> dict:
        return {"last": self.amount, "unit": self.unit}


@dataclass(frozen=True)
class FixedWindow:
    """`{"from": ISO, "to": ISO}`: a fixed span; without `to` it has no upper bound."""

    start: datetime
    end: datetime | None

    def span(self, now: datetime) -> Span:
        return Span(self.start, self.end)

    def as_json(self) -> dict:
        data = {"from": iso(self.start)}
        if self.end is not None:
            data["to"] = iso(self.end)
        return data


Window = LastWindow | FixedWindow


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with a `Z`, e.g. `2024-05-01T10:30:00Z`."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
