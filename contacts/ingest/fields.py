"""Per-value parsers for ingest records: plain functions, no DRF, because they run a million times a minute.

Each parser takes the raw JSON value and returns the value to store, or raises
`FieldError` with a message (and, for nested values, the sub-path under the
field). `parse_record` applies a spec of parsers to one record and collects
located errors, so one bad value never hides another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import pycountry
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

Parser = Callable[[Any], Any]

COUNTRY_CODES: frozenset[str] = frozenset(country.alpha_2 for country in pycountry.countries)
# PostgreSQL's jsonb refuses deeper documents with a stack error; stop long before that.
MAX_JSON_DEPTH = 32
MAX_TAGS = 1000
TAG_MAX_LENGTH = 100
ATTRIBUTE_KEY_MAX_LENGTH = 100

_email_validator = EmailValidator()
_CENT = Decimal("0.01")


class FieldError(ValueError):
    """A value that cannot be stored; `subpath` locates it inside a nested value (e.g. "[2].sku").

    A nested value with several bad parts raises one FieldError carrying all of them in `problems`.
    """

    def __init__(self, message: str, subpath: str = "", *, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.subpath = subpath
        self.problems = problems or [(message, subpath)]


def check_storable_text(value: str) -> None:
    """PostgreSQL rejects NUL characters and psycopg cannot encode lone surrogates: refuse both up front."""
    if "\x00" in value:
        raise FieldError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FieldError("must be valid Unicode text") from exc


def text(max_length: int, *, required: bool = False) -> Parser:
    """A string of at most `max_length` characters. Optional fields store "" (or spaces only) as null."""

    def parse(value: Any) -> str | None:
        if value is None:
            if required:
                raise FieldError("may not be null")
            return None
        if not isinstance(value, str):
            raise FieldError("must be a string")
        if not value.strip():
            if required:
                raise FieldError("may not be blank")
            return None
        if len(value) > max_length:
            raise FieldError(f"must be at most {max_length} characters (got {len(value)})")
        check_storable_text(value)
        return value

    return parse


def email(value: Any) -> str | None:
    parsed = text(254)(value)
    if parsed is None:
        return None
    parsed = parsed.strip()
    try:
        _email_validator(parsed)
    except ValidationError as exc:
        raise FieldError("must be a valid email address") from exc
    return parsed


def choice(choices: Iterable[str]) -> Parser:
    allowed = frozenset(choices)
    listed = ", ".join(sorted(allowed))

    def parse(value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise FieldError("must be a string")
        if value not in allowed:
            raise FieldError(f"must be one of: {listed}")
        return value

    return parse


def country(value: Any) -> str | None:
    """ISO 3166-1 alpha-2, any case in, upper case out."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise FieldError("must be a string")
    code = value.strip().upper()
    if code not in COUNTRY_CODES:
        raise FieldError("must be an ISO 3166-1 alpha-2 country code, e.g. PL or DE")
    return code


def to_utc(moment: datetime) -> datetime:
    """No offset means UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_datetime_value(value: Any) -> datetime:
    """ISO 8601 date or datetime; no offset means UTC and a bare date means midnight UTC."""
    if not isinstance(value, str):
        raise FieldError("must be an ISO 8601 date or datetime string, e.g. 2024-05-01T12:00:00Z")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise FieldError("must be an ISO 8601 date or datetime, e.g. 2024-05-01T12:00:00Z") from exc
    try:
        return to_utc(moment)
    except OverflowError as exc:
        raise FieldError("is out of range") from exc


def optional_datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    return parse_datetime_value(value)


def required_datetime(value: Any) -> datetime:
    if value is None:
        raise FieldError("may not be null")
    return parse_datetime_value(value)


# Nothing is dated after the moment it is received, so that "now" is at or after every stored order and
# event and the stored figures (last order, last open) answer recency questions exactly. The clocks of the
# systems that send data differ by seconds, rarely more: a time at most MAX_CLOCK_AHEAD ahead is stored
# as the moment of receipt (`not_after`). Anything later is almost always a local time sent without its
# offset (read as UTC) and is refused.
MAX_CLOCK_AHEAD = timedelta(minutes=5)


def not_after(moment: datetime, received_at: datetime) -> datetime:
    """The time to store for a record dated `moment` and received at `received_at`."""
    return min(moment, received_at)


def past_datetime(value: Any) -> datetime:
    """A required time at most MAX_CLOCK_AHEAD ahead of the server's clock, as given (store it `not_after`
    the moment of receipt)."""
    moment = required_datetime(value)
    ahead = moment - datetime.now(UTC)
    if ahead > MAX_CLOCK_AHEAD:
        raise FieldError(
            f"lies {_duration(ahead)} in the future; orders and events may be dated at most "
            f"{_duration(MAX_CLOCK_AHEAD)} ahead of the server's clock (a time without an offset is read as UTC)"
        )
    return moment


def _duration(span: timedelta) -> str:
    """'5 minutes', '2 h 05 min', '3 days' (whole minutes, rounded up)."""
    minutes = -int(-span.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes // (24 * 60)} days"


def optional_date(value: Any) -> date | None:
    """An ISO 8601 date; a datetime is accepted and its calendar date (as written) kept."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise FieldError("must be an ISO 8601 date string, e.g. 1990-05-17")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.strip()).date()
    except ValueError as exc:
        raise FieldError("must be an ISO 8601 date, e.g. 1990-05-17") from exc


def money(max_digits: int, *, required: bool = False) -> Parser:
    """A non-negative amount as a JSON number or numeric string, rounded to cents (float noise like 0.30000000004)."""
    limit = Decimal(10) ** (max_digits - 2)

    def parse(value: Any) -> Decimal | None:
        if value is None or value == "":
            if required:
                raise FieldError("is required")
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise FieldError("must be a number")
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise FieldError("must be a number") from exc
        if not amount.is_finite():
            raise FieldError("must be a finite number")
        if amount < 0:
            raise FieldError("must not be negative")
        if amount >= limit:
            raise FieldError(f"must be less than {limit}")
        return amount.quantize(_CENT, rounding=ROUND_HALF_UP)

    return parse


def positive_int(value: Any) -> int:
    if value is None:
        raise FieldError("may not be null")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError("must be a whole number")
    if value < 1:
        raise FieldError("must be at least 1")
    if value > 2_147_483_647:
        raise FieldError("is too large")
    return value


def check_json(value: Any) -> None:
    """Walk a JSON value (without recursion, so depth cannot blow the stack) checking every string and key."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise FieldError(f"is nested more than {MAX_JSON_DEPTH} levels deep", path)
        if isinstance(item, str):
            try:
                check_storable_text(item)
            except FieldError as exc:
                raise FieldError(exc.message, path) from exc
        elif isinstance(item, dict):
            for key, child in item.items():
                try:
                    check_storable_text(key)
                except FieldError as exc:
                    raise FieldError(f"key {exc.message}", path) from exc
                stack.append((child, f"{path}.{key}", depth + 1))
        elif isinstance(item, list):
            for index, child in enumerate(item):
                stack.append((child, f"{path}[{index}]", depth + 1))


def json_object(value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FieldError("must be an object")
    check_json(value)
    return value


def attributes(value: Any) -> dict:
    """Custom attributes: an object whose null values mean "remove this key"."""
    parsed = json_object(value)
    for key in parsed:
        if not key.strip():
            raise FieldError("attribute names may not be blank")
        if len(key) > ATTRIBUTE_KEY_MAX_LENGTH:
            raise FieldError(f"attribute names must be at most {ATTRIBUTE_KEY_MAX_LENGTH} characters", f".{key}")
    return parsed


def tag_names(value: Any) -> list[str]:
    """A list of tag names (null means no tags), deduplicated in order."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise FieldError("must be a list of tag names")
    if len(value) > MAX_TAGS:
        raise FieldError(f"must have at most {MAX_TAGS} tags")
    names: dict[str, None] = {}
    for index, name in enumerate(value):
        try:
            parsed = text(TAG_MAX_LENGTH, required=True)(name)
        except FieldError as exc:
            raise FieldError(exc.message, f"[{index}]") from exc
        names[parsed.strip()] = None
    return list(names)


def parse_record(
    raw: Any, *, spec: Mapping[str, Parser], required: Iterable[str], path: str, index: int
) -> tuple[dict | None, list[dict]]:
    """Apply `spec` to one record; returns (values, errors) with errors located from the body root.

    >>> parse_record({"sku": 5}, spec={"sku": text(100)}, required=["sku"], path="products[0]", index=0)
    (None, [{'index': 0, 'path': 'products[0].sku', 'message': 'must be a string'}])
    """
    if not isinstance(raw, dict):
        return None, [{"index": index, "path": path, "message": "must be an object"}]
    errors: list[dict] = []
    values: dict = {}
    for key, value in raw.items():
        parser = spec.get(key)
        if parser is None:
            errors.append({"index": index, "path": f"{path}.{key}", "message": "unknown field"})
            continue
        try:
            values[key] = parser(value)
        except FieldError as exc:
            errors.extend(
                {"index": index, "path": f"{path}.{key}{subpath}", "message": message}
                for message, subpath in exc.problems
            )
    for key in required:
        if key not in raw:
            errors.append({"index": index, "path": f"{path}.{key}", "message": "this field is required"})
    if errors:
        return None, errors
    return values, []


def parse_records(
    records: list[Any], *, spec: Mapping[str, Parser], required: Iterable[str], root: str
) -> tuple[list[tuple[int, dict]], list[dict]]:
    """Validate each record on its own: (index, values) of the good ones and located errors of the bad ones."""
    good: list[tuple[int, dict]] = []
    errors: list[dict] = []
    for index, raw in enumerate(records):
        values, record_errors = parse_record(raw, spec=spec, required=required, path=f"{root}[{index}]", index=index)
        if values is None:
            errors.extend(record_errors)
        else:
            good.append((index, values))
    return good, errors
