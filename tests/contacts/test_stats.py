"""Each computed figure's rule, pinned with hand-made cases (see docs/computed-figures.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from contacts.models import Contact, ContactStats
from contacts.stats import refresh_contact_stats
from tests.factories import make_contact, make_event, make_order, make_product

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)


def refresh(*contacts: Contact, kinds=("contact", "orders", "events"), now: datetime = NOW) -> None:
    workspace_id = contacts[0].workspace_id
    refresh_contact_stats(workspace_id=workspace_id, contact_ids=[c.pk for c in contacts], kinds=kinds, now=now)


def stats_of(contact: Contact) -> ContactStats:
    return ContactStats.objects.get(contact=contact)


def figures(contact: Contact) -> ContactStats:
    refresh(contact)
    return stats_of(contact)


# --- rows -------------------------------------------------------------------------------------------------------


def test_a_contact_without_a_stats_row_gets_one_with_prospect_defaults(workspace):
    bare = Contact.objects.create(workspace=workspace, external_id="bare")
    before = timezone.now()
    refresh(bare)
    row = stats_of(bare)
    assert row.workspace_id == workspace.pk
    assert (row.orders_count, row.total_spent, row.avg_order_value) == (0, Decimal("0"), None)
    assert (row.lifecycle_stage, row.loyalty_tier, row.preferred_device) == ("prospect", "none", "unknown")
    assert (row.engagement_score, row.last_seen_at, row.cart_open_since) == (0, None, None)
    assert row.computed_at >= before  # when it was computed, whatever `now` the rules were evaluated at


def test_a_missing_row_is_computed_in_full_whatever_the_kinds(workspace):
    bare = Contact.objects.create(workspace=workspace, external_id="bare")
    make_order(bare, ordered_at=NOW - DAY, total="10.00")
    make_event(bare, "page_view", occurred_at=NOW - DAY)
    refresh(bare, kinds=("contact",))
    row = stats_of(bare)
    assert (row.orders_count, row.last_seen_at) == (1, NOW - DAY)


def test_contacts_of_another_workspace_are_left_alone(workspace, other_workspace):
    mine = make_contact(workspace)
    theirs = make_contact(other_workspace)
    make_order(theirs, ordered_at=NOW - DAY, total="10.00")
    ContactStats.objects.filter(contact=theirs).update(orders_count=0)  # stale: a refresh would change it
    refresh_contact_stats(workspace_id=workspace.pk, contact_ids=[mine.pk, theirs.pk], now=NOW)
    assert stats_of(theirs).orders_count == 0


def test_no_contacts_is_a_no_op(workspace):
    refresh_contact_stats(workspace_id=workspace.pk, contact_ids=[], now=NOW)


def test_unknown_kinds_are_refused(workspace):
    contact = make_contact(workspace)
    with pytest.raises(ValueError, match="unknown stats kinds"):
        refresh(contact, kinds=("orders", "purchases"))


# --- order figures ----------------------------------------------------------------------------------------------


def test_order_totals_count_sum_average_and_first_last_times(workspace):
    contact = make_contact(workspace)
    make_order(contact, ordered_at=NOW - 10 * DAY, total="10.00")
    make_order(contact, ordered_at=NOW - 3 * DAY, total="20.00")
    make_order(contact, ordered_at=NOW - 5 * DAY, total="5.01")
    row = figures(contact)
    assert row.orders_count == 3
    assert row.total_spent == Decimal("35.01")
    assert row.avg_order_value == Decimal("11.67")
    assert (row.first_order_at, row.last_order_at) == (NOW - 10 * DAY, NOW - 3 * DAY)
    assert row.previous_order_at == NOW - 5 * DAY


def test_average_rounds_half_cents_away_from_zero(workspace):
    contact = make_contact(workspace)
    make_order(contact, ordered_at=NOW - DAY, total="0.01")
    make_order(contact, ordered_at=NOW - DAY, total="0.02")
    assert figures(contact).avg_order_value == Decimal("0.02")


def test_previous_order_is_the_latest_strictly_before_the_last(workspace):
    contact = make_contact(workspace)
    make_order(contact, ordered_at=NOW - 200 * DAY, total="1")
    make_order(contact, ordered_at=NOW - DAY, total="1")
    make_order(contact, ordered_at=NOW - DAY, total="1")
    assert figures(contact).previous_order_at == NOW - 200 * DAY


def test_without_orders_the_order_figures_are_empty(workspace):
    contact = make_contact(workspace)
    row = figures(contact)
    assert (row.orders_count, row.total_spent, row.avg_order_value) == (0, Decimal("0"), None)
    assert (row.first_order_at, row.last_order_at, row.top_category, row.top_producer) == (None, None, None, None)


# --- event figures ----------------------------------------------------------------------------------------------


def test_last_seen_is_the_latest_event_of_any_type_and_email_times_by_type(workspace):
    contact = make_contact(workspace)
    make_event(contact, "email_open", occurred_at=NOW - 4 * DAY)
    make_event(contact, "email_open", occurred_at=NOW - 2 * DAY)
    make_event(contact, "email_click", occurred_at=NOW - 3 * DAY)
    make_event(contact, "email_sent", occurred_at=NOW - DAY)
    row = figures(contact)
    assert row.last_seen_at == NOW - DAY
    assert row.last_email_open_at == NOW - 2 * DAY
    assert row.last_email_click_at == NOW - 3 * DAY


@pytest.mark.parametrize(
    ("devices", "expected"),
    [
        ([], "unknown"),
        ([None], "unknown"),
        (["other"], "unknown"),
        (["mobile"], "mobile_only"),
        (["tablet", "mobile", "other"], "mobile_only"),
        (["desktop", None, "other"], "desktop_only"),
        (["desktop", "tablet"], "cross_platform"),
    ],
)
def test_preferred_device_from_the_devices_seen(workspace, devices, expected):
    contact = make_contact(workspace)
    for device in devices:
        make_event(contact, "page_view", occurred_at=NOW - DAY, device=device)
    assert figures(contact).preferred_device == expected


# --- engagement -------------------------------------------------------------------------------------------------


def test_engagement_weights_each_kind_of_event(workspace):
    contact = make_contact(workspace)
    at = NOW - DAY
    for event_type in ["email_open", "email_click", "cart_add", "page_view", "product_view", "app_open"]:
        make_event(contact, event_type, occurred_at=at)
    make_event(contact, "email_sent", occurred_at=at)  # not engagement
    make_event(contact, "checkout_start", occurred_at=at)  # not engagement
    assert figures(contact).engagement_score == 2 + 5 + 5 + 1 + 1 + 1


def test_engagement_counts_the_window_inclusive_at_both_ends(workspace):
    contact = make_contact(workspace)
    make_event(contact, "email_click", occurred_at=NOW - 30 * DAY)  # exactly engagement_window_days ago: in
    make_event(contact, "email_click", occurred_at=NOW)  # now: in
    make_event(contact, "email_click", occurred_at=NOW - 30 * DAY - TICK)  # just before: out
    make_event(contact, "email_click", occurred_at=NOW + TICK)  # in the future: out
    assert figures(contact).engagement_score == 10


def test_engagement_window_follows_the_workspace_setting(workspace):
    workspace.engagement_window_days = 7
    workspace.save()
    contact = make_contact(workspace)
    make_event(contact, "email_click", occurred_at=NOW - 7 * DAY)
    make_event(contact, "email_click", occurred_at=NOW - 8 * DAY)
    assert figures(contact).engagement_score == 5


def test_engagement_is_capped_at_100(workspace):
    contact = make_contact(workspace)
    for _ in range(21):
        make_event(contact, "email_click", occurred_at=NOW - DAY)
    assert figures(contact).engagement_score == 100


# --- lifecycle --------------------------------------------------------------------------------------------------


def lifecycle_with_orders(workspace, *days_ago: float) -> str:
    contact = make_contact(workspace)
    for days in days_ago:
        make_order(contact, ordered_at=NOW - timedelta(days=days), total="10")
    return figures(contact).lifecycle_stage


def test_lifecycle_prospect_without_orders(workspace):
    assert lifecycle_with_orders(workspace) == "prospect"


def test_lifecycle_new_while_the_first_order_is_at_most_new_customer_days_old(workspace):
    assert lifecycle_with_orders(workspace, 30) == "new"
    assert lifecycle_with_orders(workspace, 30 + 1e-6) == "active"
    # New wins over returning: both orders are recent.
    assert lifecycle_with_orders(workspace, 20, 1) == "new"


def test_lifecycle_active_while_the_last_order_is_at_most_active_days_old(workspace):
    assert lifecycle_with_orders(workspace, 90) == "active"
    assert lifecycle_with_orders(workspace, 200, 150, 89) == "active"
    assert lifecycle_with_orders(workspace, 90 + 1e-6) == "inactive"


def test_lifecycle_returning_after_a_gap_longer_than_active_days(workspace):
    assert lifecycle_with_orders(workspace, 300, 10) == "returning"
    assert lifecycle_with_orders(workspace, 100, 10) == "active"  # a gap of exactly 90 days is not longer
    assert lifecycle_with_orders(workspace, 100 + 1e-6, 10) == "returning"
    # Ordering again soon after coming back makes the contact active again.
    assert lifecycle_with_orders(workspace, 300, 10, 5) == "active"


def test_lifecycle_inactive_then_churned(workspace):
    assert lifecycle_with_orders(workspace, 365) == "inactive"
    assert lifecycle_with_orders(workspace, 365 + 1e-6) == "churned"
    assert lifecycle_with_orders(workspace, 800, 400) == "churned"


def test_lifecycle_follows_the_workspace_settings(workspace):
    workspace.new_customer_days, workspace.active_days, workspace.churn_days = 7, 14, 28
    workspace.save()
    assert lifecycle_with_orders(workspace, 10) == "active"
    assert lifecycle_with_orders(workspace, 20) == "inactive"
    assert lifecycle_with_orders(workspace, 29) == "churned"
    assert lifecycle_with_orders(workspace, 40, 10) == "returning"


# --- loyalty ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("totals", "tier"),
    [
        ([], "none"),
        (["0.00"], "bronze"),
        (["499.99"], "bronze"),
        (["250.00", "250.00"], "silver"),
        (["999.99"], "silver"),
        (["1000.00"], "gold"),
        (["5000"], "gold"),
    ],
)
def test_loyalty_tier_by_total_spent_against_the_thresholds(workspace, totals, tier):
    contact = make_contact(workspace)
    for total in totals:
        make_order(contact, ordered_at=NOW - DAY, total=total)
    assert figures(contact).loyalty_tier == tier


# --- top category and producer ----------------------------------------------------------------------------------


def test_top_category_and_producer_by_item_spend(workspace):
    contact = make_contact(workspace)
    shoes = make_product(workspace, category="Shoes", producer="Acme")
    hats = make_product(workspace, category="Hats", producer="Zed")
    socks = make_product(workspace, category="Socks", producer="Zed")
    make_order(contact, ordered_at=NOW - DAY, items=[(shoes, 1, "30.00"), (hats, 2, "10.00")])
    make_order(contact, ordered_at=NOW - DAY, items=[(socks, 3, "4.00")])
    row = figures(contact)
    assert row.top_category == "Shoes"  # 30 against 20 and 12
    assert row.top_producer == "Zed"  # 20 + 12 against 30


def test_top_category_ties_go_to_the_first_name_in_code_point_order(workspace):
    contact = make_contact(workspace)
    lower = make_product(workspace, category="apparel", producer="beta")
    upper = make_product(workspace, category="Zoo", producer="Beta")
    make_order(contact, ordered_at=NOW - DAY, items=[(lower, 1, "10.00"), (upper, 2, "5.00")])
    row = figures(contact)
    assert (row.top_category, row.top_producer) == ("Zoo", "Beta")


def test_items_without_category_or_producer_do_not_count(workspace):
    contact = make_contact(workspace)
    unnamed = make_product(workspace, category=None, producer="")
    cheap = make_product(workspace, category="Cheap", producer=None)
    make_order(contact, ordered_at=NOW - DAY, items=[(unnamed, 1, "99.00"), (cheap, 1, "1.00")])
    row = figures(contact)
    assert (row.top_category, row.top_producer) == ("Cheap", None)


# --- open cart --------------------------------------------------------------------------------------------------


def test_cart_open_since_is_the_first_cart_add_after_the_last_order(workspace):
    contact = make_contact(workspace)
    make_event(contact, "cart_add", occurred_at=NOW - 10 * DAY)
    make_order(contact, ordered_at=NOW - 5 * DAY, total="10")
    make_event(contact, "cart_add", occurred_at=NOW - 5 * DAY)  # same instant as the order: not after it
    make_event(contact, "cart_add", occurred_at=NOW - 2 * DAY)
    make_event(contact, "cart_add", occurred_at=NOW - DAY)
    assert figures(contact).cart_open_since == NOW - 2 * DAY


def test_cart_open_since_without_orders_is_the_first_cart_add(workspace):
    contact = make_contact(workspace)
    make_event(contact, "cart_add", occurred_at=NOW - 10 * DAY)
    make_event(contact, "cart_add", occurred_at=NOW - DAY)
    assert figures(contact).cart_open_since == NOW - 10 * DAY


def test_an_order_closes_the_cart(workspace):
    contact = make_contact(workspace)
    make_event(contact, "cart_add", occurred_at=NOW - 2 * DAY)
    refresh(contact)
    make_order(contact, ordered_at=NOW - DAY, total="10")
    refresh(contact, kinds=("orders",))
    assert stats_of(contact).cart_open_since is None


def test_a_cart_add_after_the_stored_last_order_opens_the_cart(workspace):
    contact = make_contact(workspace)
    make_order(contact, ordered_at=NOW - 3 * DAY, total="10")
    refresh(contact)
    make_event(contact, "cart_add", occurred_at=NOW - DAY)
    refresh(contact, kinds=("events",))
    assert stats_of(contact).cart_open_since == NOW - DAY
