"""The templates library: enough templates, each valid, each selecting exactly the right contacts.

One small shop serves every template. Orders and events are real rows, and the figures that summarise
them (order count, total spent, first and last order, last activity) follow them as ingest keeps them:
segment conditions on orders and events read those figures. The other computed figures (lifecycle
stage, RFM, devices, tiers, open cart) are set by hand on contacts that exist for them, so that what is
tested is each template's rule, not the derivation of the figures. "Now" is 2024-06-15 12:00 UTC.
"""

from __future__ import annotations

import pytest

from contacts.models import ContactStats
from segments_app.definition import validate_definition
from segments_app.templates_library import CATEGORIES, get_template, templates
from tests.factories import make_contact, make_event, make_order, make_product

from .support import ago, members, set_stats


@pytest.fixture
def shop(workspace) -> set[str]:
    """The shop; returns every contact's external id."""
    trail_runner = make_product(workspace, sku="SKU-1", producer="Acme", category="Shoes")
    insoles = make_product(workspace, sku="SKU-2", producer="Acme", category="Accessories")
    make_product(workspace, sku="SKU-3", producer="Acme", category="Accessories")
    jacket = make_product(workspace, sku="SKU-10", producer="Acme", category="Apparel")
    cap = make_product(workspace, sku="SKU-20", producer="Nordwind", category="Accessories")
    tent = make_product(workspace, sku="SKU-21", producer="Nordwind", category="Outdoor")

    made = {}

    def contact(key: str, **fields):
        if key not in made:
            made[key] = make_contact(workspace, external_id=key, **fields)
        return made[key]

    # Orders: producer up-sell (Acme over 300 in 6 months).
    make_order(contact("acme_fan"), items=[(jacket, 2, "200")], ordered_at=ago(days=60))
    make_order(contact("acme_small"), items=[(jacket, 1, "250")], ordered_at=ago(days=30))
    make_order(contact("acme_old"), items=[(jacket, 1, "500")], ordered_at=ago(days=240))
    make_order(contact("acme_mixed"), items=[(jacket, 1, "100"), (tent, 1, "400")], ordered_at=ago(days=30))
    # Sources.
    paid_only = contact("paid_only")
    make_order(paid_only, total="50", source="paid_search", ordered_at=ago(days=20))
    make_order(paid_only, total="70", source="paid_social", ordered_at=ago(days=90))
    mixed_source = contact("mixed_source")
    make_order(mixed_source, total="50", source="paid_search", ordered_at=ago(days=20))
    make_order(mixed_source, total="70", source="organic", ordered_at=ago(days=90))
    # Cross-sell: SKU-1 in the last month, never SKU-2 or SKU-3.
    make_order(contact("runner"), items=[(trail_runner, 1, "99")], ordered_at=ago(days=10))
    runner_insoles = contact("runner_insoles")
    make_order(runner_insoles, items=[(trail_runner, 1, "99")], ordered_at=ago(days=10))
    make_order(runner_insoles, items=[(insoles, 1, "19")], ordered_at=ago(days=400))
    make_order(contact("old_runner"), items=[(trail_runner, 1, "99")], ordered_at=ago(days=40))
    # Product affinity: Accessories in 2 orders in 12 months.
    accessory_fan = contact("accessory_fan")
    make_order(accessory_fan, items=[(cap, 1, "15")], ordered_at=ago(days=60))
    make_order(accessory_fan, items=[(cap, 2, "15")], ordered_at=ago(days=150))
    make_order(contact("one_accessory"), items=[(cap, 1, "15")], ordered_at=ago(days=60))
    # Frequency: 3 orders in 6 months.
    frequent = contact("frequent")
    for days in (10, 50, 150):
        make_order(frequent, total="20", ordered_at=ago(days=days))
    frequent_old = contact("frequent_old")
    for days in (10, 50, 200):
        make_order(frequent_old, total="20", ordered_at=ago(days=days))

    # Events.
    make_event(contact("opener", email_status="subscribed"), "email_open", occurred_at=ago(days=2))
    make_event(contact("opener_unsubscribed", email_status="unsubscribed"), "email_open", occurred_at=ago(days=1))
    make_event(contact("old_opener", email_status="subscribed"), "email_open", occurred_at=ago(days=10))
    make_event(contact("visitor"), "page_view", occurred_at=ago(days=1))
    make_event(contact("old_visitor"), "page_view", occurred_at=ago(days=8))

    # Order counts, totals and last orders, from orders.
    history = {
        "spender_100": [("100.00", 300)],
        "spender_499": [("499.99", 300)],
        "spender_500": [("500.00", 300)],
        "spender_1000": [("1000.00", 300)],
        "once": [("10", 300)],
        "twice": [("10", 300), ("10", 310)],
        "regular": [("10", days) for days in (100, 200, 230, 260, 290)],
        "regular_recent": [("10", days) for days in (10, 200, 230, 260)],
        "mobile_buyer": [("10", 300)],
        "desktop_buyer": [("10", 300), ("10", 310)],
        "both_buyer": [("10", days) for days in (5, 200, 230)],
    }
    for key, orders in history.items():
        buyer = contact(key)
        for total, days in orders:
            make_order(buyer, total=total, ordered_at=ago(days=days))

    # The other computed figures: neutral for everyone (the real ones follow the clock of the test run),
    # then set by hand where a template needs them.
    ContactStats.objects.filter(workspace=workspace).update(
        lifecycle_stage="prospect", loyalty_tier="none", preferred_device="unknown", cart_open_since=None
    )
    figures = {
        "stage_new": {"lifecycle_stage": "new"},
        "stage_active": {"lifecycle_stage": "active"},
        "stage_inactive": {"lifecycle_stage": "inactive"},
        "stage_churned": {"lifecycle_stage": "churned"},
        "stage_returning": {"lifecycle_stage": "returning"},
        "whale": {"rfm_monetary": 5, "rfm_segment": "champions"},
        "slipping": {"rfm_monetary": 4, "rfm_segment": "at_risk"},
        "seen_today": {"last_seen_at": ago(hours=1)},
        "seen_40d": {"last_seen_at": ago(days=40)},
        "seen_100d": {"last_seen_at": ago(days=100)},
        "cart_fresh": {"cart_open_since": ago(hours=47)},
        "cart_stale": {"cart_open_since": ago(hours=49)},
        "mobile_buyer": {"preferred_device": "mobile_only"},
        "mobile_browser": {"preferred_device": "mobile_only"},
        "desktop_buyer": {"preferred_device": "desktop_only"},
        "both_buyer": {"preferred_device": "cross_platform"},
        "bronze": {"loyalty_tier": "bronze"},
        "silver": {"loyalty_tier": "silver"},
        "gold": {"loyalty_tier": "gold"},
    }
    for key, values in figures.items():
        set_stats(contact(key), **values)
    return set(workspace.contacts.values_list("external_id", flat=True))


# Contacts with events in the last 10 days: their last activity follows them.
RECENT_EVENTS = {"opener", "opener_unsubscribed", "old_opener", "visitor", "old_visitor"}


def expected(everyone: set[str]) -> dict[str, set[str]]:
    return {  # fmt: skip
        "producer_upsell": {"acme_fan"},
        "spent_100_plus": {"spender_100", "spender_499", "spender_500", "spender_1000", "acme_fan", "acme_small",
                           "acme_old", "acme_mixed", "paid_only", "mixed_source", "runner_insoles"},
        "spent_500_plus": {"spender_500", "spender_1000", "acme_old", "acme_mixed"},
        "spent_1000_plus": {"spender_1000"},
        "paid_source_only": {"paid_only"},
        "cross_sell_accessories": {"runner"},
        "lifecycle_new": {"stage_new"},
        "lifecycle_active": {"stage_active"},
        "lifecycle_inactive": {"stage_inactive"},
        "lifecycle_churned": {"stage_churned"},
        "lifecycle_returning": {"stage_returning"},
        "high_value": {"whale"},
        "frequent_buyers": {"frequent"},
        "one_time_buyers": {"once", "mobile_buyer", "spender_100", "spender_499", "spender_500", "spender_1000",
                            "acme_fan", "acme_small", "acme_old", "acme_mixed", "runner", "old_runner",
                            "one_accessory"},
        "repeat_buyers": {"twice", "regular", "regular_recent", "desktop_buyer", "both_buyer", "paid_only",
                          "mixed_source", "runner_insoles", "accessory_fan", "frequent", "frequent_old"},
        "loyal_gone_quiet": {"regular"},
        "product_affinity_accessories": {"accessory_fan"},
        "cart_abandoners_48h": {"cart_fresh"},
        "recent_visitors": {"visitor"},
        # Never seen counts as inactive: the figure is missing.
        "inactive_30_days": everyone - {"seen_today", *RECENT_EVENTS},
        "inactive_90_days": everyone - {"seen_today", "seen_40d", *RECENT_EVENTS},
        "engaged_openers_7d": {"opener"},
        "mobile_only_shoppers": {"mobile_buyer"},
        "desktop_only_shoppers": {"desktop_buyer"},
        "cross_platform_shoppers": {"both_buyer"},
        "tier_bronze": {"bronze"},
        "tier_silver": {"silver"},
        "tier_gold": {"gold"},
        "rfm_champions": {"whale"},
        "rfm_at_risk": {"slipping"},
    }


def test_the_library_has_at_least_twenty_templates_with_unique_keys():
    keys = [t["key"] for t in templates()]
    assert len(keys) >= 20 and len(set(keys)) == len(keys)
    assert {t["category"] for t in templates()} <= set(CATEGORIES)
    assert all(t["name"] and t["description"] for t in templates())


def test_every_template_has_an_expectation_here(shop):
    assert set(expected(shop)) == {t["key"] for t in templates()}


@pytest.mark.parametrize("template", templates(), ids=lambda t: t["key"])
def test_every_template_validates_in_an_empty_workspace(workspace, template):
    assert validate_definition(template["definition"], workspace=workspace) == []


@pytest.mark.parametrize("template", templates(), ids=lambda t: t["key"])
def test_every_template_selects_the_right_contacts(workspace, shop, template):
    assert members(workspace, template["definition"]) == expected(shop)[template["key"]]


def test_placeholders_are_named_in_the_descriptions():
    for key, placeholder in [
        ("producer_upsell", "Acme"),
        ("cross_sell_accessories", "SKU-2"),
        ("product_affinity_accessories", "Accessories"),
    ]:
        assert placeholder in get_template(key)["description"]
        assert "Placeholder from the demo data" in get_template(key)["description"]


def test_a_template_is_a_copy_that_callers_may_change():
    first = get_template("producer_upsell")
    first["definition"]["conditions"].clear()
    assert get_template("producer_upsell")["definition"]["conditions"]
    assert get_template("no_such_template") is None
