"""Plain-language summary of a segment definition, deterministic English from the catalog.

>>> summarize(parse_definition({"match": "all", "conditions": [  # doctest: +SKIP
...     {"type": "orders", "filters": [{"field": "product.producer", "op": "eq", "value": "Acme"}],
...      "window": {"last": 6, "unit": "months"}, "measure": "sum", "op": "gt", "value": 300},
...     {"type": "event", "event": "email_open", "window": {"last": 7, "unit": "days"},
...      "measure": "count", "op": "gte", "value": 1}]}, catalog=catalog), catalog=catalog, currency="EUR")
'Contacts who bought Acme products for over 300 EUR in the last 6 months and opened an email in the last 7 days'

Rules: every condition becomes one clause starting with "who" or "whose" (or "who are" for tags and
segments); `all` joins clauses with "and", `any` with "or", `none` reads "none of: (a; b)"; nested groups
are parenthesised; referenced segments are named; text values are quoted, choice values are not; money
carries the workspace currency. Operators that also hold for a missing value say so where it is not
implied ("more than 90 days ago or missing"). The same phrases serve `segments_app.explain`.

The summary works on a parsed definition (`definition.parse_definition`), so it never describes something
the compiler would not run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from contacts.models import Workspace

from . import catalog as cat
from .catalog import Catalog, Field
from .definition import (
    AttributeCondition,
    DefinitionError,
    EventCondition,
    Filter,
    Group,
    OrdersCondition,
    SegmentCondition,
    TagCondition,
    WorkspaceSegments,
    parse_definition,
)
from .models import Segment
from .timespec import Absolute, Ago, FixedWindow, LastWindow

# Nouns that read better than the catalog label inside a sentence ("whose number of orders is ...").
FIELD_NOUNS = {
    "orders_count": "number of orders",
    "total_spent": "total spending",
    "rfm_recency": "RFM recency score",
    "rfm_frequency": "RFM frequency score",
    "rfm_monetary": "RFM monetary score",
    "created_at": "creation time",
    "last_seen_at": "last activity",
    "cart_open_since": "first cart add since the last order",
    # filters of orders and events
    "source": "source",
    "total": "order total",
    "ordered_at": "order time",
    "product.sku": "SKU",
    "product.name": "product name",
    "product.producer": "producer",
    "product.category": "product category",
    "url": "URL",
}

# Event types as verbs: (past tense for "who ...", infinitive for "who did not ...", noun for measures).
EVENT_PHRASES = {
    "email_sent": ("were sent an email", "get an email", "email sent"),
    "email_open": ("opened an email", "open an email", "email open"),
    "email_click": ("clicked an email", "click an email", "email click"),
    "email_bounce": ("had an email bounce", "have an email bounce", "email bounce"),
    "email_complaint": ("complained about an email", "complain about an email", "email complaint"),
    "unsubscribe": ("unsubscribed", "unsubscribe", "unsubscribe"),
    "page_view": ("viewed a page", "view a page", "page view"),
    "product_view": ("viewed a product", "view a product", "product view"),
    "cart_add": ("added to cart", "add to cart", "cart add"),
    "checkout_start": ("started checkout", "start checkout", "checkout start"),
    "app_open": ("opened the app", "open the app", "app open"),
    cat.ANY_EVENT: ("did anything", "do anything", "activity"),
}

UNIT_SINGULAR = {"hours": "hour", "days": "day", "weeks": "week", "months": "month"}

MONEY_FIELDS = frozenset({"total_spent", "avg_order_value", "total", "unit_price"})


# ---------------------------------------------------------------------------- values


def number_text(value: Decimal | int | float) -> str:
    """A number as written in a sentence: 300, 12.5, -1 (no exponent, no trailing zeros)."""
    number = Decimal(str(value)) if not isinstance(value, Decimal) else value
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def money_text(value: Decimal | int | float, currency: str, *, cents: bool = False) -> str:
    """`300 EUR`, or with `cents` always two decimal places (`412.50 EUR`), for observed amounts."""
    if cents:
        return f"{Decimal(str(value)).quantize(Decimal('0.01')):f} {currency}"
    return f"{number_text(value)} {currency}"


def time_text(moment: datetime) -> str:
    """`2024-05-01` at midnight UTC, else `2024-05-01 10:30 UTC` (seconds when there are any)."""
    moment = moment.astimezone(UTC)
    if (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0):
        return moment.strftime("%Y-%m-%d")
    if moment.second or moment.microsecond:
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def amount_text(amount: int, unit: str) -> str:
    return f"{amount} {UNIT_SINGULAR[unit] if amount == 1 else unit}"


def time_value_text(value: Absolute | Ago) -> str:
    if isinstance(value, Ago):
        return f"{amount_text(value.amount, value.unit)} ago"
    return time_text(value.at)


def span_text(span: LastWindow) -> str:
    """`the last 6 months`, `the last month`."""
    if span.amount == 1:
        return f"the last {UNIT_SINGULAR[span.unit]}"
    return f"the last {span.amount} {span.unit}"


def window_text(window: LastWindow | FixedWindow | None) -> str:
    """The window as a trailing phrase with a leading space, or "" for all time."""
    if window is None:
        return ""
    if isinstance(window, LastWindow):
        return f" in {span_text(window)}"
    if window.end is None:
        return f" since {time_text(window.start)}"
    return f" between {time_text(window.start)} and {time_text(window.end)}"


def quoted(text: str) -> str:
    return f'"{text}"'


def _or_list(items: list[str], word: str = "or") -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + f" {word} " + items[-1]


# ---------------------------------------------------------------------------- the describer


class Describer:
    """Phrases for definitions of one workspace: its catalog's labels, its currency, its segments' names."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        currency: str = "EUR",
        segment_name: Callable[[int], str | None] | Mapping[int, str] | None = None,
    ) -> None:
        self.catalog = catalog
        self.currency = currency
        if segment_name is None:
            self._segment_name: Callable[[int], str | None] = lambda _id: None
        elif isinstance(segment_name, Mapping):
            self._segment_name = segment_name.get
        else:
            self._segment_name = segment_name

    # -- fields and values

    def field(self, key: str) -> Field | None:
        return self.catalog.field(key) or self.catalog.order_filter(key) or self.catalog.event_filter(key)

    def noun(self, key: str) -> str:
        """What a field is called inside a sentence: "country", "email status", "RFM segment"."""
        if key in FIELD_NOUNS:
            return FIELD_NOUNS[key]
        field = self.field(key)
        label = field.label if field is not None else key
        if field is not None and field.source in (cat.SOURCE_ATTRIBUTE, cat.SOURCE_PROPERTY):
            return label[0].lower() + label[1:]
        if len(label) > 1 and label[:2].isupper():
            return label  # an acronym first: "RFM segment", "UTM campaign", "URL"
        return label[0].lower() + label[1:]

    def segment_label(self, segment_id: int) -> str:
        name = self._segment_name(segment_id)
        return f"segment {quoted(name)}" if name else f"segment #{segment_id}"

    def value_text(self, key: str | None, type_: str, value: Any) -> str:
        """A compared value: text quoted, choices bare, money with the currency, times readable."""
        if isinstance(value, tuple):
            return ", ".join(self.value_text(key, type_, v) for v in value)
        if isinstance(value, (Absolute, Ago)):
            return time_value_text(value)
        if isinstance(value, Decimal):
            return money_text(value, self.currency) if key in MONEY_FIELDS else number_text(value)
        if isinstance(value, str):
            return value if type_ == cat.CHOICE else quoted(value)
        return str(value)

    def predicate(self, key: str | None, type_: str, op: str, value: Any) -> str:
        """The operator and value after a noun: "is at least 3", "is one of "PL", "DE"", "is in the last 7 days"."""
        show = lambda v: self.value_text(key, type_, v)  # noqa: E731 - a local shorthand
        if op == "is_set":
            return "is set"
        if op == "is_not_set":
            return "is missing"
        if op == "is_true":
            return "is true"
        if op == "is_false":
            return "is not true"
        if op in ("eq", "ne", "in", "not_in"):
            values = value if isinstance(value, tuple) else (value,)
            negative = op in ("ne", "not_in")
            if len(values) == 1:
                return f"is not {show(values[0])}" if negative else f"is {show(values[0])}"
            listed = ", ".join(show(v) for v in values)
            return f"is none of {listed}" if negative else f"is one of {listed}"
        if op == "contains":
            return f"contains {show(value)}"
        if op == "not_contains":
            return f"does not contain {show(value)}"
        if op == "starts_with":
            return f"starts with {show(value)}"
        if op == "ends_with":
            return f"ends with {show(value)}"
        if op in ("gt", "gte", "lt", "lte"):
            words = {"gt": "over", "gte": "at least", "lt": "under", "lte": "at most"}
            return f"is {words[op]} {show(value)}"
        if op == "between":
            low, high = value
            return f"is between {show(low)} and {show(high)}"
        if op == "before":
            return f"is before {show(value)}"
        if op == "after":
            return f"is after {show(value)}"
        if op == "in_last":
            return f"is in {span_text(value)}"
        if op == "not_in_last":
            return f"is more than {amount_text(value.amount, value.unit)} ago or missing"
        raise ValueError(f"no phrase for operator {op!r}")

    def count_text(self, op: str, value: Any, singular: str, plural: str) -> str:
        """How many: "at least 3 orders", "no orders", "between 2 and 5 orders"."""

        def noun(n: Decimal) -> str:
            return singular if n == 1 else plural

        if op in ("eq", "lt", "lte") and _only_zero(op, value):
            return f"no {plural}"
        if op == "eq":
            return f"exactly {number_text(value)} {noun(value)}"
        if op == "ne":
            return f"a number of {plural} other than {number_text(value)}"
        if op == "gt":
            return f"more than {number_text(value)} {plural}"
        if op == "gte":
            return f"at least {number_text(value)} {noun(value)}"
        if op == "lt":
            return f"fewer than {number_text(value)} {plural}"
        if op == "lte":
            return f"at most {number_text(value)} {noun(value)}"
        if op == "between":
            return f"between {number_text(value[0])} and {number_text(value[1])} {plural}"
        if op == "is_set":
            return f"any number of {plural}"
        if op == "is_not_set":
            return f"a missing number of {plural} (never true)"
        raise ValueError(f"no count phrase for operator {op!r}")

    def amount_compare(self, op: str, value: Any) -> str:
        """A money comparison without a verb: "over 300 EUR", "between 500 and 1000 EUR"."""
        words = {"gt": "over", "gte": "at least", "lt": "under", "lte": "at most", "eq": "exactly"}
        if op in words:
            return f"{words[op]} {money_text(value, self.currency)}"
        if op == "ne":
            return f"other than {money_text(value, self.currency)}"
        if op == "between":
            return f"between {number_text(value[0])} and {money_text(value[1], self.currency)}"
        if op == "is_set":
            return "any amount"
        if op == "is_not_set":
            return "a missing amount (never true)"
        raise ValueError(f"no amount phrase for operator {op!r}")

    # -- filters

    def items_text(self, filters: tuple[Filter, ...]) -> str:
        """What the item filters select, as a noun phrase: "Acme products", "SKU-2 or SKU-3"."""
        if len(filters) == 1:
            (flt,) = filters
            if flt.op == "eq" and flt.field == "product.producer":
                return f"{flt.value} products"
            if flt.op == "eq" and flt.field == "product.category":
                return f"{flt.value} products"
            if flt.field == "product.sku" and flt.op in ("eq", "in"):
                values = flt.value if isinstance(flt.value, tuple) else (flt.value,)
                return _or_list(list(values))
        clauses = [f"whose {self.noun(f.field)} {self.filter_predicate(f)}" for f in filters]
        return "items " + " and ".join(clauses)

    def filter_predicate(self, flt: Filter) -> str:
        field = self.field(flt.field)
        type_ = field.type if field is not None else cat.TEXT
        if type_ == cat.PROPERTY:
            type_ = cat.NUMBER if isinstance(flt.value, Decimal) else cat.TEXT
        return self.predicate(flt.field, type_, flt.op, flt.value)

    def order_filters_text(self, filters: tuple[Filter, ...]) -> str:
        """Order-level filters as a relative clause: "whose source is "paid_search"" (joined with "and")."""
        return " and ".join(f"whose {self.noun(f.field)} {self.filter_predicate(f)}" for f in filters)

    def event_filters_text(self, filters: tuple[Filter, ...]) -> str:
        """Event filters as a trailing phrase with a leading space: " on mobile", " where URL contains "sale""."""
        parts = []
        for flt in filters:
            if flt.field == "device" and flt.op in ("eq", "in"):
                values = flt.value if isinstance(flt.value, tuple) else (flt.value,)
                parts.append(f"on {_or_list(list(values))}")
            else:
                parts.append(f"where {self.noun(flt.field)} {self.filter_predicate(flt)}")
        return "".join(" " + part for part in parts)

    def split_filters(self, filters: tuple[Filter, ...]) -> tuple[tuple[Filter, ...], tuple[Filter, ...]]:
        """(order filters, item filters) of an orders condition."""
        items = tuple(f for f in filters if (self.catalog.order_filter(f.field) or _NO_FIELD).source == cat.SOURCE_ITEM)
        orders = tuple(f for f in filters if f not in items)
        return orders, items

    @staticmethod
    def event_phrases(event: str) -> tuple[str, str, str]:
        if event in EVENT_PHRASES:
            return EVENT_PHRASES[event]
        return (f"had a {quoted(event)} event", f"have a {quoted(event)} event", f"{quoted(event)} event")

    # -- conditions

    def condition(self, node: Any) -> str:
        """One condition as a clause that can follow "Contacts ": "whose country is "PL""."""
        if isinstance(node, AttributeCondition):
            return self.attribute(node)
        if isinstance(node, TagCondition):
            return self.tag(node)
        if isinstance(node, OrdersCondition):
            return self.orders(node)
        if isinstance(node, EventCondition):
            return self.event(node)
        if isinstance(node, SegmentCondition):
            label = self.segment_label(node.segment)
            return f"who are in {label}" if node.op == "in" else f"who are not in {label}"
        raise ValueError(f"not a condition: {type(node).__name__}")

    def attribute(self, cond: AttributeCondition) -> str:
        field = self.catalog.field(cond.field)
        type_ = field.type if field is not None else cat.TEXT
        return f"whose {self.noun(cond.field)} {self.predicate(cond.field, type_, cond.op, cond.value)}"

    def tag(self, cond: TagCondition) -> str:
        names = list(cond.names)
        if cond.op == "has_any":
            return f"who are tagged {_or_list(names)}"
        if cond.op == "has_all":
            return f"who are tagged {_or_list(names, 'and')}"
        if len(names) == 1:
            return f"who are not tagged {names[0]}"
        return f"who have none of the tags {', '.join(names)}"

    def orders(self, cond: OrdersCondition) -> str:
        order_filters, item_filters = self.split_filters(cond.filters)
        window = window_text(cond.window)
        where = self.order_filters_text(order_filters)
        if item_filters:
            items = self.items_text(item_filters)
            in_orders = f" in orders {where}" if where else ""
            if cond.measure == "count":
                if (cond.op == "gte" and cond.value == 1) or (cond.op == "gt" and cond.value == 0):
                    return f"who bought {items}{in_orders}{window}"
                count = self.count_text(cond.op, cond.value, "order", "orders")
                if count.startswith("no "):
                    if not window and not in_orders:
                        return f"who never bought {items}"
                    return f"who did not buy {items}{in_orders}{window}"
                return f"who bought {items} in {count}{(' ' + where) if where else ''}{window}"
            if cond.measure == "sum":
                return f"who bought {items} for {self.amount_compare(cond.op, cond.value)}{in_orders}{window}"
            subject = f"{_MEASURE_NOUNS[cond.measure]} of {items}{in_orders}{window}"
        else:
            orders_where = f" {where}" if where else ""
            if cond.measure == "count":
                count = self.count_text(cond.op, cond.value, "order", "orders")
                return f"who placed {count}{orders_where}{window}"
            if cond.measure == "sum":
                on = f" on orders {where}" if where else ""
                return f"who spent {self.amount_compare(cond.op, cond.value)}{on}{window}"
            subject = f"{_MEASURE_NOUNS[cond.measure]}{orders_where}{window}"
        if cond.measure in ("first_at", "last_at"):
            return f"whose {subject} {self.predicate(None, cat.DATETIME, cond.op, cond.value)}"
        return f"whose {subject} is {self.amount_compare(cond.op, cond.value)}"

    def event(self, cond: EventCondition) -> str:
        past, base, noun = self.event_phrases(cond.event)
        where = self.event_filters_text(cond.filters)
        window = window_text(cond.window)
        if cond.measure == "count":
            if (cond.op == "gte" and cond.value == 1) or (cond.op == "gt" and cond.value == 0):
                return f"who {past}{where}{window}"
            times = self.count_text(cond.op, cond.value, "time", "times")
            if times.startswith("no "):
                return f"who never {past}{where}" if not window else f"who did not {base}{where}{window}"
            return f"who {past}{where} {times}{window}"
        which = "first" if cond.measure == "first_at" else "last"
        return f"whose {which} {noun}{where}{window} {self.predicate(None, cat.DATETIME, cond.op, cond.value)}"

    # -- groups

    def group(self, group: Group, *, top: bool = False) -> str:
        parts = [self.node(node) for node in group.conditions]
        if group.match == "none":
            return "none of: (" + "; ".join(parts) + ")"
        joined = (" and " if group.match == "all" else " or ").join(_elide_who(parts))
        return joined if top or len(parts) == 1 else f"({joined})"

    def node(self, node: Any) -> str:
        return self.group(node) if isinstance(node, Group) else self.condition(node)

    def summary(self, group: Group) -> str:
        if not group.conditions:
            return "All contacts"
        if group.match == "none":
            return "Contacts matching " + self.group(group, top=True)
        return "Contacts " + self.group(group, top=True)


def _elide_who(parts: list[str]) -> list[str]:
    """Drop a "who" repeated from the previous clause: "who bought X and opened an email"."""
    result = []
    for index, part in enumerate(parts):
        if index and part.startswith("who ") and parts[index - 1].startswith("who "):
            part = part[len("who ") :]
        result.append(part)
    return result


def _only_zero(op: str, value: Decimal) -> bool:
    """Whether a whole-number count passes `op value` only when it is 0."""
    if op == "eq":
        return value == 0
    if op == "lt":
        return 0 < value <= 1
    return 0 <= value < 1  # lte


_MEASURE_NOUNS = {
    "avg": "average order",
    "min": "smallest order",
    "max": "largest order",
    "first_at": "first order",
    "last_at": "last order",
}
_NO_FIELD = Field(key="", label="", category="", type=cat.TEXT, operators=())


def summarize(
    definition: Group | Any,
    *,
    catalog: Catalog | None = None,
    workspace: Workspace | None = None,
    currency: str | None = None,
    segment_names: Callable[[int], str | None] | Mapping[int, str] | None = None,
) -> str:
    """The definition in one English sentence, e.g. "Contacts who placed at least 3 orders".

    `definition` is a parsed `Group`, or the JSON document, which is validated first (with the
    workspace's catalog; an invalid one is described by its first error). Give `catalog` or `workspace`.
    `segment_names` (a mapping or a function of the id) names referenced segments; without it they are
    looked up in the workspace, and unnamed ones read "segment #12". `currency` defaults to the
    workspace's.
    """
    if catalog is None:
        if workspace is None:
            raise ValueError("summarize needs a catalog or a workspace")
        from .catalog import build_catalog

        catalog = build_catalog(workspace, discover_attributes=False)
    if currency is None:
        currency = workspace.currency if workspace is not None else "EUR"
    if isinstance(definition, Group):
        group = definition
    else:
        try:
            group = _parse(definition, catalog=catalog, workspace=workspace)
        except DefinitionError as exc:
            first = exc.errors[0]
            where = f" at {first['path']}" if first["path"] else ""
            return f"(invalid definition{where}: {first['message']})"
    if segment_names is None and workspace is not None:
        ids = segment_ids_in(group)
        segment_names = (
            dict(Segment.objects.filter(workspace=workspace, pk__in=ids).values_list("pk", "name")) if ids else {}
        )
    return Describer(catalog=catalog, currency=currency, segment_name=segment_names).summary(group)


def _parse(definition: Any, *, catalog: Catalog, workspace: Workspace | None) -> Group:
    segments = WorkspaceSegments(workspace.pk) if workspace is not None else _NoSegments()
    return parse_definition(definition, catalog=catalog, segments=segments)


class _NoSegments:
    """Without a workspace, references are described by id: any segment "exists" with an empty rule."""

    def __init__(self) -> None:
        self.parsed: dict[int, Group] = {}

    def stored_definition(self, segment_id: int) -> Any:
        return {"match": "all", "conditions": []}


def segment_ids_in(group: Group) -> set[int]:
    """Every segment id referred to in the tree (not through the referenced segments)."""
    found: set[int] = set()
    for node in group.conditions:
        if isinstance(node, Group):
            found |= segment_ids_in(node)
        elif isinstance(node, SegmentCondition):
            found.add(node.segment)
    return found
