"""An independent reference evaluator of segment definitions, over in-memory data.

Written from the contract (docs/segment-definition.md) and the documented
engine decisions only; it shares no code with `segments_app` (not even the catalog:
the field types below are copied from the contract). Plain Python over plain data,
slow and obvious on purpose, so that the SQL the compiler builds can be checked
against it on random worlds.

Decisions it implements (the same ones the catalog module documents):
- missing = None, "" for text and choice; for custom attributes only values of the
  attribute's type count (numbers for number, true/false for boolean, non-empty
  strings for text/choice, ISO strings for datetime);
- "ignore case" folds, letter by letter, the upper-case letters of A-Z, À-Þ, Ā-ž, Ά-Ϋ and Ѐ-Я whose lower
  case is one letter that upper-cases back (the README's rule);
- `birth_date` compares as midnight UTC;
- months are calendar months, clamped to the month's last day.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

TEXT, NUMBER, DATETIME, BOOLEAN, CHOICE, DATE = "text", "number", "datetime", "boolean", "choice", "date"

CONTACT_FIELD_TYPES = {
    "email": TEXT,
    "first_name": TEXT,
    "last_name": TEXT,
    "phone": TEXT,
    "country": TEXT,
    "city": TEXT,
    "gender": TEXT,
    "birth_date": DATE,
    "created_at": DATETIME,
    "email_status": CHOICE,
    "traffic_source": CHOICE,
    "utm_campaign": TEXT,
}
STATS_FIELD_TYPES = {
    "orders_count": NUMBER,
    "total_spent": NUMBER,
    "avg_order_value": NUMBER,
    "first_order_at": DATETIME,
    "last_order_at": DATETIME,
    "last_seen_at": DATETIME,
    "last_email_open_at": DATETIME,
    "last_email_click_at": DATETIME,
    "engagement_score": NUMBER,
    "lifecycle_stage": CHOICE,
    "rfm_recency": NUMBER,
    "rfm_frequency": NUMBER,
    "rfm_monetary": NUMBER,
    "rfm_segment": CHOICE,
    "preferred_device": CHOICE,
    "top_category": TEXT,
    "top_producer": TEXT,
    "cart_open_since": DATETIME,
    "loyalty_tier": CHOICE,
}
ORDER_FIELD_TYPES = {"source": TEXT, "total": NUMBER, "currency": TEXT, "ordered_at": DATETIME}
ITEM_FIELD_TYPES = {
    "product.sku": TEXT,
    "product.name": TEXT,
    "product.producer": TEXT,
    "product.category": TEXT,
    "quantity": NUMBER,
    "unit_price": NUMBER,
}
EVENT_FIELD_TYPES = {"device": CHOICE, "url": TEXT, "campaign": TEXT}
TRUE_ON_MISSING = {"is_not_set", "ne", "not_in", "not_contains", "not_in_last", "is_false"}


class Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()


@dataclass
class Product:
    sku: str
    name: str | None = None
    producer: str | None = None
    category: str | None = None


@dataclass
class Item:
    product: Product
    quantity: int
    unit_price: Decimal


@dataclass
class Order:
    ordered_at: datetime
    total: Decimal
    currency: str = "EUR"
    source: str | None = None
    items: list[Item] = field(default_factory=list)


@dataclass
class Event:
    type: str
    occurred_at: datetime
    device: str | None = None
    url: str | None = None
    campaign: str | None = None
    properties: dict = field(default_factory=dict)


@dataclass
class Contact:
    key: str
    fields: dict[str, Any] = field(default_factory=dict)  # contact columns; absent = None
    attributes: dict[str, Any] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)
    stats: dict[str, Any] = field(default_factory=dict)  # stored computed figures; absent = None
    orders: list[Order] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


@dataclass
class World:
    contacts: list[Contact]
    attribute_types: dict[str, str] = field(default_factory=dict)  # declared in the workspace settings
    segments: dict[int, dict] = field(default_factory=dict)  # saved segments: id -> definition JSON


# ---------------------------------------------------------------------------- time


def minus(now: datetime, amount: int, unit: str) -> datetime:
    if unit == "hours":
        return now - timedelta(hours=amount)
    if unit == "days":
        return now - timedelta(days=amount)
    if unit == "weeks":
        return now - timedelta(days=7 * amount)
    if unit == "months":
        month_index = now.year * 12 + now.month - 1 - amount
        year, month = month_index // 12, month_index % 12 + 1
        last_day = calendar.monthrange(year, month)[1]
        return now.replace(year=year, month=month, day=min(now.day, last_day))
    raise ValueError(unit)


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or datetime of a definition; no offset = UTC, a bare date = midnight UTC."""
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def time_value(value: Any, now: datetime) -> datetime:
    if isinstance(value, dict):
        return minus(now, value["ago"], value["unit"])
    return parse_time(value)


def window_contains(window: dict | None, moment: datetime, now: datetime) -> bool:
    if window is None:
        return True
    if "last" in window:
        return minus(now, window["last"], window["unit"]) <= moment <= now
    start = parse_time(window["from"])
    end = parse_time(window["to"]) if "to" in window else None
    return start <= moment and (end is None or moment <= end)


_ATTRIBUTE_TIME = re.compile(r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,6})?)?(?:Z|[+-]\d\d:\d\d)?)?")


def attribute_time(value: Any) -> datetime | Missing:
    """A custom datetime attribute's value: an ISO string with a real date in years 1000-8999."""
    if not isinstance(value, str) or not _ATTRIBUTE_TIME.fullmatch(value):
        return MISSING
    if value[-6:-5] in ("+", "-") and len(value) > 16 and int(value[-5:-3]) > 14:
        return MISSING
    if not 1000 <= int(value[:4]) <= 8999:
        return MISSING
    try:
        return parse_time(value)
    except ValueError:
        return MISSING


# ---------------------------------------------------------------------------- values


def number(value: Any) -> Decimal:
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def _folds(c: str) -> bool:
    """Is `c` an upper-case letter of the folded ranges with a one-letter lower case that maps back?"""
    in_blocks = any(
        low <= c <= high for low, high in (("A", "Z"), ("À", "Þ"), ("Ā", "ž"), ("Ά", "Ϋ"), ("Ѐ", "Я"))
    )
    return in_blocks and c.lower() != c and len(c.lower()) == 1 and c.lower().upper() == c


def fold(text: str) -> str:
    return "".join(c.lower() if _folds(c) else c for c in text)


def column_value(type_: str, raw: Any) -> Any:
    if raw is None:
        return MISSING
    if type_ in (TEXT, CHOICE) and raw == "":
        return MISSING
    if type_ == DATE:
        return datetime.combine(raw, time(0), tzinfo=UTC)
    if type_ == NUMBER:
        return Decimal(raw)
    return raw


def is_json_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def attribute_type(world: World, key: str) -> str | None:
    declared = world.attribute_types.get(key)
    if declared in (TEXT, NUMBER, BOOLEAN, CHOICE, DATETIME):
        return declared
    values = [c.attributes[key] for c in world.contacts if key in c.attributes]
    if not values:
        return None
    present = [v for v in values if v is not None and v != ""]
    if present and all(is_json_number(v) for v in present):
        return NUMBER
    if present and all(isinstance(v, bool) for v in present):
        return BOOLEAN
    return TEXT


def attribute_value(type_: str, attributes: dict, key: str) -> Any:
    raw = attributes.get(key)
    if type_ == NUMBER:
        return number(raw) if is_json_number(raw) else MISSING
    if type_ == BOOLEAN:
        return raw if isinstance(raw, bool) else MISSING
    if type_ == DATETIME:
        return attribute_time(raw)
    return raw if isinstance(raw, str) and raw != "" else MISSING


def holds(type_: str, op: str, value: Any, expected: Any, now: datetime) -> bool:
    """Whether `value <op> expected` holds, with the contract's rules for missing values."""
    if value is MISSING:
        return op in TRUE_ON_MISSING
    if op == "is_set":
        return True
    if op == "is_not_set":
        return False
    if op == "is_true":
        return value is True
    if op == "is_false":
        return value is False
    if type_ in (NUMBER,):
        value = Fraction(value)
        if op == "between":
            return Fraction(number(expected[0])) <= value <= Fraction(number(expected[1]))
        other = Fraction(number(expected))
        return {
            "eq": value == other,
            "ne": value != other,
            "gt": value > other,
            "gte": value >= other,
            "lt": value < other,
            "lte": value <= other,
        }[op]
    if type_ in (DATETIME, DATE):
        if op == "before":
            return value < time_value(expected, now)
        if op == "after":
            return value > time_value(expected, now)
        if op == "between":
            return time_value(expected[0], now) <= value <= time_value(expected[1], now)
        if op == "in_last":
            return minus(now, expected["last"], expected["unit"]) <= value <= now
        if op == "not_in_last":
            return value < minus(now, expected["last"], expected["unit"])
        raise ValueError(op)
    # text and choice
    if op == "eq":
        return value == expected
    if op == "ne":
        return value != expected
    if op == "in":
        return value in expected
    if op == "not_in":
        return value not in expected
    if op == "contains":
        return fold(expected) in fold(value)
    if op == "not_contains":
        return fold(expected) not in fold(value)
    if op == "starts_with":
        return fold(value).startswith(fold(expected))
    if op == "ends_with":
        return fold(value).endswith(fold(expected))
    raise ValueError(op)


def property_holds(properties: dict, key: str, op: str, expected: Any, now: datetime) -> bool:
    """An event property: is_set on any non-missing value; strings compare as text, numbers as numbers."""
    raw = properties.get(key)
    if op in ("is_set", "is_not_set"):
        present = key in properties and raw is not None and raw != ""
        return present if op == "is_set" else not present
    sample = expected[0] if isinstance(expected, list) and op in ("in", "not_in") else expected
    if op in ("gt", "gte", "lt", "lte", "between") or is_json_number(sample):
        value = number(raw) if is_json_number(raw) else MISSING
        if op in ("in", "not_in"):
            found = value is not MISSING and any(Fraction(value) == Fraction(number(e)) for e in expected)
            return found if op == "in" else not found
        return holds(NUMBER, op, value, expected, now)
    value = raw if isinstance(raw, str) and raw != "" else MISSING
    return holds(TEXT, op, value, expected, now)


# ---------------------------------------------------------------------------- conditions


def order_rows(contact: Contact, condition: dict, now: datetime) -> list[tuple[datetime, Decimal]]:
    filters = condition.get("filters", [])
    order_filters = [f for f in filters if f["field"] in ORDER_FIELD_TYPES]
    item_filters = [f for f in filters if f["field"] in ITEM_FIELD_TYPES]
    rows = []
    for order in contact.orders:
        if not window_contains(condition.get("window"), order.ordered_at, now):
            continue
        if not all(
            holds(
                ORDER_FIELD_TYPES[f["field"]],
                f["op"],
                column_value(ORDER_FIELD_TYPES[f["field"]], getattr(order, f["field"])),
                f.get("value"),
                now,
            )
            for f in order_filters
        ):
            continue
        if item_filters:
            matching = [item for item in order.items if all(item_passes(item, f, now) for f in item_filters)]
            if not matching:
                continue
            amount = sum((item.quantity * item.unit_price for item in matching), Decimal(0))
        else:
            amount = order.total
        rows.append((order.ordered_at, amount))
    return rows


def item_passes(item: Item, flt: dict, now: datetime) -> bool:
    name = flt["field"]
    raw = getattr(item.product, name.split(".", 1)[1]) if name.startswith("product.") else getattr(item, name)
    type_ = ITEM_FIELD_TYPES[name]
    return holds(type_, flt["op"], column_value(type_, raw), flt.get("value"), now)


def event_passes(event: Event, condition: dict, now: datetime) -> bool:
    if condition["event"] != "any" and event.type != condition["event"]:
        return False
    if not window_contains(condition.get("window"), event.occurred_at, now):
        return False
    for flt in condition.get("filters", []):
        name = flt["field"]
        if name.startswith("properties."):
            if not property_holds(event.properties, name[len("properties.") :], flt["op"], flt.get("value"), now):
                return False
            continue
        type_ = EVENT_FIELD_TYPES[name]
        if not holds(type_, flt["op"], column_value(type_, getattr(event, name)), flt.get("value"), now):
            return False
    return True


def measure_value(measure: str, rows: list[tuple[datetime, Decimal]]) -> Any:
    if measure == "count":
        return Decimal(len(rows))
    if measure == "sum":
        return sum((amount for _, amount in rows), Decimal(0))
    if not rows:
        return MISSING
    amounts = [amount for _, amount in rows]
    times = [moment for moment, _ in rows]
    return {
        "avg": lambda: Fraction(sum(amounts, Decimal(0))) / len(amounts),
        "min": lambda: min(amounts),
        "max": lambda: max(amounts),
        "first_at": lambda: min(times),
        "last_at": lambda: max(times),
    }[measure]()


def measure_holds(measure: str, value: Any, condition: dict, now: datetime) -> bool:
    type_ = DATETIME if measure in ("first_at", "last_at") else NUMBER
    return holds(type_, condition["op"], value, condition.get("value"), now)


class Evaluator:
    def __init__(self, world: World, now: datetime) -> None:
        self.world = world
        self.now = now

    def matches(self, contact: Contact, definition: dict, top: bool = True) -> bool:
        nodes = definition["conditions"]
        if top and not nodes:
            return True  # an empty top-level group is every contact
        results = [self.node(contact, node) for node in nodes]
        if definition["match"] == "all":
            return all(results)
        if definition["match"] == "any":
            return any(results)
        if definition["match"] == "none":
            return not any(results)
        raise ValueError(definition["match"])

    def node(self, contact: Contact, node: dict) -> bool:
        if "match" in node:
            return self.matches(contact, node, top=False)
        kind = node["type"]
        if kind == "attribute":
            return self.attribute(contact, node)
        if kind == "tag":
            found = [name in contact.tags for name in node["value"]]
            return {"has_any": any(found), "has_all": all(found), "has_none": not any(found)}[node["op"]]
        if kind == "orders":
            value = measure_value(node["measure"], order_rows(contact, node, self.now))
            return measure_holds(node["measure"], value, node, self.now)
        if kind == "event":
            rows = [(e.occurred_at, Decimal(0)) for e in contact.events if event_passes(e, node, self.now)]
            return measure_holds(node["measure"], measure_value(node["measure"], rows), node, self.now)
        if kind == "segment":
            inside = self.matches(contact, self.world.segments[node["segment"]])
            return inside if node["op"] == "in" else not inside
        raise ValueError(kind)

    def attribute(self, contact: Contact, node: dict) -> bool:
        name = node["field"]
        if name in CONTACT_FIELD_TYPES:
            type_ = CONTACT_FIELD_TYPES[name]
            value = column_value(type_, contact.fields.get(name))
        elif name in STATS_FIELD_TYPES:
            type_ = STATS_FIELD_TYPES[name]
            value = column_value(type_, contact.stats.get(name))
        elif name.startswith("attributes."):
            key = name[len("attributes.") :]
            type_ = attribute_type(self.world, key)
            value = attribute_value(type_, contact.attributes, key)
        else:
            raise ValueError(name)
        return holds(type_, node["op"], value, node.get("value"), self.now)


def members(world: World, definition: dict, now: datetime) -> set[str]:
    """The keys of the contacts of `world` that match `definition` at `now`."""
    evaluator = Evaluator(world, now)
    return {contact.key for contact in world.contacts if evaluator.matches(contact, definition)}
