"""Random orders, items and events against a pure-Python computation of the documented rules.

The expected figures are computed here from docs/computed-figures.md alone; nothing of
contacts.stats is imported but the functions under test.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contacts.models import ContactStats, Workspace
from contacts.stats import recompute_workspace_stats, refresh_contact_stats
from tests.factories import make_contact, make_event, make_order, make_product

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)

POINTS = {"email_open": 2, "email_click": 5, "cart_add": 5, "page_view": 1, "product_view": 1, "app_open": 1}
EVENT_TYPES = [*POINTS, "email_sent", "checkout_start", "webinar_joined"]
DEVICES = [None, "mobile", "tablet", "desktop", "other"]
NAMES = [None, "", "Shoes", "shoes", "Hats", "Zoo", "äpfel"]
GRID = {  # recency score -> segment for frequency scores 1..5, copied from the documentation
    5: ["new_customers", "potential_loyalist", "potential_loyalist", "champions", "champions"],
    4: ["promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"],
    3: ["need_attention", "need_attention", "need_attention", "loyal", "loyal"],
    2: ["hibernating", "hibernating", "at_risk", "at_risk", "cant_lose"],
    1: ["lost", "lost", "at_risk", "at_risk", "cant_lose"],
}
RFM_FIELDS = ("rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_segment")
# CI (HYPOTHESIS_PROFILE=ci, as in tests/segments) explores more worlds than a developer's run.
MAX_EXAMPLES = 400 if os.environ.get("HYPOTHESIS_PROFILE") == "ci" else 60


@dataclass
class OrderSpec:
    at: datetime
    total_cents: int | None  # None: the sum of the items
    items: list[tuple[int, int, int]]  # product index, quantity, unit price in cents
    late: bool

    @property
    def total(self) -> Decimal:
        if self.total_cents is not None:
            return Decimal(self.total_cents) / 100
        return sum((Decimal(price) / 100 * quantity for _, quantity, price in self.items), Decimal("0"))


@dataclass
class EventSpec:
    type: str
    at: datetime
    device: str | None
    late: bool


@dataclass
class ContactSpec:
    orders: list[OrderSpec] = field(default_factory=list)
    events: list[EventSpec] = field(default_factory=list)


@dataclass
class World:
    settings: dict
    products: list[tuple[str | None, str | None]]  # category, producer
    contacts: list[ContactSpec]


@st.composite
def worlds(draw) -> World:
    new_days = draw(st.sampled_from([1, 30]))
    active_days = draw(st.sampled_from([7, 90]))
    churn_days = draw(st.sampled_from([30, 365]))
    window_days = draw(st.sampled_from([1, 30]))
    silver = draw(st.sampled_from([Decimal("0.50"), Decimal("50"), Decimal("500")]))
    ws_settings = {
        "new_customer_days": new_days,
        "active_days": active_days,
        "churn_days": churn_days,
        "engagement_window_days": window_days,
        "loyalty_silver_threshold": silver,
        "loyalty_gold_threshold": silver * draw(st.sampled_from([1, 2, 10])),
    }
    # Times cluster on the rule boundaries (exactly at, a microsecond either side) and repeat, to make ties.
    boundaries = [timedelta(0)]
    for days in (new_days, active_days, churn_days, window_days, new_days + active_days):
        boundaries += [days * DAY - TICK, days * DAY, days * DAY + TICK]
    ago = st.one_of(
        st.sampled_from(boundaries),
        st.builds(timedelta, seconds=st.integers(-2 * 86400, 800 * 86400)),
        st.builds(timedelta, days=st.integers(0, 400)),
    )
    fresh_times = st.builds(lambda delta: NOW - delta, ago)
    # A few instants shared by all contacts, so that RFM values tie across contacts; often recent, so
    # that a contact's orders active_days apart (see `contacts`) can still be within active_days of now.
    recent = st.builds(lambda days: NOW - timedelta(days=days), st.integers(0, active_days + 1))
    shared = draw(st.lists(st.one_of(recent, fresh_times), min_size=1, max_size=3))
    times = st.one_of(st.sampled_from(shared), fresh_times)
    products = draw(st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(NAMES)), min_size=1, max_size=4))
    # Few prices, so that spends per category tie often.
    item = st.tuples(st.integers(0, len(products) - 1), st.integers(1, 3), st.sampled_from([0, 250, 500, 999]))
    total_cents = st.one_of(st.none(), st.integers(-500, 120_000), st.sampled_from([1, 2, 5]))
    event_types = st.one_of(st.just("cart_add"), st.sampled_from(EVENT_TYPES))
    contact = contacts(times, active_days, total_cents, st.lists(item, max_size=3), event_types)
    return World(ws_settings, products, draw(st.lists(contact, min_size=1, max_size=4)))


@st.composite
def contacts(draw, times, active_days: int, total_cents, items, event_types) -> ContactSpec:
    """Order times often relate to the contact's earlier orders (same instant, active_days apart, give or
    take a microsecond) and event times to its orders, so that the rules' boundaries are reached."""
    spec = ContactSpec()
    for _ in range(draw(st.integers(0, 4))):
        related = [
            o.at + sign * active_days * DAY + tick
            for o in spec.orders
            for sign in (-1, 0, 1)
            for tick in (-TICK, timedelta(0), TICK)
        ]
        at = draw(st.one_of(st.sampled_from(related), times) if related else times)
        spec.orders.append(OrderSpec(at, draw(total_cents), draw(items), draw(st.booleans())))
    order_times = [o.at for o in spec.orders]
    event_times = st.one_of(st.sampled_from(order_times), times) if order_times else times
    for _ in range(draw(st.integers(0, 8))):
        device = draw(st.sampled_from(DEVICES))
        spec.events.append(EventSpec(draw(event_types), draw(event_times), device, draw(st.booleans())))
    return spec


# --- the rules, independently ------------------------------------------------------------------------------------


def expected_figures(spec: ContactSpec, ws: dict, products: list, now: datetime) -> dict:
    orders, events = spec.orders, spec.events
    times = sorted(o.at for o in orders)
    last = times[-1] if times else None
    spent = sum((o.total for o in orders), Decimal("0"))

    def last_of(event_type):
        return max((e.at for e in events if e.type == event_type), default=None)

    window_start = now - ws["engagement_window_days"] * DAY
    points = sum(POINTS.get(e.type, 0) for e in events if window_start <= e.at <= now)

    def top(position):
        spend: dict[str, Decimal] = {}
        for o in orders:
            for index, quantity, price in o.items:
                name = products[index][position]
                if name:
                    spend[name] = spend.get(name, Decimal("0")) + quantity * Decimal(price) / 100
        return min(spend, key=lambda name: (-spend[name], name)) if spend else None

    return {
        "orders_count": len(orders),
        "total_spent": spent,
        "avg_order_value": (spent / len(orders)).quantize(Decimal("0.01"), ROUND_HALF_UP) if orders else None,
        "first_order_at": times[0] if times else None,
        "last_order_at": last,
        "previous_order_at": max((t for t in times if t < last), default=None) if times else None,
        "last_seen_at": max((e.at for e in events), default=None),
        "last_email_open_at": last_of("email_open"),
        "last_email_click_at": last_of("email_click"),
        "engagement_score": min(points, 100),
        "lifecycle_stage": expected_lifecycle(times, ws, now),
        "preferred_device": expected_device(events),
        "top_category": top(0),
        "top_producer": top(1),
        "cart_open_since": min(
            (e.at for e in events if e.type == "cart_add" and (last is None or e.at > last)), default=None
        ),
        "loyalty_tier": expected_tier(len(orders), spent, ws),
    }


def expected_device(events: list[EventSpec]) -> str:
    devices = {e.device for e in events}
    mobile, desktop = bool(devices & {"mobile", "tablet"}), "desktop" in devices
    if mobile and desktop:
        return "cross_platform"
    if mobile:
        return "mobile_only"
    return "desktop_only" if desktop else "unknown"


def expected_tier(orders_count: int, spent: Decimal, ws: dict) -> str:
    if not orders_count:
        return "none"
    if spent < ws["loyalty_silver_threshold"]:
        return "bronze"
    return "silver" if spent < ws["loyalty_gold_threshold"] else "gold"


def expected_lifecycle(times: list[datetime], ws: dict, now: datetime) -> str:
    if not times:
        return "prospect"
    first, last = times[0], times[-1]
    earlier = [t for t in times if t < last]
    active = ws["active_days"] * DAY
    if now - first <= ws["new_customer_days"] * DAY:
        return "new"
    if now - last <= active:
        return "returning" if earlier and last - max(earlier) > active else "active"
    if now - last <= ws["churn_days"] * DAY:
        return "inactive"
    return "churned"


def expected_rfm(rows: dict[int, dict]) -> dict[int, tuple]:
    customers = {pk: row for pk, row in rows.items() if row["orders_count"] > 0}

    def scores(key):
        values = [row[key] for row in customers.values()]
        n = len(values)
        return {pk: 1 + 5 * sum(v < row[key] for v in values) // n for pk, row in customers.items()}

    r, f, m = scores("last_order_at"), scores("orders_count"), scores("total_spent")
    result = {pk: (None, None, None, None) for pk in rows}
    result.update({pk: (r[pk], f[pk], m[pk], GRID[r[pk]][f[pk] - 1]) for pk in customers})
    return result


# --- the property ------------------------------------------------------------------------------------------------


def stored_rows(workspace: Workspace) -> dict[int, dict]:
    rows = {}
    for row in ContactStats.objects.filter(workspace=workspace).values():
        pk = row.pop("contact_id")
        row.pop("workspace_id")
        row.pop("computed_at")
        rows[pk] = row
    return rows


def without_rfm(rows: dict[int, dict]) -> dict[int, dict]:
    return {pk: {k: v for k, v in row.items() if k not in RFM_FIELDS} for pk, row in rows.items()}


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(world=worlds())
def test_incremental_refresh_and_bulk_recompute_follow_the_rules(db, world):
    with transaction.atomic():
        workspace = Workspace.objects.create(name="Property Shop", **world.settings)
        products = [make_product(workspace, category=c, producer=p) for c, p in world.products]
        contacts = [make_contact(workspace) for _ in world.contacts]

        def load(*, late: bool, orders: bool, events: bool) -> list[int]:
            touched = []
            for contact, spec in zip(contacts, world.contacts, strict=True):
                for o in spec.orders if orders else []:
                    if o.late == late:
                        items = [(products[i], q, Decimal(p) / 100) for i, q, p in o.items]
                        make_order(contact, items=items, ordered_at=o.at, total=o.total)
                        touched.append(contact.pk)
                for e in spec.events if events else []:
                    if e.late == late:
                        make_event(contact, e.type, occurred_at=e.at, device=e.device)
                        touched.append(contact.pk)
            return touched

        # Everything early, refreshed in full; then late orders and late events, each with its kind only.
        load(late=False, orders=True, events=True)
        refresh_contact_stats(workspace_id=workspace.pk, contact_ids=[c.pk for c in contacts], now=NOW)
        touched = load(late=True, orders=True, events=False)
        refresh_contact_stats(workspace_id=workspace.pk, contact_ids=touched, kinds=("orders",), now=NOW)
        touched = load(late=True, orders=False, events=True)
        refresh_contact_stats(workspace_id=workspace.pk, contact_ids=touched, kinds=("events",), now=NOW)

        incremental = stored_rows(workspace)
        for contact, spec in zip(contacts, world.contacts, strict=True):
            expected = expected_figures(spec, world.settings, world.products, NOW)
            actual = {key: incremental[contact.pk][key] for key in expected}
            assert actual == expected

        assert recompute_workspace_stats(workspace_id=workspace.pk, now=NOW) == len(contacts)
        rebuilt = stored_rows(workspace)
        assert without_rfm(rebuilt) == without_rfm(incremental)
        assert {pk: tuple(row[k] for k in RFM_FIELDS) for pk, row in rebuilt.items()} == expected_rfm(rebuilt)
        transaction.set_rollback(True)
