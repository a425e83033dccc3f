"""Every example of the definition contract, with hand-made contacts and hand-checked members.

"Now" is 2024-06-15 12:00 UTC throughout.
"""

from __future__ import annotations

from datetime import UTC, datetime

from segments_app.models import Segment
from tests.factories import make_contact, make_event, make_order, make_product

from .support import NOW, ago, members, set_stats


def test_up_selling_acme_over_300_in_last_6_months(workspace):
    acme = make_product(workspace, producer="Acme")
    other = make_product(workspace, producer="Globex")
    alice = make_contact(workspace, external_id="alice")
    make_order(alice, items=[(acme, 2, "200")], ordered_at=datetime(2024, 3, 1, tzinfo=UTC))
    bob = make_contact(workspace, external_id="bob")  # 250 inside the window, 100 before it
    make_order(bob, items=[(acme, 1, "250")], ordered_at=datetime(2024, 5, 1, tzinfo=UTC))
    make_order(bob, items=[(acme, 1, "100")], ordered_at=datetime(2023, 11, 1, tzinfo=UTC))
    carol = make_contact(workspace, external_id="carol")  # a 500 order, but only 100 of it is Acme
    make_order(carol, items=[(acme, 1, "100"), (other, 1, "400")], ordered_at=datetime(2024, 6, 1, tzinfo=UTC))
    dave = make_contact(workspace, external_id="dave")  # 301 exactly at the window's start (15 Dec 12:00)
    make_order(dave, items=[(acme, 2, "150.50")], ordered_at=datetime(2023, 12, 15, 12, 0, tzinfo=UTC))
    make_contact(workspace, external_id="erin")

    definition = {
        "match": "all",
        "conditions": [
            {
                "type": "orders",
                "filters": [{"field": "product.producer", "op": "eq", "value": "Acme"}],
                "window": {"last": 6, "unit": "months"},
                "measure": "sum",
                "op": "gt",
                "value": 300,
            }
        ],
    }
    assert members(workspace, definition) == {"alice", "dave"}


def test_loyalty_threshold_spent_500_to_1000_inclusive(workspace):
    for name, totals in {
        "five_hundred": ["500"],
        "thousand": ["1000"],
        "just_over": ["1000.01"],
        "just_under": ["499.99"],
        "two_orders": ["300", "400"],
        "nothing": [],
    }.items():
        contact = make_contact(workspace, external_id=name)
        for total in totals:
            make_order(contact, total=total, ordered_at=ago(days=400))

    definition = {
        "match": "all",
        "conditions": [{"type": "orders", "measure": "sum", "op": "between", "value": [500, 1000]}],
    }
    assert members(workspace, definition) == {"five_hundred", "thousand", "two_orders"}


def test_ordered_only_from_paid_sources(workspace):
    paid_only = make_contact(workspace, external_id="paid_only")
    make_order(paid_only, total="10", source="paid_search", ordered_at=ago(days=3))
    make_order(paid_only, total="10", source="paid_social", ordered_at=ago(days=2))
    mixed = make_contact(workspace, external_id="mixed")
    make_order(mixed, total="10", source="paid_search", ordered_at=ago(days=3))
    make_order(mixed, total="10", source="organic", ordered_at=ago(days=2))
    make_contact(workspace, external_id="never_ordered")
    unknown_source = make_contact(workspace, external_id="unknown_source")  # not_in holds for a missing source
    make_order(unknown_source, total="10", source=None, ordered_at=ago(days=2))

    definition = {
        "match": "all",
        "conditions": [
            {"type": "orders", "measure": "count", "op": "gte", "value": 1},
            {
                "type": "orders",
                "filters": [{"field": "source", "op": "not_in", "value": ["paid_search", "paid_social"]}],
                "measure": "count",
                "op": "eq",
                "value": 0,
            },
        ],
    }
    assert members(workspace, definition) == {"paid_only"}


def test_cross_selling_bought_sku1_last_month_never_its_accessories(workspace):
    sku1 = make_product(workspace, sku="SKU-1")
    sku2 = make_product(workspace, sku="SKU-2")
    sku3 = make_product(workspace, sku="SKU-3")
    recent = make_contact(workspace, external_id="recent")
    make_order(recent, items=[(sku1, 1, "99")], ordered_at=ago(days=10))
    has_accessory = make_contact(workspace, external_id="has_accessory")
    make_order(has_accessory, items=[(sku1, 1, "99")], ordered_at=ago(days=10))
    make_order(has_accessory, items=[(sku2, 1, "9")], ordered_at=ago(days=365))
    too_old = make_contact(workspace, external_id="too_old")
    make_order(too_old, items=[(sku1, 1, "99")], ordered_at=ago(days=40))
    on_the_edge = make_contact(workspace, external_id="on_the_edge")  # exactly one calendar month ago
    make_order(on_the_edge, items=[(sku1, 1, "99")], ordered_at=datetime(2024, 5, 15, 12, 0, tzinfo=UTC))
    same_order = make_contact(workspace, external_id="same_order")
    make_order(same_order, items=[(sku1, 1, "99"), (sku3, 1, "9")], ordered_at=ago(days=5))

    definition = {
        "match": "all",
        "conditions": [
            {
                "type": "orders",
                "filters": [{"field": "product.sku", "op": "eq", "value": "SKU-1"}],
                "window": {"last": 1, "unit": "months"},
                "measure": "count",
                "op": "gte",
                "value": 1,
            },
            {
                "type": "orders",
                "filters": [{"field": "product.sku", "op": "in", "value": ["SKU-2", "SKU-3"]}],
                "measure": "count",
                "op": "eq",
                "value": 0,
            },
        ],
    }
    assert members(workspace, definition) == {"recent", "on_the_edge"}


def test_engaged_and_reachable(workspace):
    def contact(name, *, opened_days_ago=None, clicked_days_ago=None, **fields):
        c = make_contact(workspace, external_id=name, **fields)
        if opened_days_ago is not None:
            make_event(c, "email_open", occurred_at=ago(days=opened_days_ago))
        if clicked_days_ago is not None:
            make_event(c, "email_click", occurred_at=ago(days=clicked_days_ago))
        return c

    contact("pl", opened_days_ago=2, email_status="subscribed", country="PL")
    contact("vip", opened_days_ago=2, email_status="subscribed", country="DE", tags=["vip"])
    contact("neither", opened_days_ago=2, email_status="subscribed", country="DE")
    contact("opened_too_long_ago", opened_days_ago=8, email_status="subscribed", country="PL")
    contact("unsubscribed", opened_days_ago=2, email_status="unsubscribed", country="PL")
    contact("clicked_only", clicked_days_ago=1, email_status="subscribed", country="PL")
    contact("lowercase_country", opened_days_ago=2, email_status="subscribed", country="pl")

    definition = {
        "match": "all",
        "conditions": [
            {
                "type": "event",
                "event": "email_open",
                "window": {"last": 7, "unit": "days"},
                "measure": "count",
                "op": "gte",
                "value": 1,
            },
            {"type": "attribute", "field": "email_status", "op": "eq", "value": "subscribed"},
            {
                "match": "any",
                "conditions": [
                    {"type": "attribute", "field": "country", "op": "eq", "value": "PL"},
                    {"type": "tag", "op": "has_any", "value": ["vip"]},
                ],
            },
        ],
    }
    assert members(workspace, definition) == {"pl", "vip"}


def test_at_risk_three_orders_none_in_last_90_days(workspace):
    for name, count, last in [
        ("at_risk", 3, ago(days=100)),
        ("recent", 5, ago(days=10)),
        ("too_few", 2, ago(days=200)),
        ("no_last_order_time", 4, None),  # missing: not_in_last holds
        ("exactly_90_days", 3, ago(days=90)),  # inside the span
    ]:
        set_stats(make_contact(workspace, external_id=name), orders_count=count, last_order_at=last)

    definition = {
        "match": "all",
        "conditions": [
            {"type": "attribute", "field": "orders_count", "op": "gte", "value": 3},
            {"type": "attribute", "field": "last_order_at", "op": "not_in_last", "value": {"last": 90, "unit": "days"}},
        ],
    }
    assert members(workspace, definition) == {"at_risk", "no_last_order_time"}


def test_cart_abandoners_of_the_last_48_hours(workspace):
    for name, since in [
        ("47h", ago(hours=47)),
        ("49h", ago(hours=49)),
        ("no_cart", None),
        ("exactly_48h", ago(hours=48)),
        ("in_the_future", ago(hours=-1)),
        ("now", NOW),
    ]:
        set_stats(make_contact(workspace, external_id=name), cart_open_since=since)

    definition = {
        "match": "all",
        "conditions": [
            {"type": "attribute", "field": "cart_open_since", "op": "in_last", "value": {"last": 48, "unit": "hours"}}
        ],
    }
    assert members(workspace, definition) == {"47h", "exactly_48h", "now"}


def test_mobile_only_shoppers_not_in_segment_7(workspace):
    Segment.objects.create(
        pk=7,
        workspace=workspace,
        name="VIPs",
        definition={"match": "all", "conditions": [{"type": "tag", "op": "has_any", "value": ["vip"]}]},
    )
    set_stats(make_contact(workspace, external_id="mobile"), preferred_device="mobile_only")
    set_stats(make_contact(workspace, external_id="mobile_vip", tags=["vip"]), preferred_device="mobile_only")
    set_stats(make_contact(workspace, external_id="desktop"), preferred_device="desktop_only")

    definition = {
        "match": "all",
        "conditions": [
            {"type": "attribute", "field": "preferred_device", "op": "eq", "value": "mobile_only"},
            {"type": "segment", "op": "not_in", "segment": 7},
        ],
    }
    assert members(workspace, definition) == {"mobile"}
