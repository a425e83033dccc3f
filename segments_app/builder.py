"""The wizard's form <-> definition translation, as plain functions (no requests, no templates).

The builder's state is the definition JSON itself (contract: docs/segment-definition.md). The
page renders it as nested fieldsets whose inputs are named by the path of what they edit, the same
paths the validator reports errors at:

    match                                  "all"
    conditions[0].type                     "orders"
    conditions[0].filters[0].field         "product.producer"
    conditions[0].filters[0].op            "eq"
    conditions[0].filters[0].value         "Acme"
    conditions[0].window.mode              "last"      (all | last | between: which inputs follow)
    conditions[0].window.last              "6"
    conditions[0].window.unit              "months"
    conditions[0].measure                  "sum"
    conditions[0].op                       "gt"
    conditions[0].value                    "300"
    conditions[1].match                    "any"       (a nested group)
    conditions[1].conditions[0].type       "tag"
    conditions[1].conditions[0].value[0]   "vip"       (list values: one input per item)

`definition_from_form` turns such a form back into the definition (a *draft*: it may be invalid,
the validator says where), `apply_action` makes one structural edit (add, remove, move, wrap...),
`normalize` repairs what a changed field, operator or measure made inconsistent, and `builder_view`
prepares everything the templates show (choices, widgets, errors on the condition they belong to).

>>> definition_from_form({"match": ["all"], "conditions[0].type": ["orders"], "conditions[0].measure": ["count"],
...     "conditions[0].op": ["gte"], "conditions[0].value": ["2"]}, catalog=Catalog(workspace_id=None))
{'match': 'all', 'conditions': [{'type': 'orders', 'measure': 'count', 'op': 'gte', 'value': 2}]}
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from . import catalog as cat
from .catalog import Catalog, Field
from .definition import MATCHES, MAX_DEPTH
from .timespec import UNITS

BLANK: dict = {"match": "all", "conditions": []}

# ------------------------------------------------------------------------------------------ labels

MATCH_LABELS = {"all": "all of", "any": "any of", "none": "none of"}
# The word shown between the conditions of a group.
CONNECTORS = {"all": "and", "any": "or", "none": "nor"}
OP_LABELS = {
    "eq": "is",
    "ne": "is not",
    "in": "is any of",
    "not_in": "is none of",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "is_set": "is known",
    "is_not_set": "is unknown",
    "gt": "is more than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "between": "is between",
    "before": "is before",
    "after": "is after",
    "in_last": "is within the last",
    "not_in_last": "is not within the last",
    "is_true": "is yes",
    "is_false": "is not yes",
    "has_any": "has any of",
    "has_all": "has all of",
    "has_none": "has none of",
}
SEGMENT_OP_LABELS = {"in": "is in segment", "not_in": "is not in segment"}
ORDER_MEASURE_LABELS = {
    "count": "number of orders",
    "sum": "total amount",
    "avg": "average amount",
    "min": "smallest amount",
    "max": "largest amount",
    "first_at": "first order",
    "last_at": "last order",
}
EVENT_MEASURE_LABELS = {"count": "number of times", "first_at": "first time", "last_at": "last time"}
UNIT_LABELS = {"hours": "hours", "days": "days", "weeks": "weeks", "months": "months"}
WINDOW_MODES = {"all": "over all time", "last": "in the last", "between": "between dates"}
TIME_MODES = {"date": "on a date", "ago": "a time ago"}
EVENT_LABELS = {
    "any": "any event",
    "email_sent": "email sent",
    "email_open": "email opened",
    "email_click": "email link clicked",
    "email_bounce": "email bounced",
    "email_complaint": "email marked as spam",
    "unsubscribe": "unsubscribed",
    "page_view": "page viewed",
    "product_view": "product viewed",
    "cart_add": "added to cart",
    "checkout_start": "checkout started",
    "app_open": "app opened",
}
KIND_LABELS = {
    "attribute": "Field",
    "tag": "Tags",
    "orders": "Orders",
    "event": "Events",
    "segment": "Segment",
}
# Pseudo field of event filters: the key is typed next to it (`properties.<key>`).
PROPERTY_CHOICE = "properties"

# Fields whose values the page can suggest (a <datalist> fed by the suggestions endpoint).
SUGGESTIONS: dict[str, str] = {
    "country": "country",
    "city": "city",
    "utm_campaign": "utm_campaign",
    "top_category": "product.category",
    "top_producer": "product.producer",
    "product.sku": "product.sku",
    "product.name": "product.name",
    "product.producer": "product.producer",
    "product.category": "product.category",
    "source": "order.source",
    "campaign": "event.campaign",
    "currency": "currency",
}
TAG_SUGGESTIONS = "tag"

# Sensible starting values, so that a freshly added condition already means something.
DEFAULT_OPS = {cat.NUMBER: "gte", cat.TEXT: "eq", cat.CHOICE: "eq", cat.DATETIME: "in_last", cat.BOOLEAN: "is_true"}
DEFAULT_SPAN = {"last": 30, "unit": "days"}


def default_op(type_: str) -> str:
    return DEFAULT_OPS.get(type_, "eq")


# ------------------------------------------------------------------------------------------ paths

_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d{1,4})\]|(\.)")


def parse_path(path: str) -> list[str | int]:
    """`conditions[1].filters[0].value` -> ["conditions", 1, "filters", 0, "value"]; ValueError if malformed.

    >>> parse_path("conditions[1].value[0]")
    ['conditions', 1, 'value', 0]
    """
    tokens: list[str | int] = []
    position = 0
    expect_name = True
    while position < len(path):
        match = _TOKEN.match(path, position)
        if match is None:
            raise ValueError(f"malformed path {path!r}")
        name, index, dot = match.groups()
        if dot:
            if expect_name:
                raise ValueError(f"malformed path {path!r}")
            expect_name = True
        elif name is not None:
            if not expect_name:
                raise ValueError(f"malformed path {path!r}")
            tokens.append(name)
            expect_name = False
        else:
            if expect_name and tokens:
                raise ValueError(f"malformed path {path!r}")
            tokens.append(int(index))
            expect_name = False
        position = match.end()
    if expect_name and tokens:
        raise ValueError(f"malformed path {path!r}")
    return tokens


def join(path: str, key: str | int) -> str:
    """The path of `key` under `path`: join("conditions[1]", "op") == "conditions[1].op"."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def dom_id(path: str, prefix: str = "f") -> str:
    """A stable HTML id for a path (htmx keeps the focus on an input whose id survives a swap)."""
    return prefix + "-" + (re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-") or "root")


def node_path_of(error_path: str) -> str:
    """The path of the group or condition an error belongs to: the path up to its last `conditions[i]`.

    >>> node_path_of("conditions[1].conditions[0].filters[2].value")
    'conditions[1].conditions[0]'
    >>> node_path_of("match")
    ''
    """
    found = list(re.finditer(r"conditions\[\d+\]", error_path))
    return error_path[: found[-1].end()] if found else ""


_PART_NAMES = {"op": "operator", "measure": "measure", "value": "value", "window": "time window", "field": "field"}


def describe_error_part(error_path: str, node_path: str) -> str:
    """Where inside its condition an error is, in words ("Filter 2, value"); empty for the condition itself."""
    rest = error_path[len(node_path) :].lstrip(".")
    if not rest or rest == "conditions":
        return ""
    words = []
    for token in parse_path(rest) if _is_path(rest) else []:
        if isinstance(token, int):
            if words and words[-1] == "filter":
                words[-1] = f"filter {token + 1}"
            elif words and words[-1] == "value":
                words[-1] = ("first value", "second value")[token] if token < 2 else f"value {token + 1}"
            continue
        words.append("filter" if token == "filters" else _PART_NAMES.get(token, token))
    return ", ".join(words).capitalize()


def _is_path(text: str) -> bool:
    try:
        parse_path(text)
    except ValueError:
        return False
    return True


def get_at(definition: dict, path: str) -> Any:
    """The node (or part) of the definition at `path`; KeyError/IndexError/TypeError when there is none."""
    here: Any = definition
    for token in parse_path(path):
        here = here[token]
    return here


def _container_and_index(definition: dict, path: str) -> tuple[list, int]:
    """For a path ending in an index (`conditions[2]`, `filters[0]`, `value[1]`): its list and the index."""
    tokens = parse_path(path)
    if not tokens or not isinstance(tokens[-1], int):
        raise ValueError(f"{path!r} does not name an item of a list")
    parent: Any = definition
    for token in tokens[:-1]:
        parent = parent[token]
    if not isinstance(parent, list) or not 0 <= tokens[-1] < len(parent):
        raise ValueError(f"nothing at {path!r}")
    return parent, tokens[-1]


def depth_of(path: str) -> int:
    """How many groups deep a group at `path` is (the root group is 1)."""
    return path.count("conditions[") + 1


# ------------------------------------------------------------------------------------------ form -> definition


def _form_tree(data: Mapping[str, Any]) -> dict:
    """Flat form keys named by path -> a nested dict (list positions as int keys), leaves are strings."""
    tree: dict = {}
    for key in data:
        if not (key == "match" or key.startswith("conditions")):
            continue
        try:
            tokens = parse_path(key)
        except ValueError:
            continue
        value = _last(data, key)
        here = tree
        for token in tokens[:-1]:
            child = here.get(token)
            if not isinstance(child, dict):
                child = here[token] = {}
            here = child
        if not isinstance(here.get(tokens[-1]), dict):
            here[tokens[-1]] = value
    return tree


def _last(data: Mapping[str, Any], key: str) -> str:
    getlist = getattr(data, "getlist", None)
    values = getlist(key) if getlist else data[key]
    if isinstance(values, (list, tuple)):
        return str(values[-1]) if values else ""
    return str(values)


def _items(raw: Any) -> list:
    """The positions of a list in the form tree, in order (gaps closed)."""
    if not isinstance(raw, dict):
        return []
    return [raw[index] for index in sorted(k for k in raw if isinstance(k, int))]


def _text(raw: Any) -> str:
    return raw.strip() if isinstance(raw, str) else ""


def _number(raw: Any) -> Any:
    """A typed number: int when whole, float otherwise; the text itself when it is not a number (the
    validator then says so); None when empty."""
    text = _text(raw)
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    if not number.is_finite():
        return text
    return int(number) if number == number.to_integral_value() else float(number)


def _whole(raw: Any) -> Any:
    number = _number(raw)
    if isinstance(number, float) and number.is_integer():
        return int(number)
    return number


def _put(data: dict, key: str, value: Any) -> None:
    """Set `key` unless the value is missing: a missing value lets the validator say "needs a value"."""
    if value is not None and value != "":
        data[key] = value


def definition_from_form(data: Mapping[str, Any], *, catalog: Catalog) -> dict:
    """The definition a builder form describes (a draft: the validator decides whether it is valid)."""
    return _group_from_tree(_form_tree(data), catalog)


def _group_from_tree(tree: dict, catalog: Catalog) -> dict:
    match = _text(tree.get("match")) or "all"
    conditions = []
    for item in _items(tree.get("conditions")):
        if not isinstance(item, dict):
            continue
        if "type" in item:
            conditions.append(_condition_from_tree(item, catalog))
        elif "match" in item:
            conditions.append(_group_from_tree(item, catalog))
    return {"match": match, "conditions": conditions}


def _condition_from_tree(tree: dict, catalog: Catalog) -> dict:
    kind = _text(tree.get("type"))
    data: dict[str, Any] = {"type": kind}
    if kind == "attribute":
        data["field"] = _text(tree.get("field"))
        found = catalog.field(data["field"])
        _put(data, "op", _text(tree.get("op")))
        if found is not None and data.get("op"):
            _put(data, "value", decode_value(tree.get("value"), widget_for(found, data["op"]), found))
    elif kind == "tag":
        _put(data, "op", _text(tree.get("op")))
        data["value"] = _text_list(tree.get("value"))
    elif kind in ("orders", "event"):
        if kind == "event":
            data["event"] = _text(tree.get("event")) or cat.ANY_EVENT
        lookup = catalog.order_filter if kind == "orders" else catalog.event_filter
        filters = [_filter_from_tree(item, lookup) for item in _items(tree.get("filters")) if isinstance(item, dict)]
        if filters:
            data["filters"] = filters
        window = _window_from_tree(tree.get("window"))
        if window is not None:
            data["window"] = window
        _put(data, "measure", _text(tree.get("measure")))
        _put(data, "op", _text(tree.get("op")))
        measure_field = _measure_field(kind, data.get("measure"))
        if measure_field is not None and data.get("op"):
            _put(data, "value", decode_value(tree.get("value"), widget_for(measure_field, data["op"]), measure_field))
    elif kind == "segment":
        _put(data, "op", _text(tree.get("op")))
        _put(data, "segment", _whole(tree.get("segment")))
    return data


def _filter_from_tree(tree: dict, lookup) -> dict:
    key = _text(tree.get("field"))
    if key == PROPERTY_CHOICE:
        key = cat.PROPERTY_PREFIX + _text(tree.get("property"))
    data: dict[str, Any] = {"field": key}
    _put(data, "op", _text(tree.get("op")))
    found = lookup(key) if key else None
    if found is not None and data.get("op"):
        _put(data, "value", decode_value(tree.get("value"), widget_for(found, data["op"]), found))
    return data


def _window_from_tree(raw: Any) -> dict | None:
    if not isinstance(raw, dict):
        return None
    mode = _text(raw.get("mode"))
    if mode == "last":
        # "last" stays even when empty (None): the mode must survive, and the validator asks for the number.
        return {"last": _whole(raw.get("last")), "unit": _text(raw.get("unit")) or "days"}
    if mode == "between":
        window = {}
        _put(window, "from", _text(raw.get("from")))
        _put(window, "to", end_of_day(_text(raw.get("to"))))
        # "from" is what makes it a fixed window; an empty one is reported as missing by the validator.
        window.setdefault("from", "")
        return window
    return None


_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
END_OF_DAY = "T23:59:59.999999Z"


def end_of_day(text: str) -> str:
    """A bare date as the end of a span means the whole day: its last microsecond (bounds are inclusive).

    >>> end_of_day("2024-05-31")
    '2024-05-31T23:59:59.999999Z'
    """
    return text + END_OF_DAY if _DATE_ONLY.fullmatch(text) else text


def date_input(text: str, *, end: bool = False) -> tuple[str, str]:
    """How an ISO time shows in the page: ("date", "YYYY-MM-DD") or ("datetime-local", "YYYY-MM-DDTHH:MM").

    A time at midnight (or, at the end of a span, the day's last microsecond) shows as its date.
    """
    if end and text.endswith(END_OF_DAY):
        return "date", text[:10]
    has_time = bool(re.search(r"[T ]\d{2}:\d{2}", text)) and not re.search(
        r"[T ]00:00(:00)?(\.0+)?(Z|\+00:00)?$", text
    )
    return ("datetime-local", text[:16].replace(" ", "T")) if has_time else ("date", text[:10])


def _text_list(raw: Any) -> list[str]:
    return [text for text in (_text(item) for item in _items(raw)) if text]


def _time_value(raw: Any) -> Any:
    if not isinstance(raw, dict):
        return None
    if _text(raw.get("mode")) == "ago":
        return {"ago": _whole(raw.get("ago")), "unit": _text(raw.get("unit")) or "days"}
    return _text(raw.get("date")) or None


def decode_value(raw: Any, widget: str, field_: Field) -> Any:
    """The JSON value of a condition's or filter's value inputs, read the way `widget` renders them."""
    if widget == "none":
        return None
    if widget in ("text", "choice", "select"):
        text = _text(raw) if isinstance(raw, str) else ""
        if field_.type == cat.PROPERTY and text:
            number = _number(text)
            # Event properties compare numbers as numbers: "5" typed for a numeric property means 5.
            return number if isinstance(number, (int, float)) else text
        return text or None
    if widget == "number":
        return _number(raw) if isinstance(raw, str) else None
    if widget in ("text_list", "choice_list"):
        items = _text_list(raw)
        if field_.type == cat.PROPERTY and items and all(isinstance(_number(i), (int, float)) for i in items):
            return [_number(i) for i in items]
        return items
    if widget == "number_range":
        items = _items(raw)
        if not any(_text(item) for item in items):
            return None
        low, high = (items + ["", ""])[:2]
        return [_number(low), _number(high)]
    if widget == "relative_span":
        if not isinstance(raw, dict):
            return None
        return {"last": _whole(raw.get("last")), "unit": _text(raw.get("unit")) or "days"}
    if widget == "datetime":
        return _time_value(raw)
    if widget == "datetime_range":
        items = _items(raw)
        if not items:
            return None
        low, high = (items + [None, None])[:2]
        values = [_time_value(low), _time_value(high)]
        if isinstance(values[1], str):
            values[1] = end_of_day(values[1])
        return None if values == [None, None] else values
    return _text(raw) or None


# ------------------------------------------------------------------------------------------ widgets


def widget_for(field_: Field, op: str) -> str:
    """The widget that edits the value of `op` on the field (the catalog decides)."""
    if field_.type == cat.CHOICE and not field_.strict_choices:
        # Custom choice attributes accept any string: typed, with the values seen so far suggested.
        return {"eq": "text", "ne": "text", "in": "text_list", "not_in": "text_list"}.get(
            op, cat.value_widget(field_.type, op)
        )
    return cat.value_widget(field_.type, op)


def _measure_field(kind: str, measure: Any) -> Field | None:
    measures = cat.ORDER_MEASURES if kind == "orders" else cat.EVENT_MEASURES
    if not isinstance(measure, str) or measure not in measures:
        return None
    type_ = measures[measure]
    return Field(key=measure, label=measure, category="", type=type_, operators=cat.OPERATORS[type_])


def _fits(widget: str, value: Any, field_: Field) -> bool:
    """Whether a value has the shape the widget edits (else a changed field/operator drops it)."""
    if widget == "none":
        return False
    if widget in ("text", "select", "choice"):
        ok = isinstance(value, str) or (field_.type == cat.PROPERTY and isinstance(value, (int, float)))
        return ok and (widget == "text" or not field_.strict_choices or value in field_.choices)
    if widget == "number":
        return isinstance(value, (int, float, str)) and not isinstance(value, bool)
    if widget in ("text_list", "choice_list"):
        if not isinstance(value, list):
            return False
        return widget == "text_list" or not field_.strict_choices or all(v in field_.choices for v in value)
    if widget in ("number_range", "datetime_range"):
        return isinstance(value, list) and len(value) == 2
    if widget == "relative_span":
        return isinstance(value, dict) and "last" in value
    if widget == "datetime":
        return isinstance(value, str) or (isinstance(value, dict) and "ago" in value)
    return True


def _fill_amounts(value: Any) -> Any:
    """An empty "N" of "in the last N units" or "N units ago" gets the default (a time mode was just chosen)."""
    if isinstance(value, list):
        return [_fill_amounts(item) for item in value]
    if isinstance(value, dict):
        for key in ("last", "ago"):
            if key in value and value[key] is None:
                value[key] = DEFAULT_SPAN["last"]
    return value


def _repair_value(data: dict, field_: Field) -> None:
    """Make `data`'s op one the field allows and its value one the op's widget can show."""
    if data.get("op") not in field_.operators:
        data["op"] = default_op(field_.type)
    if "value" in data:
        data["value"] = _fill_amounts(data["value"])
    widget = widget_for(field_, data["op"])
    if "value" not in data:
        if widget == "relative_span":
            data["value"] = dict(DEFAULT_SPAN)
        elif widget in ("select", "choice") and field_.choices:
            data["value"] = field_.choices[0]
        return
    value = data["value"]
    if _fits(widget, value, field_):
        return
    # Keep what the marketer typed when only the number of values changed (eq "PL" -> in ["PL"]).
    first = value[0] if isinstance(value, list) and value else None
    if widget in ("text_list", "choice_list") and isinstance(value, str) and _fits(widget, [value], field_):
        data["value"] = [value]
    elif widget in ("text", "select", "choice") and first is not None and _fits(widget, first, field_):
        data["value"] = first
    else:
        del data["value"]
        _repair_value(data, field_)


def normalize(definition: dict, *, catalog: Catalog) -> dict:
    """A copy in which every known field, measure and operator fit together (after the marketer changed one).

    Unknown fields and kinds are left as they are: the validator reports them where they are.
    """
    result = copy.deepcopy(definition)
    _normalize_group(result, catalog)
    return result


def _normalize_group(group: dict, catalog: Catalog) -> None:
    if group.get("match") not in MATCHES:
        group["match"] = "all"
    for node in group.get("conditions", []):
        if not isinstance(node, dict):
            continue
        for optional in ("window", "filters", "value"):
            if optional in node and node[optional] is None:  # null means absent (a definition from the API)
                del node[optional]
        if "type" not in node:
            _normalize_group(node, catalog)
        elif node["type"] == "attribute":
            found = catalog.field(node.get("field", ""))
            if found is not None:
                _repair_value(node, found)
        elif node["type"] == "tag":
            if node.get("op") not in cat.TAG_OPERATORS:
                node["op"] = "has_any"
            if not isinstance(node.get("value"), list):
                node["value"] = []
        elif node["type"] in ("orders", "event"):
            lookup = catalog.order_filter if node["type"] == "orders" else catalog.event_filter
            for item in node.get("filters", []):
                if isinstance(item, dict) and "value" in item and item["value"] is None:
                    del item["value"]
                found = lookup(item.get("field", ""))
                if found is not None:
                    _repair_value(item, found)
            if "window" in node:
                _fill_amounts(node["window"])
            if node.get("measure") is None:
                node["measure"] = "count"
            measure_field = _measure_field(node["type"], node.get("measure"))
            if measure_field is not None:
                _repair_value(node, measure_field)
        elif node["type"] == "segment" and node.get("op") not in cat.SEGMENT_OPERATORS:
            node["op"] = "in"


# ------------------------------------------------------------------------------------------ structural edits


class BuilderActionError(ValueError):
    """An action that does not apply to the definition (a stale page, a forged request)."""


def new_condition(kind: str, *, catalog: Catalog, segments: Iterable[tuple[int, str]] = ()) -> dict:
    """A fresh condition of a kind ("tag", "orders", "event", "segment", "group" or "attribute:<field>").

    >>> new_condition("orders", catalog=Catalog(workspace_id=None))
    {'type': 'orders', 'measure': 'count', 'op': 'gte', 'value': 1}
    """
    if kind.startswith("attribute:"):
        found = catalog.field(kind.split(":", 1)[1])
        if found is None:
            raise BuilderActionError(f"unknown field {kind.split(':', 1)[1]!r}")
        data: dict[str, Any] = {"type": "attribute", "field": found.key, "op": default_op(found.type)}
        _repair_value(data, found)
        return data
    if kind == "group":
        return {"match": "any", "conditions": []}
    if kind == "tag":
        return {"type": "tag", "op": "has_any", "value": []}
    if kind == "orders":
        return {"type": "orders", "measure": "count", "op": "gte", "value": 1}
    if kind == "event":
        return {
            "type": "event",
            "event": "email_open",
            "window": dict(DEFAULT_SPAN),
            "measure": "count",
            "op": "gte",
            "value": 1,
        }
    if kind == "segment":
        first = next(iter(segments), None)
        data = {"type": "segment", "op": "in"}
        if first is not None:
            data["segment"] = first[0]
        return data
    raise BuilderActionError(f"unknown kind of condition {kind!r}")


def _new_filter(kind: str, catalog: Catalog) -> dict:
    first = (catalog.order_filters() if kind == "orders" else catalog.event_filters())[0]
    data = {"field": first.key, "op": default_op(first.type)}
    _repair_value(data, first)
    return data


ACTIONS = (
    "refresh",
    "add",
    "remove",
    "move_up",
    "move_down",
    "wrap",
    "unwrap",
    "add_filter",
    "add_item",
    "remove_item",
)


def parse_action(raw: str) -> tuple[str, str, str]:
    """A button's value `action|target|argument` -> its parts (missing parts are empty).

    >>> parse_action("add|conditions[1]|attribute:country")
    ('add', 'conditions[1]', 'attribute:country')
    """
    parts = (raw or "refresh").split("|", 2)
    action, target, argument = (parts + ["", ""])[:3]
    return action, target, argument


def apply_action(
    definition: dict,
    action: str,
    target: str = "",
    argument: str = "",
    *,
    catalog: Catalog,
    segments: Iterable[tuple[int, str]] = (),
) -> dict:
    """The definition after one structural edit; the input is not changed. Raises BuilderActionError.

    - `add` (target: a group, argument: the kind for `new_condition`) appends a condition or a group;
    - `remove`, `move_up`, `move_down` (target: a node, filter or list item) edit its list;
    - `wrap` puts a condition into a new group of its own, `unwrap` replaces a group by its conditions;
    - `add_filter` (target: an orders or event condition), `add_item` (target: a list value);
    - `refresh` only re-reads the form (a changed field, operator, measure or time mode).

    >>> apply_action({"match": "all", "conditions": [{"type": "tag", "op": "has_any", "value": ["a"]}]},
    ...     "wrap", "conditions[0]", catalog=Catalog(workspace_id=None))
    {'match': 'all', 'conditions': [{'match': 'any', 'conditions': [{'type': 'tag', 'op': 'has_any', 'value': ['a']}]}]}
    """
    if action not in ACTIONS:
        raise BuilderActionError(f"unknown action {action!r}")
    result = copy.deepcopy(definition)
    try:
        _apply(result, action, target, argument, catalog, segments)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        if isinstance(exc, BuilderActionError):
            raise
        raise BuilderActionError(f"cannot {action} at {target!r}: {exc}") from exc
    return result


def _apply(
    result: dict, action: str, target: str, argument: str, catalog: Catalog, segments: Iterable[tuple[int, str]]
) -> None:
    if action == "refresh":
        return
    if action == "add":
        group = get_at(result, target) if target else result
        if not isinstance(group, dict) or "match" not in group:
            raise BuilderActionError(f"{target!r} is not a group")
        if argument == "group" and depth_of(target) >= MAX_DEPTH:
            raise BuilderActionError(f"groups nest at most {MAX_DEPTH} deep")
        group.setdefault("conditions", []).append(new_condition(argument, catalog=catalog, segments=segments))
    elif action in ("remove", "remove_item"):
        items, index = _container_and_index(result, target)
        del items[index]
    elif action in ("move_up", "move_down"):
        items, index = _container_and_index(result, target)
        other = index - 1 if action == "move_up" else index + 1
        if 0 <= other < len(items):
            items[index], items[other] = items[other], items[index]
    elif action == "wrap":
        items, index = _container_and_index(result, target)
        if depth_of(target) >= MAX_DEPTH:
            raise BuilderActionError(f"groups nest at most {MAX_DEPTH} deep")
        items[index] = {"match": "any", "conditions": [items[index]]}
    elif action == "unwrap":
        items, index = _container_and_index(result, target)
        group = items[index]
        if not isinstance(group, dict) or "match" not in group:
            raise BuilderActionError(f"{target!r} is not a group")
        items[index : index + 1] = group.get("conditions", [])
    elif action == "add_filter":
        condition = get_at(result, target)
        if condition.get("type") not in ("orders", "event"):
            raise BuilderActionError(f"{target!r} has no filters")
        condition.setdefault("filters", []).append(_new_filter(condition["type"], catalog))
    elif action == "add_item":
        tokens = parse_path(target)
        parent = get_at(result, target.rsplit(".", 1)[0]) if len(tokens) > 1 else result
        current = parent.get(tokens[-1])
        if current is None:
            current = parent[tokens[-1]] = []
        if not isinstance(current, list):
            raise BuilderActionError(f"{target!r} is not a list")
        current.append("")


# ------------------------------------------------------------------------------------------ the page's view


@dataclass
class Option:
    value: str
    label: str
    selected: bool = False


@dataclass
class OptionGroup:
    label: str
    options: list[Option]


@dataclass
class ValueView:
    """The inputs of one value: `widget` picks the template; the rest are what that widget needs."""

    path: str
    widget: str
    label: str
    value: Any = None
    options: list[Option] = field(default_factory=list)
    items: list[dict] = field(default_factory=list)
    suggest: str = ""
    unit_options: list[Option] = field(default_factory=list)
    parts: list[dict] = field(default_factory=list)
    step: str = "any"

    @property
    def id(self) -> str:
        return dom_id(self.path)


_NODE_KEYS = ("type", "field", "op", "measure", "event", "segment", "match", "property")
_WINDOW_KEYS = ("mode", "last", "unit", "from", "to")


def _names(path: str) -> dict[str, str]:
    """Input names of a node's parts, by part ("op" -> "conditions[0].op"; "window_last" for window.last)."""
    names = {key: join(path, key) for key in _NODE_KEYS}
    names.update({f"window_{key}": join(join(path, "window"), key) for key in _WINDOW_KEYS})
    return names


class _Parts:
    """Input names and ids of the parts of a node or filter at `self.path`, and its 1-based number."""

    path: str
    index: int

    @property
    def number(self) -> int:
        return self.index + 1

    @property
    def names(self) -> dict[str, str]:
        return _names(self.path)

    @property
    def ids(self) -> dict[str, str]:
        return {key: dom_id(name) for key, name in self.names.items()}


@dataclass
class FilterView(_Parts):
    path: str
    index: int
    field_options: list[OptionGroup]
    op_options: list[Option]
    property_key: str | None
    value: ValueView

    @property
    def id(self) -> str:
        return dom_id(self.path)


@dataclass
class NodeView(_Parts):
    """A group or a condition as the builder shows it."""

    path: str
    kind: str
    index: int
    count: int
    depth: int
    errors: list[str] = field(default_factory=list)
    # groups
    match_options: list[Option] = field(default_factory=list)
    connector: str = ""
    children: list[NodeView] = field(default_factory=list)
    can_nest: bool = False
    # conditions
    title: str = ""
    field_options: list[OptionGroup] = field(default_factory=list)
    op_options: list[Option] = field(default_factory=list)
    measure_options: list[Option] = field(default_factory=list)
    event_options: list[Option] = field(default_factory=list)
    segment_options: list[Option] = field(default_factory=list)
    window_mode: str = ""
    window_options: list[Option] = field(default_factory=list)
    window_last: Any = ""
    window_unit_options: list[Option] = field(default_factory=list)
    window_from: str = ""
    window_to: str = ""
    window_from_type: str = "date"
    window_to_type: str = "date"
    filters: list[FilterView] = field(default_factory=list)
    value: ValueView | None = None
    unknown_field: str = ""

    @property
    def id(self) -> str:
        return dom_id(self.path, "node")

    @property
    def error_id(self) -> str:
        return dom_id(self.path, "err")

    @property
    def is_group(self) -> bool:
        return self.kind == "group"

    @property
    def is_first(self) -> bool:
        return self.index == 0

    @property
    def is_last(self) -> bool:
        return self.index == self.count - 1


def errors_by_node(errors: Iterable[Mapping[str, str]]) -> dict[str, list[str]]:
    """Validator errors grouped by the path of the group or condition they belong to, in words.

    >>> errors_by_node([{"path": "conditions[0].filters[1].value", "message": "expected a number"}])
    {'conditions[0]': ['Filter 2, value: expected a number']}
    """
    grouped: dict[str, list[str]] = {}
    for error in errors:
        path = error.get("path", "")
        node = node_path_of(path)
        where = describe_error_part(path, node)
        grouped.setdefault(node, []).append(f"{where}: {error['message']}" if where else error["message"])
    return grouped


def node_paths(definition: dict) -> list[str]:
    """The path of every group and condition, the root ("") first (the error slots the page has)."""
    paths = [""]

    def walk(group: dict, path: str) -> None:
        for index, node in enumerate(group.get("conditions", [])):
            node_path = join(join(path, "conditions"), index)
            paths.append(node_path)
            if isinstance(node, dict) and "type" not in node:
                walk(node, node_path)

    walk(definition, "")
    return paths


def _options(values: Iterable[str], labels: Mapping[str, str], selected: Any) -> list[Option]:
    return [Option(value, labels.get(value, value.replace("_", " ")), value == selected) for value in values]


def field_option_groups(fields: Iterable[Field], selected: str) -> list[OptionGroup]:
    """Fields grouped by category in catalog order (the `<optgroup>`s of a field select)."""
    groups: dict[str, list[Option]] = {}
    for item in fields:
        groups.setdefault(item.category, []).append(Option(item.key, item.label, item.key == selected))
    return [OptionGroup(label, options) for label, options in groups.items()]


@dataclass
class PickerEntry:
    """One choice of the "add a condition" picker."""

    kind: str
    label: str
    description: str
    search: str


def picker_groups(catalog: Catalog, *, has_segments: bool) -> list[tuple[str, list[PickerEntry]]]:
    """The picker's entries grouped by category (catalog categories, in their order)."""
    grouped: dict[str, list[PickerEntry]] = {category: [] for category in cat.CATEGORIES}
    for kind in catalog.condition_kinds():
        if kind.type == "segment" and not has_segments:
            continue
        description = {
            "tag": "has or lacks some tags",
            "orders": "what they bought, how much, how often, when",
            "event": "what they did: email opens and clicks, visits, cart adds",
            "segment": "member of another segment (or not)",
        }.get(kind.type, "")
        grouped[kind.category].append(
            PickerEntry(kind.type, kind.label, description, f"{kind.label} {description} {kind.category}".lower())
        )
    for item in catalog.fields():
        grouped.setdefault(item.category, []).append(
            PickerEntry(
                f"attribute:{item.key}",
                item.label,
                item.description,
                f"{item.label} {item.key} {item.description} {item.category}".lower(),
            )
        )
    return [(category, entries) for category, entries in grouped.items() if entries]


def value_view(path: str, field_: Field, op: str, value: Any, label: str, suggest: str = "") -> ValueView:
    """The inputs that edit the value of `op` on `field_` at `path`."""
    widget = widget_for(field_, op)
    view = ValueView(path=join(path, "value"), widget=widget, label=label, value=value, suggest=suggest)
    if field_.places == 0 or widget == "number" and field_.key == "count":
        view.step = "1"
    if widget in ("select", "choice"):
        view.options = _options(field_.choices, {}, value)
    elif widget == "choice_list":
        chosen = set(value) if isinstance(value, list) else set()
        view.options = [Option(choice, choice.replace("_", " "), choice in chosen) for choice in field_.choices]
    elif widget == "text_list":
        items = value if isinstance(value, list) and value else [""]
        view.items = [{"path": join(view.path, i), "id": dom_id(join(view.path, i)), "value": v, "number": i + 1}
                      for i, v in enumerate(items)]
    elif widget == "number_range":
        low, high = ((value if isinstance(value, list) else []) + [None, None])[:2]
        view.parts = [
            {"path": join(view.path, 0), "id": dom_id(join(view.path, 0)), "value": _shown(low), "label": "from"},
            {"path": join(view.path, 1), "id": dom_id(join(view.path, 1)), "value": _shown(high), "label": "to"},
        ]
    elif widget == "relative_span":
        span = value if isinstance(value, dict) else {}
        view.parts = [_span_part(view.path, "last", span)]
        view.unit_options = _options(UNITS, UNIT_LABELS, span.get("unit", "days"))
    elif widget == "datetime":
        view.parts = [_time_part(view.path, value, label)]
    elif widget == "datetime_range":
        low, high = ((value if isinstance(value, list) else []) + [None, None])[:2]
        view.parts = [
            _time_part(join(view.path, 0), low, "from"),
            _time_part(join(view.path, 1), high, "to", end=True),
        ]
    else:
        view.value = _shown(value)
    return view


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _span_part(path: str, key: str, span: dict) -> dict:
    return {"path": join(path, key), "id": dom_id(join(path, key)), "value": _shown(span.get(key)), "label": key}


def _time_part(path: str, value: Any, label: str, *, end: bool = False) -> dict:
    """One point in time: a date (or date and time) or N units ago; `mode` says which inputs show."""
    mode = "ago" if isinstance(value, dict) else "date"
    date_type, shown = date_input(value if isinstance(value, str) else "", end=end)
    ago = value if isinstance(value, dict) else {}
    return {
        "path": path,
        "label": label,
        "mode": mode,
        "mode_path": join(path, "mode"),
        "mode_id": dom_id(join(path, "mode")),
        "mode_options": _options(TIME_MODES, TIME_MODES, mode),
        "date_path": join(path, "date"),
        "date_id": dom_id(join(path, "date")),
        "date_type": date_type,
        "date_value": shown,
        "ago_path": join(path, "ago"),
        "ago_id": dom_id(join(path, "ago")),
        "ago_value": _shown(ago.get("ago", "")),
        "unit_path": join(path, "unit"),
        "unit_id": dom_id(join(path, "unit")),
        "unit_options": _options(UNITS, UNIT_LABELS, ago.get("unit", "days")),
    }


def builder_view(
    definition: dict,
    *,
    catalog: Catalog,
    errors: Iterable[Mapping[str, str]] = (),
    segments: Iterable[tuple[int, str]] = (),
) -> NodeView:
    """Everything the builder template shows for a (draft) definition, errors placed on their conditions.

    `segments` are (id, name) of the workspace's other segments, for segment conditions.
    """
    by_node = errors_by_node(errors)
    segment_list = list(segments)
    return _group_view(definition, "", 0, 1, 1, catalog, by_node, segment_list)


def _group_view(
    group: dict,
    path: str,
    index: int,
    count: int,
    depth: int,
    catalog: Catalog,
    by_node: dict[str, list[str]],
    segments: list[tuple[int, str]],
) -> NodeView:
    match = group.get("match", "all")
    conditions = [node for node in group.get("conditions", []) if isinstance(node, dict)]
    view = NodeView(
        path=path,
        kind="group",
        index=index,
        count=count,
        depth=depth,
        errors=by_node.get(path, []),
        match_options=_options(MATCHES, MATCH_LABELS, match),
        connector=CONNECTORS.get(match, "and"),
        can_nest=depth < MAX_DEPTH,
    )
    for child_index, node in enumerate(conditions):
        child_path = join(join(path, "conditions"), child_index)
        if "type" in node:
            child = _condition_view(node, child_path, child_index, len(conditions), depth, catalog, by_node, segments)
        else:
            child = _group_view(node, child_path, child_index, len(conditions), depth + 1, catalog, by_node, segments)
        view.children.append(child)
    return view


def _condition_view(
    node: dict,
    path: str,
    index: int,
    count: int,
    depth: int,
    catalog: Catalog,
    by_node: dict[str, list[str]],
    segments: list[tuple[int, str]],
) -> NodeView:
    kind = node.get("type", "")
    view = NodeView(
        path=path, kind=kind, index=index, count=count, depth=depth, errors=by_node.get(path, []),
        title=KIND_LABELS.get(kind, kind),
    )
    op = node.get("op", "")
    if kind == "attribute":
        found = catalog.field(node.get("field", ""))
        view.field_options = field_option_groups(catalog.fields(), node.get("field", ""))
        if found is None:
            view.unknown_field = str(node.get("field", ""))
            return view
        view.title = found.label
        view.op_options = _options(found.operators, OP_LABELS, op)
        suggest = SUGGESTIONS.get(found.key, "")
        if found.source == cat.SOURCE_ATTRIBUTE and found.type in (cat.TEXT, cat.CHOICE):
            suggest = "attribute:" + (found.json_key or "")
        view.value = value_view(path, found, op, node.get("value"), f"{found.label} value", suggest)
    elif kind == "tag":
        view.op_options = _options(cat.TAG_OPERATORS, OP_LABELS, op)
        tags = Field(key="tag", label="Tag", category="", type=cat.TEXT, operators=("in",))
        view.value = value_view(path, tags, "in", node.get("value"), "Tag", TAG_SUGGESTIONS)
    elif kind in ("orders", "event"):
        _activity_view(view, node, path, catalog)
    elif kind == "segment":
        view.op_options = _options(cat.SEGMENT_OPERATORS, SEGMENT_OP_LABELS, op)
        chosen = node.get("segment")
        view.segment_options = [Option(str(pk), name, pk == chosen) for pk, name in segments]
        if chosen is not None and not any(pk == chosen for pk, _ in segments):
            view.segment_options.insert(0, Option(str(chosen), f"segment {chosen} (not found)", True))
    return view


def _activity_view(view: NodeView, node: dict, path: str, catalog: Catalog) -> None:
    """Orders and event conditions: filters, window, measure, operator and value."""
    kind = node["type"]
    measures = cat.ORDER_MEASURES if kind == "orders" else cat.EVENT_MEASURES
    labels = ORDER_MEASURE_LABELS if kind == "orders" else EVENT_MEASURE_LABELS
    measure = node.get("measure", "count")
    view.measure_options = _options(measures, labels, measure)
    if kind == "event":
        view.event_options = _options(
            [cat.ANY_EVENT, *catalog.event_types()], EVENT_LABELS, node.get("event", cat.ANY_EVENT)
        )
    lookup = catalog.order_filter if kind == "orders" else catalog.event_filter
    filter_fields = catalog.order_filters() if kind == "orders" else catalog.event_filters()
    for filter_index, item in enumerate(node.get("filters", [])):
        if not isinstance(item, dict):
            continue
        filter_path = join(join(path, "filters"), filter_index)
        key = item.get("field", "")
        found = lookup(key) if isinstance(key, str) else None
        is_property = isinstance(key, str) and key.startswith(cat.PROPERTY_PREFIX)
        options = field_option_groups(filter_fields, key)
        if kind == "event":
            options.append(OptionGroup("Event properties", [Option(PROPERTY_CHOICE, "a property…", is_property)]))
        if found is None:
            found = Field(key=str(key), label=str(key), category="", type=cat.TEXT, operators=cat.OPERATORS[cat.TEXT])
        suggest = SUGGESTIONS.get(found.key, "")
        view.filters.append(
            FilterView(
                path=filter_path,
                index=filter_index,
                field_options=options,
                op_options=_options(found.operators, OP_LABELS, item.get("op", "")),
                property_key=key[len(cat.PROPERTY_PREFIX) :] if is_property else None,
                value=value_view(filter_path, found, item.get("op", ""), item.get("value"), f"{found.label} value",
                                 suggest),
            )
        )
    window = node.get("window")
    if isinstance(window, dict) and "last" in window:
        view.window_mode = "last"
        view.window_last = _shown(window.get("last"))
        view.window_unit_options = _options(UNITS, UNIT_LABELS, window.get("unit", "days"))
    elif isinstance(window, dict) and "from" in window:
        view.window_mode = "between"
        view.window_from_type, view.window_from = date_input(str(window.get("from") or ""))
        view.window_to_type, view.window_to = date_input(str(window.get("to") or ""), end=True)
    else:
        view.window_mode = "all"
    if not view.window_unit_options:
        view.window_unit_options = _options(UNITS, UNIT_LABELS, "days")
    view.window_options = _options(WINDOW_MODES, WINDOW_MODES, view.window_mode)
    measure_field = _measure_field(kind, measure)
    if measure_field is not None:
        view.op_options = _options(measure_field.operators, OP_LABELS, node.get("op", ""))
        view.value = value_view(path, measure_field, node.get("op", ""), node.get("value"), labels.get(measure, ""))
