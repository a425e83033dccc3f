"""Hypothesis generators: small worlds of contacts and random valid definitions that fit them.

Worlds are small (a handful of contacts) but nasty: missing values and empty strings,
mixed-case and non-ASCII text, LIKE wildcards in data, custom attributes of mixed JSON
types, stored figures (those summarising the history derived from it, the rest set
directly), orders, items and
events whose times are drawn from a pool clustered on window edges (now minus N
hours/days/weeks/calendar months, give or take a microsecond or a second) and on
"now" itself. Definitions draw their values from the same pools, so equality and
window edges are hit often. "Now" itself is often a month end or a leap day.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from hypothesis import strategies as st

from . import reference as ref

UNITS = ["hours", "days", "weeks", "months"]
NOWS = [
    datetime(2024, 3, 31, 12, 0, tzinfo=UTC),  # minus 1 month: 29 February (leap year)
    datetime(2023, 3, 31, 23, 59, 59, 999999, tzinfo=UTC),  # minus 1 month: 28 February
    datetime(2024, 2, 29, 0, 0, tzinfo=UTC),
    datetime(2024, 5, 31, 8, 30, 15, 250000, tzinfo=UTC),
    datetime(2024, 1, 31, 0, 0, 0, 1, tzinfo=UTC),
    datetime(2024, 12, 31, 23, 0, tzinfo=UTC),
    datetime(2024, 6, 15, 12, 0, tzinfo=UTC),
]

BUILTIN_EVENTS = [
    "email_sent",
    "email_open",
    "email_click",
    "email_bounce",
    "email_complaint",
    "unsubscribe",
    "page_view",
    "product_view",
    "cart_add",
    "checkout_start",
    "app_open",
]
DATA_EVENTS = ["email_open", "email_click", "page_view", "cart_add", "webinar", "Webinar"]
EXTRA_EVENT_TYPES = ["trial_started"]  # received once, no events left

TEXTS = ["Anna", "anna", "ANNA", "nna", "Kraków", "KRAKÓW", "kraków", "a%b", "a_b", "axb", "x\\y", " ", "Ünï", "ünï",
         "ŁÓDŹ", "łódź", "МОСКВА", "Москва", "ΣΟΦΙΑ", "σοφια", "İstanbul", "istanbul", "STRASSE", "straße"]
SHORT_TEXTS = ["PL", "pl", "DE", "P", "%", "_", "é", "É"]  # for country (2 characters at most)
PRODUCER_TEXTS = ["Acme", "ACME", "acme corp", "Globex", "a_b", "50%"]
SOURCES = ["paid_search", "paid_social", "organic", "Paid_Search", "email"]
CURRENCIES = ["EUR", "eur", "USD"]
URLS = ["https://shop.example/cart", "https://shop.example/SALE", "/p/a_b", "/p/axb?x=100%"]
CAMPAIGNS = ["spring", "Spring", "SPRING_2024", "winter"]
TAG_NAMES = ["vip", "VIP", "newsletter", "b2b"]
SKUS = ["SKU-1", "sku-1", "SKU-2", "SKU-3", "A_B", "x%"]
ATTRIBUTE_KEYS = ["plan", "score", "vip", "signup", "nick name", "a.b"]
PROPERTY_KEYS = ["plan", "amount", "ref"]
DECLARABLE = ["text", "number", "boolean", "choice", "datetime"]

NUMBERS = [0, 1, 2, 3, 5, 10, 100, 0.1, 0.2, 0.3, 2.5, 99.99, 250.5, -1, 0.005, 1000]
MONEY = ["0", "0.10", "0.20", "0.30", "9.99", "10", "100", "150.50", "300", "-5"]

EMAIL_STATUSES = ["subscribed", "unsubscribed", "bounced", "complained", "never_subscribed"]
TRAFFIC_SOURCES = ["direct", "organic", "paid_search", "paid_social", "email", "referral", "affiliate", "other"]
LIFECYCLES = ["prospect", "new", "active", "returning", "inactive", "churned"]
RFM_SEGMENTS = ["champions", "loyal", "at_risk", "lost", "hibernating"]
DEVICE_PREFERENCES = ["mobile_only", "desktop_only", "cross_platform", "unknown"]
LOYALTY_TIERS = ["none", "bronze", "silver", "gold"]
EVENT_DEVICES = ["mobile", "desktop", "tablet", "other"]

CONTACT_TEXT_FIELDS = ["email", "first_name", "last_name", "phone", "city", "gender", "utm_campaign"]
CONTACT_CHOICES = {"email_status": EMAIL_STATUSES, "traffic_source": TRAFFIC_SOURCES}
STATS_CHOICES = {
    "lifecycle_stage": LIFECYCLES,
    "rfm_segment": RFM_SEGMENTS,
    "preferred_device": DEVICE_PREFERENCES,
    "loyalty_tier": LOYALTY_TIERS,
}
STATS_NOT_NULL = {
    "orders_count",
    "total_spent",
    "engagement_score",
    "lifecycle_stage",
    "preferred_device",
    "loyalty_tier",
}
STATS_INTEGERS = ["orders_count", "engagement_score", "rfm_recency", "rfm_frequency", "rfm_monetary"]
STATS_MONEY = ["total_spent", "avg_order_value"]
STATS_TIMES = [
    "first_order_at",
    "last_order_at",
    "last_seen_at",
    "last_email_open_at",
    "last_email_click_at",
    "cart_open_since",
]
STATS_TEXTS = ["top_category", "top_producer"]

OPERATORS = {
    "text": [
        "eq",
        "ne",
        "in",
        "not_in",
        "contains",
        "not_contains",
        "starts_with",
        "ends_with",
        "is_set",
        "is_not_set",
    ],
    "number": ["eq", "ne", "gt", "gte", "lt", "lte", "between", "is_set", "is_not_set"],
    "datetime": ["before", "after", "between", "in_last", "not_in_last", "is_set", "is_not_set"],
    "boolean": ["is_true", "is_false"],
    "choice": ["eq", "ne", "in", "not_in", "is_set", "is_not_set"],
}
ORDER_MEASURES = ["count", "sum", "avg", "min", "max", "first_at", "last_at"]
EVENT_MEASURES = ["count", "first_at", "last_at"]


# ---------------------------------------------------------------------------- worlds


@dataclass
class GeneratedWorld:
    """A world to load into the database and to give the reference evaluator."""

    now: datetime
    times: list[datetime]
    offsets: list[tuple[int, str]]  # the (N, unit) pairs the times were built from: spans hit their edges
    contacts: list[ref.Contact]
    products: list[ref.Product]
    declared: dict[str, str]
    custom_event_types: list[str]
    # Saved segments in creation order; a reference to saved segment i (1-based) is
    # written as {"segment": i} and rewritten to the real id when loading.
    segments: list[dict] = field(default_factory=list)

    @property
    def amounts(self) -> list[Decimal]:
        found = {Decimal(m) for m in MONEY}
        for contact in self.contacts:
            totals = [o.total for o in contact.orders]
            found.update(totals)
            found.add(sum(totals, Decimal(0)))
            for order in contact.orders:
                for item in order.items:
                    found.add(item.quantity * item.unit_price)
            if totals:
                found.add((sum(totals, Decimal(0)) / len(totals)).quantize(Decimal("0.000001")))
        return sorted(found)

    def reference_world(self, segment_ids: dict[int, int]) -> ref.World:
        return ref.World(
            contacts=self.contacts,
            attribute_types=self.declared,
            segments={segment_ids[i + 1]: with_segment_ids(d, segment_ids) for i, d in enumerate(self.segments)},
        )


def with_segment_ids(definition: Any, segment_ids: dict[int, int]) -> Any:
    """A copy of `definition` with segment placeholders (1-based positions) replaced by real ids."""
    if isinstance(definition, dict):
        copy = {k: with_segment_ids(v, segment_ids) for k, v in definition.items()}
        if copy.get("type") == "segment" and "segment" in copy:
            copy["segment"] = segment_ids[definition["segment"]]
        return copy
    if isinstance(definition, list):
        return [with_segment_ids(v, segment_ids) for v in definition]
    return definition


@st.composite
def time_pools(draw, now: datetime) -> tuple[list[datetime], list[tuple[int, str]]]:
    """Times clustered on window edges, and the (N, unit) offsets they were built from."""
    jitters = [0, 0, 0, 1, -1, 1_000_000, -1_000_000, 3_600_000_000, -86_400_000_000]
    pool, offsets = [now], []
    for _ in range(draw(st.integers(3, 8))):
        unit = draw(st.sampled_from(UNITS))
        amount = draw(st.integers(0, 7))
        jitter = draw(st.sampled_from(jitters))
        pool.append(ref.minus(now, amount, unit) + timedelta(microseconds=jitter))
        if amount:
            offsets.append((amount, unit))
    pool.append(now + timedelta(hours=draw(st.integers(1, 30))))  # a time in the future
    if draw(st.booleans()):
        pool.append(datetime(2020, 2, 29, tzinfo=UTC) + timedelta(microseconds=draw(st.integers(0, 10**12))))
    return pool, offsets or [(1, "days")]


def history_figures(orders: list[ref.Order], events: list[ref.Event]) -> dict[str, Any]:
    """The stored figures that summarise a contact's whole history (contacts.stats derives them the same way).

    The other figures (lifecycle, RFM, device, ...) stay drawn at random: no orders or event condition is
    answered from them, so what is tested there is the conditions on them, not their derivation.
    """
    totals = [order.total for order in orders]
    order_times = [order.ordered_at for order in orders]

    def last(kind: str | None) -> datetime | None:
        return max((e.occurred_at for e in events if kind is None or e.type == kind), default=None)

    average = None
    if orders:
        average = (sum(totals, Decimal(0)) / len(orders)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return {
        "orders_count": len(orders),
        "total_spent": sum(totals, Decimal(0)),
        "avg_order_value": average,
        "first_order_at": min(order_times, default=None),
        "last_order_at": max(order_times, default=None),
        "last_seen_at": last(None),
        "last_email_open_at": last("email_open"),
        "last_email_click_at": last("email_click"),
    }


def maybe(strategy, *, missing=(None,)):
    return st.one_of(st.sampled_from(list(missing)), strategy)


def money() -> st.SearchStrategy[Decimal]:
    return st.sampled_from(MONEY).map(Decimal)


@st.composite
def attribute_values(draw, times: list[datetime]) -> Any:
    iso_from_pool = st.sampled_from(times).flatmap(iso_strings)
    return draw(
        st.one_of(
            st.sampled_from([None, "", "gold", "Gold", "silver", "10", [1, 2], {"x": 1}]),
            st.sampled_from(NUMBERS),
            st.booleans(),
            iso_from_pool,
            st.sampled_from(["2024-02-30", "2024-03-31T24:00:00", "1999-12-31T10:00:00+15:00", "2024-1-5"]),
        )
    )


@st.composite
def property_values(draw) -> Any:
    return draw(
        st.sampled_from([None, "", "gold", "GOLD", "Gold plan", 0, 1.5, 10, -2, True, [1], {"a": 1}, "10", "1.5"])
    )


@st.composite
def worlds(draw, *, max_contacts: int = 6, with_segments: bool = True) -> GeneratedWorld:
    now = draw(
        st.one_of(
            st.sampled_from(NOWS),
            st.datetimes(min_value=datetime(2021, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
        )
    )
    times, offsets = draw(time_pools(now))
    when = st.sampled_from(times)
    # Orders and events are never dated after the moment they are stored, so never after "now" (the
    # contract; ingest and the admin enforce it). Other times (sign-ups, attributes) may lie ahead.
    happened = st.sampled_from([t for t in times if t <= now])
    products = [
        ref.Product(
            sku=sku,
            name=draw(maybe(st.sampled_from(TEXTS), missing=(None, ""))),
            producer=draw(maybe(st.sampled_from(PRODUCER_TEXTS), missing=(None, ""))),
            category=draw(maybe(st.sampled_from(["Shoes", "shoes", "Bags"]), missing=(None, ""))),
        )
        for sku in draw(st.lists(st.sampled_from(SKUS), max_size=4, unique=True))
    ]
    contacts = []
    for index in range(draw(st.integers(min(2, max_contacts), max_contacts))):
        fields: dict[str, Any] = {}
        for name in CONTACT_TEXT_FIELDS:
            fields[name] = draw(maybe(st.sampled_from(TEXTS), missing=(None, "")))
        fields["country"] = draw(maybe(st.sampled_from(SHORT_TEXTS), missing=(None, "")))
        for name, choices in CONTACT_CHOICES.items():
            fields[name] = draw(maybe(st.sampled_from(choices), missing=(None, "")))
        fields["created_at"] = draw(when)
        fields["birth_date"] = draw(
            maybe(
                st.sampled_from(times).flatmap(
                    lambda t: st.sampled_from([t.date(), t.date() - timedelta(days=1), t.date() + timedelta(days=1)])
                )
            )
        )
        stats: dict[str, Any] = {}
        for name in STATS_INTEGERS:
            stats[name] = draw(maybe(st.sampled_from([0, 1, 2, 3, 5, 100])))
        for name in STATS_MONEY:
            stats[name] = draw(maybe(money()))
        for name in STATS_TIMES:
            stats[name] = draw(maybe(when))
        for name in STATS_TEXTS:
            stats[name] = draw(maybe(st.sampled_from(TEXTS + PRODUCER_TEXTS), missing=(None, "")))
        for name, choices in STATS_CHOICES.items():
            stats[name] = draw(maybe(st.sampled_from(choices), missing=(None, "")))
        for name in STATS_NOT_NULL:
            if stats[name] is None:
                stats[name] = {"orders_count": 0, "total_spent": Decimal(0), "engagement_score": 0}.get(name, "")
        attributes = {
            key: draw(attribute_values(times))
            for key in draw(st.lists(st.sampled_from(ATTRIBUTE_KEYS), max_size=4, unique=True))
        }
        orders = []
        for _ in range(draw(st.integers(0, 4))):
            items = []
            if products:
                for _ in range(draw(st.integers(0, 3))):
                    items.append(
                        ref.Item(
                            product=draw(st.sampled_from(products)),
                            quantity=draw(st.integers(0, 3)),
                            unit_price=draw(money()),
                        )
                    )
            total = draw(st.one_of(money(), st.just(sum((i.quantity * i.unit_price for i in items), Decimal(0)))))
            orders.append(
                ref.Order(
                    ordered_at=draw(happened),
                    total=total,
                    currency=draw(st.sampled_from(CURRENCIES)),
                    source=draw(maybe(st.sampled_from(SOURCES), missing=(None, ""))),
                    items=items,
                )
            )
        events = []
        for _ in range(draw(st.integers(0, 5))):
            events.append(
                ref.Event(
                    type=draw(st.sampled_from(DATA_EVENTS)),
                    occurred_at=draw(happened),
                    device=draw(maybe(st.sampled_from(EVENT_DEVICES), missing=(None, ""))),
                    url=draw(maybe(st.sampled_from(URLS), missing=(None, ""))),
                    campaign=draw(maybe(st.sampled_from(CAMPAIGNS), missing=(None, ""))),
                    properties={
                        key: draw(property_values())
                        for key in draw(st.lists(st.sampled_from(PROPERTY_KEYS), max_size=3, unique=True))
                    },
                )
            )
        # The figures the compiler reads instead of the history agree with it, as ingest keeps them.
        stats.update(history_figures(orders, events))
        contacts.append(
            ref.Contact(
                key=f"c{index}",
                fields=fields,
                attributes=attributes,
                tags=set(draw(st.lists(st.sampled_from(TAG_NAMES), max_size=3, unique=True))),
                stats=stats,
                orders=orders,
                events=events,
            )
        )
    declared = {
        key: draw(st.sampled_from(DECLARABLE))
        for key in draw(st.lists(st.sampled_from(ATTRIBUTE_KEYS), max_size=2, unique=True))
    }
    received = {e.type for c in contacts for e in c.events if e.type not in BUILTIN_EVENTS}
    world = GeneratedWorld(
        now=now,
        times=times,
        offsets=offsets,
        contacts=contacts,
        products=products,
        declared=declared,
        custom_event_types=sorted(received | set(EXTRA_EVENT_TYPES)),
    )
    if with_segments:
        for _ in range(draw(st.integers(0, 2))):
            world.segments.append(draw(definitions(world, max_depth=2, max_children=2)))
    return world


# ---------------------------------------------------------------------------- values in definitions


@st.composite
def iso_strings(draw, moment: datetime, exact: bool = False) -> str:
    """The moment (or, unless `exact`, its day or minute) written in one of the ISO forms a definition may use."""
    forms = ["z", "utc_offset", "plus2", "minus5", "space"]
    form = draw(st.sampled_from(forms if exact else [*forms, "date", "minutes", "fraction"]))
    utc = moment.astimezone(UTC)
    if form == "date":
        return utc.date().isoformat()
    if form == "z":
        return utc.isoformat().replace("+00:00", "Z")
    if form == "utc_offset":
        return utc.isoformat()
    if form in ("plus2", "minus5"):
        tz = timezone(timedelta(hours=2) if form == "plus2" else timedelta(hours=-5))
        return utc.astimezone(tz).isoformat()
    if form == "space":
        return utc.replace(tzinfo=None).isoformat(sep=" ")
    if form == "minutes":
        return utc.strftime("%Y-%m-%dT%H:%M")
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + str(utc.microsecond).rjust(6, "0")[: draw(st.integers(1, 6))] + "Z"


def offset(world: GeneratedWorld) -> st.SearchStrategy[tuple[int, str]]:
    """Mostly the offsets the data's times sit on, sometimes any."""
    return st.one_of(
        st.sampled_from(world.offsets),
        st.sampled_from(world.offsets),
        st.tuples(st.integers(1, 8), st.sampled_from(UNITS)),
    )


def exact_time(world: GeneratedWorld) -> st.SearchStrategy[str]:
    """A time of the pool written exactly (every form but the truncating ones)."""
    return st.sampled_from(world.times).flatmap(lambda t: iso_strings(t, exact=True))


def time_value(world: GeneratedWorld):
    return st.one_of(
        exact_time(world),
        st.sampled_from(world.times).flatmap(iso_strings),
        offset(world).map(lambda pair: {"ago": pair[0], "unit": pair[1]}),
    )


def span_value(world: GeneratedWorld):
    return offset(world).map(lambda pair: {"last": pair[0], "unit": pair[1]})


@st.composite
def time_range(draw, world: GeneratedWorld) -> list:
    kind = draw(st.sampled_from(["iso", "ago", "mixed"]))
    if kind == "iso":
        a, b = sorted([draw(st.sampled_from(world.times)), draw(st.sampled_from(world.times))])
        return [draw(iso_strings(a)), b.isoformat()]
    if kind == "ago":
        unit = draw(st.sampled_from(UNITS))
        low, high = sorted([draw(st.integers(1, 8)), draw(st.integers(1, 8))], reverse=True)
        return [{"ago": low, "unit": unit}, {"ago": high, "unit": unit}]
    # One fixed and one relative time: their order depends on now, so validation accepts
    # either order and a reversed span simply matches nothing.
    pair = [draw(exact_time(world)), draw(offset(world).map(lambda p: {"ago": p[0], "unit": p[1]}))]
    return pair if draw(st.booleans()) else pair[::-1]


@st.composite
def window(draw, world: GeneratedWorld) -> dict | None:
    kind = draw(st.sampled_from(["none", "none", "last", "fixed", "open"]))
    if kind == "none":
        return None
    if kind == "last":
        return draw(span_value(world))
    a, b = sorted([draw(st.sampled_from(world.times)), draw(st.sampled_from(world.times))])
    # Writing a time may drop its fraction or time of day, which only moves it earlier:
    # fine for "from", while "to" is written exactly so that from <= to still holds.
    if kind == "open":
        return {"from": draw(iso_strings(a))}
    return {"from": draw(iso_strings(a)), "to": b.isoformat()}


def decimals_near(values: list) -> st.SearchStrategy:
    """Numbers at, just around, and between the given values (at most 6 decimals)."""
    base = st.sampled_from(values)
    return st.one_of(
        base.map(lambda v: Decimal(str(v))),
        base.map(lambda v: Decimal(str(v)) + Decimal("0.01")),
        base.map(lambda v: Decimal(str(v)) - Decimal("0.005")),
        base.map(lambda v: Decimal(str(v)) + Decimal("0.5")),
    ).map(json_number)


def json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


@st.composite
def text_value(draw, pool: list[str]) -> str:
    text = draw(st.sampled_from(pool + [""]))
    if text and draw(st.booleans()):
        start = draw(st.integers(0, len(text) - 1))
        end = draw(st.integers(start + 1, len(text)))
        text = text[start:end]
        if draw(st.booleans()):
            text = text.swapcase()
    return text


@st.composite
def value_for(draw, type_: str, op: str, world: GeneratedWorld, *, texts: list[str], numbers: list, choices=()):
    """A valid value for `op` on a field of `type_` (None for operators without a value)."""
    if op in ("is_set", "is_not_set", "is_true", "is_false"):
        return None
    if type_ == "choice":
        one = st.sampled_from(list(choices))
        return draw(st.lists(one, min_size=1, max_size=3)) if op in ("in", "not_in") else draw(one)
    if type_ == "text":
        if op in ("in", "not_in"):
            return draw(st.lists(text_value(texts), min_size=1, max_size=3))
        return draw(text_value(texts))
    if type_ == "number":
        one = decimals_near(numbers)
        if op == "between":
            low, high = sorted([draw(one), draw(one)])
            return [low, high]
        return draw(one)
    if type_ == "datetime":
        if op in ("in_last", "not_in_last"):
            return draw(span_value(world))
        if op == "between":
            return draw(time_range(world))
        return draw(time_value(world))
    raise AssertionError(type_)


# ---------------------------------------------------------------------------- definitions


CONTACT_FIELDS = {
    **{name: ("text", TEXTS) for name in CONTACT_TEXT_FIELDS},
    "country": ("text", SHORT_TEXTS),
    "birth_date": ("datetime", None),
    "created_at": ("datetime", None),
    "email_status": ("choice", EMAIL_STATUSES),
    "traffic_source": ("choice", TRAFFIC_SOURCES),
}
STATS_FIELDS = {
    **{name: ("number", [0, 1, 2, 3, 5, 100, 2.5]) for name in STATS_INTEGERS},
    **{name: ("number", [0.1, 0.2, 0.3, 9.99, 10, 100, 150.5, 300]) for name in STATS_MONEY},
    **{name: ("datetime", None) for name in STATS_TIMES},
    **{name: ("text", TEXTS + PRODUCER_TEXTS) for name in STATS_TEXTS},
    **{name: ("choice", choices) for name, choices in STATS_CHOICES.items()},
}
ORDER_FILTERS = {
    "source": ("text", SOURCES),
    "total": ("number", MONEY),
    "currency": ("text", CURRENCIES),
    "ordered_at": ("datetime", None),
    "product.sku": ("text", ["SKU-1", "sku-1", "SKU-2", "SKU-3", "#1", "A_B"]),
    "product.name": ("text", TEXTS),
    "product.producer": ("text", PRODUCER_TEXTS),
    "product.category": ("text", ["Shoes", "shoes", "Bags"]),
    "quantity": ("number", [0, 1, 2, 3]),
    "unit_price": ("number", MONEY),
}
EVENT_FILTERS = {"device": ("choice", EVENT_DEVICES), "url": ("text", URLS), "campaign": ("text", CAMPAIGNS)}


@st.composite
def attribute_condition(draw, world: GeneratedWorld) -> dict:
    reference_world = ref.World(contacts=world.contacts, attribute_types=world.declared)
    custom = {}
    for key in sorted({k for c in world.contacts for k in c.attributes} | set(world.declared)):
        custom[f"attributes.{key}"] = ref.attribute_type(reference_world, key)
    # Pick the kind of field first so that rare types (dates, booleans) get their share.
    by_type: dict[str, list[str]] = {}
    for candidate, (type_, _) in {**CONTACT_FIELDS, **STATS_FIELDS}.items():
        by_type.setdefault(type_, []).append(candidate)
    by_type["date"] = ["birth_date"]
    by_type["custom"] = sorted(custom)
    kind = draw(st.sampled_from(sorted(k for k, names in by_type.items() if names)))
    name = draw(st.sampled_from(sorted(by_type[kind])))
    if name in custom:
        type_ = custom[name]
        key = name[len("attributes.") :]
        seen = [c.attributes.get(key) for c in world.contacts]
        strings = [v for v in seen if isinstance(v, str) and v] or ["gold"]
        numbers = [v for v in seen if ref.is_json_number(v)] or NUMBERS
        op = draw(st.sampled_from(OPERATORS[type_]))
        if type_ == "choice":  # any string: custom choices are discovered, not declared
            value = draw(value_for("text", op, world, texts=strings, numbers=[]))
        else:
            value = draw(value_for(type_, op, world, texts=strings + ["gold", "Gold"], numbers=numbers))
    else:
        type_, pool = {**CONTACT_FIELDS, **STATS_FIELDS}[name]
        op = draw(st.sampled_from(OPERATORS[type_]))
        value = draw(value_for(type_, op, world, texts=pool or [], numbers=pool or [], choices=pool or []))
    condition = {"type": "attribute", "field": name, "op": op}
    if value is not None:
        condition["value"] = value
    return condition


@st.composite
def filters(draw, world: GeneratedWorld, table: dict) -> list[dict]:
    result = []
    for name in draw(st.lists(st.sampled_from(sorted(table)), max_size=2)):
        type_, pool = table[name]
        op = draw(st.sampled_from(OPERATORS[type_]))
        value = draw(value_for(type_, op, world, texts=pool or [], numbers=pool or [], choices=pool or []))
        flt = {"field": name, "op": op}
        if value is not None:
            flt["value"] = value
        result.append(flt)
    return result


@st.composite
def property_filter(draw) -> dict:
    key = draw(st.sampled_from(PROPERTY_KEYS))
    kind = draw(st.sampled_from(["set", "text", "number", "text_list", "number_list"]))
    flt: dict[str, Any] = {"field": f"properties.{key}"}
    if kind == "set":
        flt["op"] = draw(st.sampled_from(["is_set", "is_not_set"]))
    elif kind == "text":
        flt["op"] = draw(st.sampled_from(["eq", "ne", "contains", "not_contains", "starts_with", "ends_with"]))
        flt["value"] = draw(text_value(["gold", "Gold plan", "GOLD", "10", "1.5"]))
    elif kind == "number":
        flt["op"] = draw(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "between"]))
        one = decimals_near([0, 1.5, 10, -2, 1])
        flt["value"] = sorted([draw(one), draw(one)]) if flt["op"] == "between" else draw(one)
    elif kind == "text_list":
        flt["op"] = draw(st.sampled_from(["in", "not_in"]))
        flt["value"] = draw(st.lists(st.sampled_from(["gold", "GOLD", "10", ""]), min_size=1, max_size=3))
    else:
        flt["op"] = draw(st.sampled_from(["in", "not_in"]))
        flt["value"] = draw(st.lists(st.sampled_from([0, 1.5, 10, -2]), min_size=1, max_size=3))
    return flt


@st.composite
def measured(draw, world: GeneratedWorld, measures: list[str], condition: dict) -> dict:
    measure = draw(st.sampled_from(measures))
    condition["measure"] = measure
    if measure in ("first_at", "last_at"):
        type_, numbers = "datetime", []
    elif measure == "count":
        type_, numbers = "number", [0, 1, 2, 3, 0.5, 1.5]
    else:
        type_, numbers = "number", world.amounts
    condition["op"] = draw(st.sampled_from(OPERATORS[type_]))
    value = draw(value_for(type_, condition["op"], world, texts=[], numbers=numbers))
    if value is not None:
        condition["value"] = value
    return condition


@st.composite
def orders_condition(draw, world: GeneratedWorld) -> dict:
    condition: dict[str, Any] = {"type": "orders"}
    chosen = draw(filters(world, ORDER_FILTERS))
    if chosen:
        condition["filters"] = chosen
    span = draw(window(world))
    if span is not None:
        condition["window"] = span
    return draw(measured(world, ORDER_MEASURES, condition))


@st.composite
def event_condition(draw, world: GeneratedWorld) -> dict:
    name = draw(st.sampled_from(["any", *BUILTIN_EVENTS, *world.custom_event_types]))
    condition: dict[str, Any] = {"type": "event", "event": name}
    chosen = draw(filters(world, EVENT_FILTERS)) + draw(st.lists(property_filter(), max_size=1))
    if chosen:
        condition["filters"] = chosen
    span = draw(window(world))
    if span is not None:
        condition["window"] = span
    return draw(measured(world, EVENT_MEASURES, condition))


@st.composite
def history_condition(draw, world: GeneratedWorld) -> dict:
    """An orders or event condition that stored figures can answer: no filters, orders of any measure and
    window, events of the types whose latest time is kept (any, email_open, email_click)."""
    if draw(st.booleans()):
        condition: dict[str, Any] = {"type": "orders"}
        measures = ORDER_MEASURES
    else:
        condition = {"type": "event", "event": draw(st.sampled_from(["any", "email_open", "email_click"]))}
        measures = EVENT_MEASURES
    span = draw(window(world))
    if span is not None:
        condition["window"] = span
    return draw(measured(world, measures, condition))


@st.composite
def tag_condition(draw) -> dict:
    return {
        "type": "tag",
        "op": draw(st.sampled_from(["has_any", "has_all", "has_none"])),
        "value": draw(st.lists(st.sampled_from(TAG_NAMES + ["unused"]), min_size=1, max_size=3)),
    }


def leaves(world: GeneratedWorld) -> st.SearchStrategy[dict]:
    options = [
        attribute_condition(world),
        attribute_condition(world),
        tag_condition(),
        orders_condition(world),
        event_condition(world),
    ]
    if world.segments:
        options.append(
            st.builds(
                lambda op, i: {"type": "segment", "op": op, "segment": i},
                st.sampled_from(["in", "not_in"]),
                st.integers(1, len(world.segments)),
            )
        )
    return st.one_of(options)


@st.composite
def groups(draw, world: GeneratedWorld, depth: int, max_depth: int, max_children: int) -> dict:
    match = draw(st.sampled_from(["all", "any", "none"]))
    children = []
    for _ in range(draw(st.integers(1, max_children))):
        if depth < max_depth and draw(st.integers(0, 3)) == 0:
            children.append(draw(groups(world, depth + 1, max_depth, max_children)))
        else:
            children.append(draw(leaves(world)))
    return {"match": match, "conditions": children}


@st.composite
def definitions(draw, world: GeneratedWorld, *, max_depth: int = 4, max_children: int = 3) -> dict:
    """A valid definition for `world` (segment references are 1-based placeholders)."""
    if draw(st.sampled_from([False] * 30 + [True])):  # sampled_from, since integers() favours 0
        return {"match": draw(st.sampled_from(["all", "any", "none"])), "conditions": []}
    # Saved segment i may only refer to segments saved before it, so no cycles arise.
    return draw(groups(world, 1, max_depth, max_children))


# ---------------------------------------------------------------------------- invalid definitions


JUNK = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**20), 10**20),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(alphabet=string.printable + "\x00éß\ud800", max_size=8),
        st.sampled_from(["all", "any", "none", "eq", "in", "between", "last", "ago", "months", "attribute", "orders"]),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)


@st.composite
def mutated(draw, definition: dict) -> Any:
    """`definition` with one random part replaced, removed, or given an extra key."""
    paths = []

    def walk(node, path):
        paths.append(path)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*path, index))

    walk(definition, ())
    target = draw(st.sampled_from(paths))
    action = draw(st.sampled_from(["replace", "remove", "add_key", "nest"]))

    def rebuild(node, path):
        if not path:
            if action == "replace":
                return draw(JUNK)
            if action == "add_key" and isinstance(node, dict):
                return {**node, draw(st.sampled_from(["extra", "values", "Match", "field"])): draw(JUNK)}
            if action == "nest":
                return {"match": "all", "conditions": [node]}
            return draw(JUNK)
        head, rest = path[0], path[1:]
        if isinstance(node, dict):
            copy = dict(node)
            if not rest and action == "remove":
                copy.pop(head, None)
                return copy
            copy[head] = rebuild(node[head], rest)
            return copy
        copy = list(node)
        if not rest and action == "remove":
            del copy[head]
            return copy
        copy[head] = rebuild(node[head], rest)
        return copy

    return rebuild(definition, target)
