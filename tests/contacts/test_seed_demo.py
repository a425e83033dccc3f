"""seed_demo makes a believable, deterministic shop; setup_demo can run any number of times."""

from __future__ import annotations

import io
import json
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import F

from contacts.demo.generator import EVENT_TYPES, generate_catalog, generate_contacts
from contacts.demo.loader import reset_workspace_data
from contacts.models import (
    ApiKey,
    Contact,
    ContactStats,
    ContactTag,
    Event,
    EventType,
    Order,
    OrderItem,
    Product,
    Workspace,
    WorkspaceMember,
    hash_api_key,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SHAPE_CONTACTS = 400


def seed(workspace: str, contacts: int, seed: int = 7, *extra: str) -> str:
    out = io.StringIO()
    call_command(
        "seed_demo", "--contacts", str(contacts), "--seed", str(seed), "--workspace", workspace,
        "--now", NOW.isoformat(), *extra, stdout=out,
    )  # fmt: skip
    return out.getvalue()


def rows(workspace: Workspace) -> dict[str, list]:
    """Everything seeded into the workspace, by natural keys (no ids), in a stable order."""
    contact_fields = [
        "external_id", "email", "first_name", "last_name", "phone", "country", "city", "gender", "birth_date",
        "created_at", "updated_at", "email_status", "traffic_source", "utm_campaign", "attributes",
    ]  # fmt: skip
    stats = [  # computed_at is bookkeeping (the wall clock of the refresh), not demo data
        {k: v for k, v in row.items() if k not in ("contact", "workspace", "computed_at")}
        for row in ContactStats.objects.filter(workspace=workspace).values(*[
            f.name for f in ContactStats._meta.concrete_fields
        ], "contact__external_id").order_by("contact__external_id")
    ]  # fmt: skip
    events = Event.objects.filter(workspace=workspace).values_list(
        "contact__external_id", "type", "occurred_at", "device", "url", "campaign", "properties", "event_id"
    )
    return {
        "contacts": list(Contact.objects.filter(workspace=workspace)
                         .values_list(*contact_fields).order_by("external_id")),
        "products": list(Product.objects.filter(workspace=workspace)
                         .values_list("sku", "name", "producer", "category", "price").order_by("sku")),
        "orders": list(Order.objects.filter(workspace=workspace).order_by("external_id").values_list(
            "external_id", "contact__external_id", "ordered_at", "source", "currency", "total")),
        "items": sorted(OrderItem.objects.filter(order__workspace=workspace).values_list(
            "order__external_id", "product__sku", "quantity", "unit_price")),
        "events": sorted((*event[:6], json.dumps(event[6], sort_keys=True), event[7]) for event in events),
        "tags": sorted(ContactTag.objects.filter(contact__workspace=workspace)
                       .values_list("contact__external_id", "tag__name")),
        "event_types": list(EventType.objects.filter(workspace=workspace)
                            .values_list("name", "first_seen_at").order_by("name")),
        "stats": stats,
    }  # fmt: skip


# --- determinism -------------------------------------------------------------------------------------------------


def test_generator_gives_the_same_stream_for_the_same_seed_and_now():
    def stream(seed: int) -> list:
        catalog = generate_catalog(random.Random(seed), n_contacts=150, now_ts=int(NOW.timestamp()))
        return [catalog.products] + [
            (b.contact, b.tags, b.orders, b.events)
            for b in generate_contacts(seed, catalog, n_contacts=1500, now_ts=int(NOW.timestamp()), stop=1150)
        ]

    assert stream(3) == stream(3)
    assert stream(3) != stream(4)


def test_a_block_of_contacts_is_the_same_whichever_contact_the_stream_starts_at():
    catalog = generate_catalog(random.Random(3), n_contacts=2500, now_ts=int(NOW.timestamp()))
    whole = list(generate_contacts(3, catalog, n_contacts=2500, now_ts=int(NOW.timestamp())))
    part = list(generate_contacts(3, catalog, n_contacts=2500, now_ts=int(NOW.timestamp()), start=1200, stop=2100))
    assert [(b.index, b.contact, b.orders, b.events) for b in part] == [
        (b.index, b.contact, b.orders, b.events) for b in whole[1200:2100]
    ]


def test_two_seeds_with_the_same_contacts_seed_and_now_store_identical_rows(db):
    seed("Shop A", 120, 5)
    seed("Shop B", 120, 5, "--chunk-size", "17")  # chunking must not change the data
    seed("Shop C", 120, 6)
    shop_a, shop_b, shop_c = (Workspace.objects.get(name=name) for name in ("Shop A", "Shop B", "Shop C"))

    assert rows(shop_a) == rows(shop_b)
    assert rows(shop_a)["contacts"] != rows(shop_c)["contacts"]


# --- refusing and resetting -------------------------------------------------------------------------------------


def test_refuses_a_workspace_that_has_contacts_unless_reset(db):
    seed("Shop A", 30)
    seed("Bystander", 20)
    before = rows(Workspace.objects.get(name="Shop A"))
    bystander = rows(Workspace.objects.get(name="Bystander"))

    with pytest.raises(CommandError, match="already has contacts"):
        seed("Shop A", 30)
    seed("Shop A", 30, 7, "--reset")

    assert rows(Workspace.objects.get(name="Shop A")) == before
    assert rows(Workspace.objects.get(name="Bystander")) == bystander


def test_reset_removes_the_old_data_before_seeding_a_different_size(db):
    seed("Shop A", 50)
    seed("Shop A", 20, 7, "--reset")
    shop = Workspace.objects.get(name="Shop A")

    assert Contact.objects.filter(workspace=shop).count() == 20
    assert ContactStats.objects.filter(workspace=shop).count() == 20
    first_twenty = [f"cust-{n}" for n in range(1, 21)]
    assert not Order.objects.filter(workspace=shop).exclude(contact__external_id__in=first_twenty).exists()
    assert Product.objects.filter(workspace=shop).count() == 60


# --- the shape of the data ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop(django_db_setup, django_db_blocker):
    """One committed demo shop shared by the shape tests (seeding it per test would dominate their time)."""
    with django_db_blocker.unblock():
        seed("Shape Shop", SHAPE_CONTACTS)
        workspace = Workspace.objects.get(name="Shape Shop")
        yield workspace
        reset_workspace_data(workspace=workspace)
        workspace.delete()


def test_counts_per_contact_are_in_the_expected_ranges(db, shop):
    contacts = Contact.objects.filter(workspace=shop).count()
    orders = Order.objects.filter(workspace=shop).count()
    items = OrderItem.objects.filter(order__workspace=shop).count()
    events = Event.objects.filter(workspace=shop).count()

    assert contacts == SHAPE_CONTACTS
    assert 3.5 <= orders / contacts <= 6.5
    assert 1.7 <= items / orders <= 2.4
    assert 14 <= events / contacts <= 28
    assert ContactStats.objects.filter(workspace=shop).count() == contacts


def test_every_reference_points_to_a_row_of_the_same_workspace(db, shop):
    orders = Order.objects.filter(workspace=shop)
    assert orders.count() == orders.filter(contact__workspace=shop).count()
    items = OrderItem.objects.filter(order__workspace=shop)
    assert items.count() == items.filter(product__workspace=shop).count()
    assert OrderItem.objects.filter(order__workspace=shop).exclude(product__workspace=shop).count() == 0
    events = Event.objects.filter(workspace=shop)
    assert events.count() == events.filter(contact__workspace=shop).count()
    tags = ContactTag.objects.filter(contact__workspace=shop)
    assert tags.count() == tags.filter(tag__workspace=shop).count()


def test_every_item_carries_its_orders_contact_and_time(db, shop):
    items = OrderItem.objects.filter(order__workspace=shop)
    assert items.count() > 0
    assert items.exclude(contact_id=F("order__contact_id")).count() == 0
    assert items.exclude(ordered_at=F("order__ordered_at")).count() == 0


def test_order_totals_equal_their_items_and_use_the_workspace_currency(db, shop):
    item_sums: dict[int, Decimal] = defaultdict(Decimal)
    item_counts: dict[int, int] = defaultdict(int)
    for order_id, quantity, unit_price in OrderItem.objects.filter(order__workspace=shop).values_list(
        "order_id", "quantity", "unit_price"
    ):
        item_sums[order_id] += quantity * unit_price
        item_counts[order_id] += 1

    orders = list(Order.objects.filter(workspace=shop).values_list("id", "total", "currency", "source"))
    assert all(total == item_sums[order_id] for order_id, total, _, _ in orders)
    assert {currency for _, _, currency, _ in orders} == {shop.currency}
    assert set(item_counts.values()) == {1, 2, 3, 4}
    sources = {source for *_, source in orders}
    assert {"direct", "organic", "paid_search", "paid_social", "email", "referral", "affiliate", None} == sources


def test_catalog_has_the_contract_examples_and_a_believable_range(db, shop):
    products = Product.objects.filter(workspace=shop)
    by_sku = {p.sku: p for p in products}
    producers = set(products.values_list("producer", flat=True))
    categories = set(products.values_list("category", flat=True))

    assert products.count() >= 60
    assert 10 <= len(producers) <= 20 and "Acme" in producers
    assert 8 <= len(categories) <= 12 and "Accessories" in categories
    assert {"SKU-1", "SKU-2", "SKU-3"} <= by_sku.keys()
    assert by_sku["SKU-2"].category == by_sku["SKU-3"].category == "Accessories"


def test_popularity_is_skewed_towards_a_few_products(db, shop):
    sold = defaultdict(int)
    for sku in OrderItem.objects.filter(order__workspace=shop).values_list("product__sku", flat=True):
        sold[sku] += 1
    ranked = sorted(sold.values(), reverse=True)

    assert sum(ranked[:6]) > sum(ranked[-30:])  # the top tenth sells more than the bottom half


def test_the_cross_selling_example_finds_people(db, shop):
    bought_sku1_last_month = Order.objects.filter(
        workspace=shop, ordered_at__gte=NOW - timedelta(days=30), items__product__sku="SKU-1"
    ).values("contact_id")
    bought_accessory = OrderItem.objects.filter(
        order__workspace=shop, product__sku__in=["SKU-2", "SKU-3"]
    ).values("order__contact_id")

    found = Contact.objects.filter(pk__in=bought_sku1_last_month).exclude(pk__in=bought_accessory)
    assert found.exists()
    assert OrderItem.objects.filter(order__workspace=shop, product__producer="Acme").exists()


def test_some_contacts_left_a_cart_in_the_last_48_hours_after_their_last_order(db, shop):
    orders = Order.objects.filter(workspace=shop).order_by("contact_id", "ordered_at")
    last_order = dict(orders.values_list("contact_id", "ordered_at"))  # ascending: each contact's latest wins
    recent_carts = Event.objects.filter(workspace=shop, type="cart_add", occurred_at__gt=NOW - timedelta(hours=48))
    abandoners = {
        contact_id
        for contact_id, at in recent_carts.values_list("contact_id", "occurred_at")
        if contact_id not in last_order or last_order[contact_id] < at
    }

    assert len(abandoners) >= 3
    stats_abandoners = ContactStats.objects.filter(workspace=shop, cart_open_since__gt=NOW - timedelta(hours=48))
    assert stats_abandoners.exists()
    assert set(stats_abandoners.values_list("contact_id", flat=True)) <= abandoners


def test_all_timestamps_lie_in_the_two_years_before_now_and_after_signup(db, shop):
    contacts = Contact.objects.filter(workspace=shop)
    oldest = NOW - timedelta(days=731)

    assert not contacts.filter(created_at__lt=oldest).exists()
    assert not contacts.filter(created_at__gt=NOW).exists()
    assert not Order.objects.filter(workspace=shop, ordered_at__gt=NOW).exists()
    assert not Event.objects.filter(workspace=shop, occurred_at__gt=NOW).exists()
    assert not Order.objects.filter(workspace=shop, ordered_at__lt=F("contact__created_at")).exists()
    assert not Event.objects.filter(workspace=shop, occurred_at__lt=F("contact__created_at")).exists()


def test_repeat_purchase_behaviour_has_one_time_buyers_a_long_tail_and_churn(db, shop):
    per_contact: dict[int, list[datetime]] = defaultdict(list)
    for contact_id, at in Order.objects.filter(workspace=shop).values_list("contact_id", "ordered_at"):
        per_contact[contact_id].append(at)
    counts = [len(times) for times in per_contact.values()]

    never = SHAPE_CONTACTS - len(per_contact)
    assert 0.2 * SHAPE_CONTACTS <= never <= 0.5 * SHAPE_CONTACTS
    assert counts.count(1) >= 0.25 * len(counts)
    assert max(counts) >= 25
    churned = [t for t in per_contact.values() if len(t) >= 3 and max(t) < NOW - timedelta(days=180)]
    assert churned


def test_contacts_have_varied_details_statuses_tags_and_attributes(db, shop):
    contacts = list(Contact.objects.filter(workspace=shop))
    countries = {c.country for c in contacts}
    statuses = [c.email_status for c in contacts]
    tags = set(ContactTag.objects.filter(contact__workspace=shop).values_list("tag__name", flat=True))

    assert {"PL", "DE", "GB", "US", "FR"} <= countries
    assert statuses.count("subscribed") > SHAPE_CONTACTS / 2
    assert {"subscribed", "unsubscribed", "bounced", "complained", "never_subscribed"} <= set(statuses)
    assert {"vip", "newsletter", "b2b"} <= tags
    for field in ("phone", "gender", "birth_date", "city", "utm_campaign"):
        present = sum(getattr(c, field) is not None for c in contacts)
        assert 0 < present < len(contacts), field
    assert all(c.external_id and c.traffic_source != "" for c in contacts)
    kinds = {"plan": str, "shoe_size": float, "loyalty_points": int, "marketing_opt_in": bool}
    for key, kind in kinds.items():
        values = [c.attributes[key] for c in contacts if key in c.attributes]
        assert 0 < len(values) < len(contacts), key
        assert all(type(value) is kind for value in values), key
    assert shop.attribute_types["shoe_size"] == "number"


def test_events_cover_every_type_with_devices_urls_and_campaigns(db, shop):
    events = Event.objects.filter(workspace=shop)
    devices: dict[int, set[str]] = defaultdict(set)
    for contact_id, device in events.exclude(device__isnull=True).values_list("contact_id", "device"):
        devices[contact_id].add(device)

    assert set(events.values_list("type", flat=True).distinct()) == set(EVENT_TYPES)
    assert set(EventType.objects.filter(workspace=shop).values_list("name", flat=True)) == set(EVENT_TYPES)
    assert any(d == {"mobile"} for d in devices.values())
    assert any(d == {"desktop"} for d in devices.values())
    assert any({"mobile", "desktop"} <= d for d in devices.values())
    assert not events.filter(type__startswith="email_", campaign__isnull=True).exists()
    assert not events.filter(type__in=["page_view", "product_view", "cart_add"], url__isnull=True).exists()
    assert events.filter(type="product_view", properties__sku="SKU-1").exists()


# --- setup_demo --------------------------------------------------------------------------------------------------


def test_setup_demo_creates_the_demo_once_and_then_changes_nothing(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first = io.StringIO()
    call_command("setup_demo", "--contacts", "60", stdout=first)
    demo = get_user_model().objects.get(username="demo")
    password = (tmp_path / "demo_password.txt").read_text().strip()
    demo_shop = Workspace.objects.get(name="Demo Shop")
    second_shop = Workspace.objects.get(name="Second Shop")
    state = (rows(demo_shop), rows(second_shop), demo.password, list(ApiKey.objects.values_list("id", flat=True)))

    again = io.StringIO()
    call_command("setup_demo", "--contacts", "60", "--password", "something-else", stdout=again)

    assert f"Password: {password}" in first.getvalue()
    assert "http://127.0.0.1:8000/login/" in first.getvalue()
    key_line = first.getvalue().split("(shown once):")[1].split()[0]
    assert ApiKey.objects.get(workspace=demo_shop).key_hash == hash_api_key(key_line)
    assert demo.check_password(password)
    assert WorkspaceMember.objects.get(user=demo, workspace=demo_shop).role == "owner"
    assert WorkspaceMember.objects.get(user=demo, workspace=second_shop).role == "viewer"
    assert Contact.objects.filter(workspace=demo_shop).count() == 60
    assert 0 < Contact.objects.filter(workspace=second_shop).count() < 60

    demo.refresh_from_db()
    assert (rows(demo_shop), rows(second_shop), demo.password, list(ApiKey.objects.values_list("id", flat=True))) == (
        state
    )
    assert "changepassword demo" in again.getvalue()
    assert 'create_api_key --workspace "Demo Shop"' in again.getvalue()


def test_setup_demo_uses_the_given_password_for_a_new_user(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("setup_demo", "--contacts", "30", "--password", "let-me-in-please", stdout=io.StringIO())

    assert get_user_model().objects.get(username="demo").check_password("let-me-in-please")


def test_products_already_in_an_empty_workspace_take_the_demo_details(db):
    shop = Workspace.objects.create(name="Shop A")
    Product.objects.create(workspace=shop, sku="SKU-1", name="Old name")

    seed("Shop A", 20)

    assert Product.objects.get(workspace=shop, sku="SKU-1").name == "Acme Trail Runner"
    assert Product.objects.filter(workspace=shop, sku="SKU-1").count() == 1
