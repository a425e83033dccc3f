"""Segment definitions: JSON in, validated frozen dataclasses out (contract: docs/segment-definition.md).

`parse_definition` checks everything (shape, unknown keys, types, operators, values,
limits, segment references and cycles) and either returns a `Group` or raises
`DefinitionError` carrying every located error it found:

>>> parse_definition({"match": "all", "conditions": [
...     {"type": "attribute", "field": "country", "op": "eq", "value": "PL"},
...     {"type": "orders", "measure": "sum", "op": "between", "value": [500, 100]}]},
...     catalog=Catalog(workspace_id=None))
Traceback (most recent call last):
...
segments_app.definition.DefinitionError: conditions[1].value: between needs [low, high] with low <= high ...

Paths start at the definition's root: `conditions[2].conditions[0].filters[1].value`;
the root itself is the empty path. Values come out normalised: numbers as `Decimal`,
lists as tuples, times as `timespec.Absolute`/`timespec.Ago`, spans and windows as
`timespec.LastWindow`/`timespec.FixedWindow`.

Beyond the contract's own limits (depth 6, 100 conditions, text 500 characters,
lists 1,000 items) segment references may nest 20 deep, numbers must be finite, within +-10^15 and have at most 6
decimal places, so that they compare exactly on PostgreSQL and SQLite, and text may
not contain the NUL character (PostgreSQL cannot store it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from . import catalog as cat
from .catalog import Catalog, Field
from .timespec import (
    MAX_AMOUNT,
    UNITS,
    Absolute,
    Ago,
    FixedWindow,
    LastWindow,
    TimeValue,
    Window,
    parse_iso,
)

MAX_DEPTH = 6
MAX_CONDITIONS = 100
MAX_TEXT = 500
MAX_LIST = 1000
MAX_NUMBER = Decimal(10) ** 15
MAX_PLACES = 6
# Segments referring to segments referring to ...: deep enough for any real use, and
# shallow enough that inlining them can never exhaust the stack.
MAX_REFERENCE_DEPTH = 20
_ATTRIBUTE_FIELD_EXPECTED = (
    "a catalog field, or attributes.<key> for a custom attribute some contact has "
    "or the workspace declares in its attribute types"
)
# The contract's own wording for a range given the wrong way round (numbers and times alike).
BETWEEN_REVERSED = "between needs [low, high] with low <= high"
MATCHES = ("all", "any", "none")
CONDITION_TYPES = ("attribute", "tag", "orders", "event", "segment")


class DefinitionError(Exception):
    """A definition that breaks the format; `errors` lists every problem as `{"path", "message"}`."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        summary = "; ".join(f"{e['path'] or '(root)'}: {e['message']}" for e in errors[:5])
        if len(errors) > 5:
            summary += f" ... and {len(errors) - 5} more"
        super().__init__(summary)


# ---------------------------------------------------------------------------- the parsed tree


@dataclass(frozen=True)
class AttributeCondition:
    """`{"type": "attribute", "field": F, "op": OP, "value": V}`; `value` None for value-less operators."""

    field: str
    op: str
    value: Any = None

    def as_json(self) -> dict:
        return _with_value({"type": "attribute", "field": self.field, "op": self.op}, self.op, self.value)


@dataclass(frozen=True)
class TagCondition:
    op: str
    names: tuple[str, ...]

    def as_json(self) -> dict:
        return {"type": "tag", "op": self.op, "value": list(self.names)}


@dataclass(frozen=True)
class Filter:
    """One filter of an orders or event condition."""

    field: str
    op: str
    value: Any = None

    def as_json(self) -> dict:
        return _with_value({"field": self.field, "op": self.op}, self.op, self.value)


@dataclass(frozen=True)
class OrdersCondition:
    measure: str
    op: str
    value: Any = None
    filters: tuple[Filter, ...] = ()
    window: Window | None = None

    def as_json(self) -> dict:
        data: dict[str, Any] = {"type": "orders"}
        if self.filters:
            data["filters"] = [f.as_json() for f in self.filters]
        if self.window is not None:
            data["window"] = self.window.as_json()
        data["measure"] = self.measure
        data["op"] = self.op
        return _with_value(data, self.op, self.value)


@dataclass(frozen=True)
class EventCondition:
    event: str
    measure: str
    op: str
    value: Any = None
    filters: tuple[Filter, ...] = ()
    window: Window | None = None

    def as_json(self) -> dict:
        data: dict[str, Any] = {"type": "event", "event": self.event}
        if self.filters:
            data["filters"] = [f.as_json() for f in self.filters]
        if self.window is not None:
            data["window"] = self.window.as_json()
        data["measure"] = self.measure
        data["op"] = self.op
        return _with_value(data, self.op, self.value)


@dataclass(frozen=True)
class SegmentCondition:
    op: str
    segment: int

    def as_json(self) -> dict:
        return {"type": "segment", "op": self.op, "segment": self.segment}


Condition = AttributeCondition | TagCondition | OrdersCondition | EventCondition | SegmentCondition


@dataclass(frozen=True)
class Group:
    match: str
    conditions: tuple[Group | Condition, ...]

    def as_json(self) -> dict:
        return {"match": self.match, "conditions": [node.as_json() for node in self.conditions]}


Node = Group | Condition


def _value_json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, tuple):
        return [_value_json(v) for v in value]
    if hasattr(value, "as_json"):
        return value.as_json()
    return value


def _with_value(data: dict, op: str, value: Any) -> dict:
    if op not in cat.NO_VALUE_OPERATORS:
        data["value"] = _value_json(value)
    return data


def segment_ids(group: Group) -> list[int]:
    """The ids of the segments a definition refers to directly, in order of appearance."""
    found: list[int] = []
    for node in group.conditions:
        if isinstance(node, Group):
            found.extend(segment_ids(node))
        elif isinstance(node, SegmentCondition):
            found.append(node.segment)
    return list(dict.fromkeys(found))


# ---------------------------------------------------------------------------- segment references


class SegmentResolver(Protocol):
    """Looks up other segments of the same workspace for references.

    `stored_definition(id)` returns the raw JSON definition of that segment in the
    workspace, or None when there is no such segment there (another workspace's
    segment does not exist). The parser keeps what it parsed in `parsed` so that the
    compiler can inline it without queries.
    """

    parsed: dict[int, Group]

    def stored_definition(self, segment_id: int) -> Any | None: ...


class _Cycle(Exception):
    """A reference chain that comes back to a segment already on it, e.g. [5, 12, 5]."""

    def __init__(self, cycle: list[int]) -> None:
        self.cycle = cycle


class _TooDeep(Exception):
    """Segment references nest deeper than MAX_REFERENCE_DEPTH."""


class _Broken(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


# ---------------------------------------------------------------------------- the parser


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if _is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _short(value: Any, limit: int = 60) -> str:
    """A user's value echoed in a message, cut short so that a huge input gives a small error."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Parser:
    def __init__(
        self, catalog: Catalog, segments: SegmentResolver | None, chain: list[int], *, nested: bool = False
    ) -> None:
        self.catalog = catalog
        self.segments = segments
        self.chain = chain  # segment ids from the one being saved down to here, for cycles
        self.nested = nested  # parsing a referenced segment's stored definition
        self.errors: list[dict[str, str]] = []
        self.condition_count = 0

    def error(self, path: str, message: str) -> None:
        self.errors.append({"path": path, "message": message})

    # -- structure

    def object(self, data: Any, path: str, allowed: tuple[str, ...], what: str) -> bool:
        if not isinstance(data, dict):
            self.error(path, f"expected {what} (an object), got {_describe(data)}")
            return False
        for key in data:
            if key not in allowed:
                expected = ", ".join(allowed)
                self.error(_join(path, str(key)), f"unknown key {_short(key)} in {what}; expected keys: {expected}")
        return True

    def required(self, data: dict, key: str, path: str) -> bool:
        if key not in data:
            self.error(_join(path, key), f"{key} is required")
            return False
        return True

    def group(self, data: Any, path: str, depth: int) -> Group | None:
        if depth > MAX_DEPTH:
            self.error(path, f"groups nest at most {MAX_DEPTH} deep")
            return None
        what = "the definition" if depth == 1 else "a group"
        if not self.object(data, path, ("match", "conditions"), what):
            return None
        match = data.get("match")
        ok = self.required(data, "match", path)
        if ok and match not in MATCHES:
            self.error(_join(path, "match"), f'match must be "all", "any" or "none", got {_short(match)}')
            ok = False
        if not self.required(data, "conditions", path):
            return None
        raw = data["conditions"]
        conditions_path = _join(path, "conditions")
        if not isinstance(raw, list):
            self.error(conditions_path, f"conditions must be a list, got {_describe(raw)}")
            return None
        if not raw and depth > 1:
            self.error(conditions_path, "a nested group needs at least one condition")
            ok = False
        nodes = []
        for index, item in enumerate(raw):
            node = self.node(item, f"{conditions_path}[{index}]", depth)
            nodes.append(node)
        if not ok or any(node is None for node in nodes):
            return None
        return Group(match=match, conditions=tuple(nodes))

    def node(self, data: Any, path: str, depth: int) -> Node | None:
        if isinstance(data, dict) and "type" not in data and "match" in data:
            return self.group(data, path, depth + 1)
        if not isinstance(data, dict):
            self.error(path, f"expected a group or a condition (an object), got {_describe(data)}")
            return None
        if "type" not in data:
            self.error(path, 'expected a group ({"match", "conditions"}) or a condition ({"type", ...})')
            return None
        self.condition_count += 1
        if self.condition_count == MAX_CONDITIONS + 1:
            self.error(path, f"a definition has at most {MAX_CONDITIONS} conditions in all")
        kind = data["type"]
        parser = (
            {
                "attribute": self.attribute,
                "tag": self.tag,
                "orders": self.orders,
                "event": self.event,
                "segment": self.segment,
            }.get(kind)
            if isinstance(kind, str)
            else None
        )
        if parser is None:
            expected = ", ".join(f'"{t}"' for t in CONDITION_TYPES)
            self.error(_join(path, "type"), f"unknown condition type {_short(kind)}; expected one of {expected}")
            return None
        return parser(data, path)

    # -- conditions

    def attribute(self, data: dict, path: str) -> AttributeCondition | None:
        if not self.object(data, path, ("type", "field", "op", "value"), "an attribute condition"):
            return None
        field = self.field_ref(data, path, self.catalog.field, _ATTRIBUTE_FIELD_EXPECTED)
        if field is None:
            self.check_op_known(data, path)
            return None
        op, value, ok = self.op_and_value(data, path, field)
        return AttributeCondition(field=field.key, op=op, value=value) if ok else None

    def tag(self, data: dict, path: str) -> TagCondition | None:
        if not self.object(data, path, ("type", "op", "value"), "a tag condition"):
            return None
        ok = self.required(data, "op", path)
        op = data.get("op")
        if ok and op not in cat.TAG_OPERATORS:
            self.error(_join(path, "op"), f"unknown tag operator {_short(op)}; expected has_any, has_all or has_none")
            ok = False
        if not self.required(data, "value", path):
            return None
        names = self.string_list(data["value"], _join(path, "value"), "tag names")
        if not ok or names is None:
            return None
        return TagCondition(op=op, names=names)

    def orders(self, data: dict, path: str) -> OrdersCondition | None:
        allowed = ("type", "filters", "window", "measure", "op", "value")
        if not self.object(data, path, allowed, "an orders condition"):
            return None
        filters, f_ok = self.filters(data, path, self.catalog.order_filter, "an order or item field")
        window, w_ok = self.window(data, path)
        measure_type = self.measure(data, path, cat.ORDER_MEASURES)
        if measure_type is None:
            self.check_op_known(data, path)
            return None
        op, value, ok = self.op_and_value(data, path, _measure_field(data["measure"], measure_type))
        if not (ok and f_ok and w_ok):
            return None
        return OrdersCondition(measure=data["measure"], op=op, value=value, filters=filters, window=window)

    def event(self, data: dict, path: str) -> EventCondition | None:
        allowed = ("type", "event", "filters", "window", "measure", "op", "value")
        if not self.object(data, path, allowed, "an event condition"):
            return None
        name = data.get("event")
        e_ok = self.required(data, "event", path)
        if e_ok and not (isinstance(name, str) and self.catalog.is_event_type(name)):
            shown = ", ".join(self.catalog.event_types())
            self.error(_join(path, "event"), f'unknown event type {_short(name)}; expected "any" or one of: {shown}')
            e_ok = False
        filters, f_ok = self.filters(data, path, self.catalog.event_filter, "device, url, campaign or properties.<key>")
        window, w_ok = self.window(data, path)
        measure_type = self.measure(data, path, cat.EVENT_MEASURES)
        if measure_type is None:
            self.check_op_known(data, path)
            return None
        op, value, ok = self.op_and_value(data, path, _measure_field(data["measure"], measure_type))
        if not (ok and e_ok and f_ok and w_ok):
            return None
        return EventCondition(event=name, measure=data["measure"], op=op, value=value, filters=filters, window=window)

    def segment(self, data: dict, path: str) -> SegmentCondition | None:
        if not self.object(data, path, ("type", "op", "segment"), "a segment condition"):
            return None
        ok = self.required(data, "op", path)
        op = data.get("op")
        if ok and op not in cat.SEGMENT_OPERATORS:
            self.error(_join(path, "op"), f'unknown segment operator {_short(op)}; expected "in" or "not_in"')
            ok = False
        if not self.required(data, "segment", path):
            return None
        ref = data["segment"]
        ref_path = _join(path, "segment")
        if not (_is_positive_int(ref) and ref > 0):
            self.error(ref_path, f"segment must be the id of a segment (a positive integer), got {_describe(ref)}")
            return None
        if not self.reference(ref, ref_path):
            return None
        return SegmentCondition(op=op, segment=ref) if ok else None

    # -- pieces of conditions

    def field_ref(self, data: dict, path: str, lookup: Callable[[str], Field | None], expected: str) -> Field | None:
        if not self.required(data, "field", path):
            return None
        key = data["field"]
        found = lookup(key) if isinstance(key, str) else None
        if found is None:
            self.error(_join(path, "field"), f"unknown field {_short(key)}; expected {expected}")
        return found

    def check_op_known(self, data: dict, path: str) -> None:
        """When the field or measure is wrong the operator cannot be checked, but it must be there."""
        if self.required(data, "op", path) and not isinstance(data["op"], str):
            self.error(_join(path, "op"), f"op must be a string, got {_describe(data['op'])}")

    def measure(self, data: dict, path: str, measures: dict[str, str]) -> str | None:
        if not self.required(data, "measure", path):
            return None
        measure = data["measure"]
        if not isinstance(measure, str) or measure not in measures:
            expected = ", ".join(measures)
            self.error(
                _join(path, "measure"), f"unknown measure {_short(measure)} for this condition; expected {expected}"
            )
            return None
        return measures[measure]

    def filters(
        self, data: dict, path: str, lookup: Callable[[str], Field | None], expected: str
    ) -> tuple[tuple[Filter, ...], bool]:
        if data.get("filters") is None:  # absent or null: no filters
            return (), True
        raw = data["filters"]
        filters_path = _join(path, "filters")
        if not isinstance(raw, list):
            self.error(filters_path, f"filters must be a list, got {_describe(raw)}")
            return (), False
        if len(raw) > MAX_LIST:
            self.error(filters_path, f"at most {MAX_LIST} filters")
            return (), False
        result, ok = [], True
        for index, item in enumerate(raw):
            item_path = f"{filters_path}[{index}]"
            if not self.object(item, item_path, ("field", "op", "value"), "a filter"):
                ok = False
                continue
            field = self.field_ref(item, item_path, lookup, expected)
            if field is None:
                self.check_op_known(item, item_path)
                ok = False
                continue
            op, value, f_ok = self.op_and_value(item, item_path, field)
            if f_ok:
                result.append(Filter(field=field.key, op=op, value=value))
            ok = ok and f_ok
        return tuple(result), ok

    def window(self, data: dict, path: str) -> tuple[Window | None, bool]:
        if data.get("window") is None:  # absent or null: all time
            return None, True
        raw = data["window"]
        window_path = _join(path, "window")
        if isinstance(raw, dict) and "last" in raw:
            span = self.relative(raw, window_path, "last", "a window")
            return (LastWindow(*span) if span else None), span is not None
        if isinstance(raw, dict) and "from" in raw:
            if not self.object(raw, window_path, ("from", "to"), "a fixed window"):
                return None, False
            start = self.iso(raw["from"], _join(window_path, "from"))
            end = self.iso(raw["to"], _join(window_path, "to")) if "to" in raw else None
            if start is None or ("to" in raw and end is None):
                return None, False
            if end is not None and start > end:
                self.error(window_path, "a window needs from <= to")
                return None, False
            return FixedWindow(start, end), True
        self.error(window_path, 'a window is {"last": N, "unit": U} or {"from": ISO, "to": ISO} (to is optional)')
        return None, False

    def relative(self, raw: Any, path: str, key: str, what: str) -> tuple[int, str] | None:
        """`{key: N, "unit": U}` with N a whole number from 1 to the unit's maximum."""
        if not self.object(raw, path, (key, "unit"), what):
            return None
        ok = self.required(raw, key, path) & self.required(raw, "unit", path)
        if not ok:
            return None
        amount, unit = raw[key], raw["unit"]
        if unit not in UNITS:
            self.error(_join(path, "unit"), f"unknown unit {_short(unit)}; expected hours, days, weeks or months")
            return None
        limit = MAX_AMOUNT[unit]
        if not (_is_positive_int(amount) and 1 <= amount <= limit):
            self.error(
                _join(path, key), f"{key} must be a whole number from 1 to {limit} for {unit}, got {_short(amount)}"
            )
            return None
        return amount, unit

    def iso(self, raw: Any, path: str) -> Any:
        if not isinstance(raw, str):
            self.error(path, f"expected an ISO 8601 date or datetime string, got {_describe(raw)}")
            return None
        try:
            return parse_iso(raw)
        except ValueError as exc:
            self.error(path, f"{_short(raw)} is not a valid ISO 8601 date or datetime ({exc})")
            return None

    def time_value(self, raw: Any, path: str) -> TimeValue | None:
        if isinstance(raw, dict):
            span = self.relative(raw, path, "ago", 'a relative time {"ago": N, "unit": U}')
            return Ago(*span) if span else None
        moment = self.iso(raw, path)
        return Absolute(moment) if moment is not None else None

    # -- operators and values

    def op_and_value(self, data: dict, path: str, field: Field) -> tuple[str, Any, bool]:
        if not self.required(data, "op", path):
            return "", None, False
        op = data["op"]
        op_path = _join(path, "op")
        if not isinstance(op, str) or op not in field.operators:
            allowed = ", ".join(field.operators)
            self.error(
                op_path, f"operator {_short(op)} is not allowed for {field.key} ({field.type}); expected {allowed}"
            )
            return "", None, False
        value_path = _join(path, "value")
        if op in cat.NO_VALUE_OPERATORS:
            # "value": null is the same as no value (clients that always send the key).
            if data.get("value") is not None:
                self.error(value_path, f"{op} takes no value; remove value")
                return op, None, False
            return op, None, True
        if "value" not in data:
            self.error(value_path, f"{op} needs a value")
            return op, None, False
        value = self.value(field, op, data["value"], value_path)
        return op, value, value is not None

    def value(self, field: Field, op: str, raw: Any, path: str) -> Any:
        type_ = field.type
        if type_ == cat.PROPERTY:
            return self.property_value(op, raw, path)
        if type_ == cat.TEXT:
            if op in ("in", "not_in"):
                return self.string_list(raw, path, "strings")
            return self.text(raw, path)
        if type_ == cat.CHOICE:
            if op in ("in", "not_in"):
                names = self.string_list(raw, path, "choices")
                if names is None:
                    return None
                bad = [i for i, name in enumerate(names) if not self.is_choice(field, name, f"{path}[{i}]")]
                return None if bad else names
            text = self.text(raw, path)
            if text is None or not self.is_choice(field, text, path):
                return None
            return text
        if type_ == cat.NUMBER:
            if op == "between":
                return self.number_range(raw, path)
            return self.number(raw, path)
        if type_ == cat.DATETIME:
            if op in ("in_last", "not_in_last"):
                span = self.relative(raw, path, "last", 'a span {"last": N, "unit": U}')
                return LastWindow(*span) if span else None
            if op == "between":
                return self.time_range(raw, path)
            return self.time_value(raw, path)
        raise AssertionError(f"no value rule for {type_}")  # pragma: no cover - every type is handled above

    def property_value(self, op: str, raw: Any, path: str) -> Any:
        text_only = ("contains", "not_contains", "starts_with", "ends_with")
        number_only = ("gt", "gte", "lt", "lte", "between")
        if op in text_only:
            return self.text(raw, path)
        if op in number_only:
            return self.number_range(raw, path) if op == "between" else self.number(raw, path)
        # eq, ne, in, not_in: strings compare as text, numbers as numbers.
        if op in ("in", "not_in"):
            if isinstance(raw, list) and raw and all(_is_number(v) for v in raw):
                return self.number_list(raw, path)
            return self.string_list(raw, path, "strings (or all numbers)")
        if _is_number(raw):
            return self.number(raw, path)
        if isinstance(raw, str):
            return self.text(raw, path)
        self.error(path, f"expected a string or a number, got {_describe(raw)}")
        return None

    def is_choice(self, field: Field, value: str, path: str) -> bool:
        if not field.strict_choices or value in field.choices:
            return True
        self.error(path, f"{_short(value)} is not a choice of {field.key}; expected one of: {', '.join(field.choices)}")
        return False

    def text(self, raw: Any, path: str) -> str | None:
        if not isinstance(raw, str):
            self.error(path, f"expected a string, got {_describe(raw)}")
            return None
        if len(raw) > MAX_TEXT:
            self.error(path, f"a text value has at most {MAX_TEXT} characters, got {len(raw)}")
            return None
        if "\x00" in raw:
            self.error(path, "a text value cannot contain the NUL character")
            return None
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError:
            self.error(path, "a text value must be valid Unicode (no lone surrogates)")
            return None
        return raw

    def string_list(self, raw: Any, path: str, what: str) -> tuple[str, ...] | None:
        if not isinstance(raw, list):
            self.error(path, f"expected a list of {what}, got {_describe(raw)}")
            return None
        if not raw:
            self.error(path, f"expected a non-empty list of {what}")
            return None
        if len(raw) > MAX_LIST:
            self.error(path, f"a list has at most {MAX_LIST} items, got {len(raw)}")
            return None
        items = [self.text(item, f"{path}[{i}]") for i, item in enumerate(raw)]
        if any(item is None for item in items):
            return None
        return tuple(items)

    def number(self, raw: Any, path: str) -> Decimal | None:
        if not _is_number(raw):
            self.error(path, f"expected a number, got {_describe(raw)}")
            return None
        if isinstance(raw, float) and not math.isfinite(raw):
            self.error(path, "expected a finite number")
            return None
        try:
            value = Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)
        except (InvalidOperation, ValueError):  # pragma: no cover - ints and finite floats always convert
            self.error(path, "expected a number")
            return None
        if not value.is_finite() or abs(value) > MAX_NUMBER:
            self.error(path, "a number must be between -10^15 and 10^15")
            return None
        if value != value.quantize(Decimal(1).scaleb(-MAX_PLACES), rounding="ROUND_DOWN"):
            self.error(path, f"a number has at most {MAX_PLACES} decimal places")
            return None
        return Decimal(int(value)) if value == value.to_integral_value() else value

    def number_list(self, raw: list, path: str) -> tuple[Decimal, ...] | None:
        if len(raw) > MAX_LIST:
            self.error(path, f"a list has at most {MAX_LIST} items, got {len(raw)}")
            return None
        items = [self.number(item, f"{path}[{i}]") for i, item in enumerate(raw)]
        if any(item is None for item in items):
            return None
        return tuple(items)

    def number_range(self, raw: Any, path: str) -> tuple[Decimal, Decimal] | None:
        if not (isinstance(raw, list) and len(raw) == 2):
            self.error(path, f"between needs [low, high] with low <= high, got {_describe(raw)}")
            return None
        low, high = self.number(raw[0], f"{path}[0]"), self.number(raw[1], f"{path}[1]")
        if low is None or high is None:
            return None
        if low > high:
            self.error(path, BETWEEN_REVERSED)
            return None
        return low, high

    def time_range(self, raw: Any, path: str) -> tuple[TimeValue, TimeValue] | None:
        if not (isinstance(raw, list) and len(raw) == 2):
            self.error(path, f"between needs [earlier, later] times, got {_describe(raw)}")
            return None
        low, high = self.time_value(raw[0], f"{path}[0]"), self.time_value(raw[1], f"{path}[1]")
        if low is None or high is None:
            return None
        if _surely_reversed(low, high):
            self.error(path, BETWEEN_REVERSED)
            return None
        return low, high

    # -- segment references

    def reference(self, ref: int, path: str) -> bool:
        """Check that segment `ref` exists in the workspace, is valid and does not lead back to us."""
        try:
            if ref in self.chain:
                raise _Cycle([*self.chain[self.chain.index(ref) :], ref])
            if self.segments is None:
                self.error(path, f"segment {ref} does not exist")
                return False
            _load_segment(ref, self.segments, self.catalog, self.chain)
        except _Cycle as found:
            if self.nested:
                raise  # report it at the reference in the definition being checked
            shown = " -> ".join(str(i) for i in found.cycle)
            self.error(path, f"segment {ref} leads to a cycle of segment references ({shown}); cycles are not allowed")
            return False
        except _TooDeep:
            if self.nested:
                raise
            self.error(path, f"segment {ref} refers to segments nested more than {MAX_REFERENCE_DEPTH} deep")
            return False
        except _Broken as broken:
            self.error(path, broken.message)
            return False
        return True


def _load_segment(ref: int, segments: SegmentResolver, catalog: Catalog, chain: list[int]) -> Group:
    """Parse a referenced segment's stored definition (and what it refers to), caching the result.

    Raises `_Cycle` when the references lead back to a segment on `chain`, `_Broken`
    when the segment does not exist or its stored definition is not valid.
    """
    if ref in segments.parsed:
        back = _path_back(ref, set(chain), segments.parsed)
        if back:
            raise _Cycle([*chain[chain.index(back[-1]) :], *back])
        return segments.parsed[ref]
    raw = segments.stored_definition(ref)
    if raw is None:
        raise _Broken(f"segment {ref} does not exist")
    if len(chain) > MAX_REFERENCE_DEPTH:
        raise _TooDeep()
    parser = _Parser(catalog, segments, [*chain, ref], nested=True)
    group = parser.group(raw, "", 1)
    if parser.errors:
        first = parser.errors[0]
        where = f" at {first['path']}" if first["path"] else ""
        raise _Broken(f"segment {ref} has an invalid definition{where}: {first['message']}")
    assert group is not None
    segments.parsed[ref] = group
    return group


def _path_back(start: int, targets: set[int], parsed: dict[int, Group]) -> list[int] | None:
    """A chain of references from `start` to one of `targets` through already parsed segments, or None."""
    stack, seen = [[start]], set()
    while stack:
        path = stack.pop()
        here = path[-1]
        if here in targets:
            return path
        if here in seen or here not in parsed:
            continue
        seen.add(here)
        stack.extend([*path, nxt] for nxt in segment_ids(parsed[here]))
    return None


def _surely_reversed(low: TimeValue, high: TimeValue) -> bool:
    """Whether [low, high] is reversed whatever "now" is (checkable without knowing now)."""
    if isinstance(low, Absolute) and isinstance(high, Absolute):
        return low.at > high.at
    if isinstance(low, Ago) and isinstance(high, Ago):
        # low is now - a, high is now - b; reversed when a < b for every now. Months vary
        # from 28 to 31 days, so compare the longest low offset with the shortest high one.
        hours = {"hours": 1, "days": 24, "weeks": 24 * 7}

        def bounds(t: Ago) -> tuple[int, int]:
            if t.unit == "months":
                return t.amount * 28 * 24, t.amount * 31 * 24
            return t.amount * hours[t.unit], t.amount * hours[t.unit]

        return bounds(low)[1] < bounds(high)[0]
    return False


def _measure_field(measure: str, type_: str) -> Field:
    return Field(key=measure, label=measure, category="", type=type_, operators=cat.OPERATORS[type_])


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def parse_definition(
    data: Any,
    *,
    catalog: Catalog,
    segments: SegmentResolver | None = None,
    segment_id: int | None = None,
) -> Group:
    """Validate a definition and return it as frozen dataclasses; raise `DefinitionError` with all located errors.

    `segments` resolves references to other segments of the same workspace
    (`segments_app.selectors.WorkspaceSegments`); without it every reference is
    refused as not existing. `segment_id` is the id of the segment being saved, so
    that a reference back to it (directly or through others) is refused as a cycle.

    >>> parse_definition({"match": "any", "conditions": [
    ...     {"type": "tag", "op": "has_any", "value": ["vip"]}]}, catalog=Catalog(workspace_id=None))
    Group(match='any', conditions=(TagCondition(op='has_any', names=('vip',)),))
    """
    parser = _Parser(catalog, segments, [segment_id] if segment_id is not None else [])
    group = parser.group(data, "", 1)
    if parser.errors:
        raise DefinitionError(parser.errors)
    assert group is not None
    return group


def resolve_references(
    group: Group, *, catalog: Catalog, segments: SegmentResolver, segment_id: int | None = None
) -> None:
    """Load and check the segments an already parsed definition refers to (into `segments.parsed`).

    For callers that hold a `Group` rather than JSON; raises `DefinitionError` like
    `parse_definition` when a reference does not exist, is invalid or makes a cycle.
    """
    parser = _Parser(catalog, segments, [segment_id] if segment_id is not None else [])
    _check_references(parser, group, "")
    if parser.errors:
        raise DefinitionError(parser.errors)


def _check_references(parser: _Parser, group: Group, path: str) -> None:
    for index, node in enumerate(group.conditions):
        node_path = _join(path, f"conditions[{index}]")
        if isinstance(node, Group):
            _check_references(parser, node, node_path)
        elif isinstance(node, SegmentCondition):
            parser.reference(node.segment, _join(node_path, "segment"))


class WorkspaceSegments:
    """The `SegmentResolver` of one workspace: reads segments' stored definitions by id, within it only."""

    def __init__(self, workspace_id: int) -> None:
        self.workspace_id = workspace_id
        self.parsed: dict[int, Group] = {}
        self._stored: dict[int, Any] = {}

    def stored_definition(self, segment_id: int) -> Any | None:
        if segment_id not in self._stored:
            from segments_app.models import Segment

            row = Segment.objects.filter(workspace_id=self.workspace_id, pk=segment_id).values_list(
                "definition", flat=True
            )
            self._stored[segment_id] = next(iter(row), None)
        return self._stored[segment_id]

    def resolve(self, segment_id: int) -> Group:
        """The parsed definition of a referenced segment, as checked during validation (no query)."""
        try:
            return self.parsed[segment_id]
        except KeyError:
            raise LookupError(f"segment {segment_id} was not checked by parse_definition") from None


def validate_definition(data: Any, *, workspace, segment_id: int | None = None) -> list[dict[str, str]]:
    """Every located error of a definition for `workspace` (`[]` when it is valid).

    >>> validate_definition({"match": "all", "conditions": []}, workspace=workspace)  # doctest: +SKIP
    []
    """
    from .catalog import build_catalog

    try:
        parse_definition(
            data,
            catalog=build_catalog(workspace, discover_attributes=False),
            segments=WorkspaceSegments(workspace.pk),
            segment_id=segment_id,
        )
    except DefinitionError as exc:
        return exc.errors
    return []
