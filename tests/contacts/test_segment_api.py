"""The Segment HTTP tracking API: auth by write key, gzip, and the mapping of identify/track/page to our data."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from contacts.models import Contact, ContactStats, Event, EventType, Order, OrderItem, Product
from contacts.segment_tracking import event_type_name


@pytest.fixture
def segment(api) -> APIClient:
    """A client authenticated the way Segment's libraries do it: HTTP Basic, key as user, empty password."""
    client = APIClient()
    token = base64.b64encode(f"{api.raw_key}:".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {token}")
    client.raw_key = api.raw_key
    return client


def send(client, path, body, **extra):
    return client.generic("POST", path, json.dumps(body), content_type="application/json", **extra)


def batch(client, *messages, **body):
    return send(client, "/v1/batch", {"batch": list(messages), **body})


def track(event, user="u1", message_id=None, **fields):
    return {
        "type": "track",
        "userId": user,
        "event": event,
        "messageId": message_id or f"m-{event}-{user}",
        "timestamp": "2024-05-01T10:00:00.000Z",
        **fields,
    }


def contact(workspace, external_id="u1") -> Contact:
    return Contact.objects.get(workspace=workspace, external_id=external_id)


# --- auth and transport ----------------------------------------------------------------------------------------


def test_basic_auth_with_the_api_key_as_user_is_accepted(segment, workspace):
    response = batch(segment, track("Product Viewed"))
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert Event.objects.get().contact == contact(workspace)


def test_the_write_key_may_come_in_the_body(api, workspace):
    anonymous_client = APIClient()
    response = batch(anonymous_client, track("Product Viewed"), writeKey=api.raw_key)
    assert response.json() == {"success": True}
    assert Event.objects.filter(workspace=workspace).count() == 1


@pytest.mark.parametrize("body", [{"writeKey": "ds_wrong"}, {}])
def test_a_wrong_or_missing_write_key_is_a_401(db, body):
    response = batch(APIClient(), track("Product Viewed"), **body)
    assert response.status_code == 401
    assert not Event.objects.exists()


def test_a_gzip_body_is_accepted(segment, workspace):
    body = gzip.compress(json.dumps({"batch": [track("Product Viewed")]}).encode())
    response = segment.generic("POST", "/v1/batch", body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    assert response.json() == {"success": True}
    assert Event.objects.count() == 1


def test_a_body_labelled_text_plain_is_read_as_json(segment, workspace):
    response = segment.generic("POST", "/v1/batch", json.dumps({"batch": [track("Product Viewed")]}), "text/plain")
    assert response.json() == {"success": True}


def test_the_path_may_end_with_a_slash(segment, workspace):
    assert send(segment, "/v1/batch/", {"batch": [track("Product Viewed")]}).json() == {"success": True}


# --- identify --------------------------------------------------------------------------------------------------


def test_identify_maps_traits_to_contact_fields_and_the_rest_to_attributes(segment, workspace):
    traits = {
        "email": "ann@example.com",
        "firstName": "Ann",
        "lastName": "Nowak",
        "phone": "+48 600",
        "address": {"country": "Poland", "city": "Kraków", "street": "Rynek 1"},
        "gender": "female",
        "birthday": "1990-05-17T00:00:00Z",
        "createdAt": "2023-02-01T08:00:00Z",
        "plan": "pro",
        "logins": 7,
    }
    response = send(segment, "/v1/identify", {"userId": "u1", "traits": traits})
    assert response.json() == {"success": True}
    row = contact(workspace)
    assert (row.email, row.first_name, row.last_name, row.phone) == ("ann@example.com", "Ann", "Nowak", "+48 600")
    assert (row.country, row.city, row.gender) == ("PL", "Kraków", "female")
    assert row.birth_date == date(1990, 5, 17)
    assert row.created_at == datetime(2023, 2, 1, 8, tzinfo=UTC)
    assert row.attributes == {"plan": "pro", "logins": 7, "address_street": "Rynek 1"}
    assert ContactStats.objects.filter(contact=row).exists()


def test_identify_splits_a_full_name_when_no_first_or_last_name_is_given(segment, workspace):
    send(segment, "/v1/identify", {"userId": "u1", "traits": {"name": "Ann Maria Nowak"}})
    send(segment, "/v1/identify", {"userId": "u2", "traits": {"name": "Bo Lind", "firstName": "Bo"}})
    assert (contact(workspace, "u1").first_name, contact(workspace, "u1").last_name) == ("Ann", "Maria Nowak")
    assert contact(workspace, "u2").attributes == {"name": "Bo Lind"}


def test_a_later_identify_changes_only_the_traits_it_sends_and_merges_attributes(segment, workspace):
    send(segment, "/v1/identify", {"userId": "u1", "traits": {"email": "a@example.com", "plan": "pro", "seats": 3}})
    send(segment, "/v1/identify", {"userId": "u1", "traits": {"city": "Gdańsk", "plan": None}})
    row = contact(workspace)
    assert (row.email, row.city) == ("a@example.com", "Gdańsk")
    assert row.attributes == {"seats": 3}


# --- track -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "event_type"),
    [
        ("Product Added", "cart_add"),
        ("Product Viewed", "product_view"),
        ("Checkout Started", "checkout_start"),
        ("Email Opened", "email_open"),
        ("Email Link Clicked", "email_click"),
        ("Email Bounced", "email_bounce"),
        ("Unsubscribed", "unsubscribe"),
        ("Email Delivered", "email_sent"),
        ("Email Sent", "email_sent"),
        ("Email Marked as Spam", "email_complaint"),
        ("Application Opened", "app_open"),
        ("email opened", "email_open"),
        ("Video Played", "video_played"),
        ("Wishlist: Item Added!", "wishlist_item_added"),
    ],
)
def test_track_maps_spec_events_to_our_types_and_names_others_in_snake_case(segment, workspace, name, event_type):
    batch(segment, track(name))
    assert Event.objects.get().type == event_type
    assert EventType.objects.filter(workspace=workspace, name=event_type).exists()


def test_the_custom_type_naming_rule():
    assert event_type_name("  Coupon -- Applied ") == "coupon_applied"
    assert event_type_name("Zamówienie Złożone") == "zamówienie_złożone"


def test_a_repeated_message_id_is_a_no_op(segment, workspace):
    batch(segment, track("Email Opened", message_id="same"))
    batch(segment, track("Email Opened", message_id="same"), track("Email Opened", message_id="same"))
    assert Event.objects.count() == 1
    assert Event.objects.get().event_id == "same"


def test_track_takes_device_url_and_campaign_from_context_and_properties(segment, workspace):
    batch(
        segment,
        track(
            "Email Link Clicked",
            message_id="a",
            properties={"campaign_id": 42, "url": "https://shop.example/sale"},
            context={"device": {"type": "ios"}},
        ),
        track(
            "Product Viewed",
            message_id="b",
            context={
                "page": {"url": "https://shop.example/p/1"},
                "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0",
                "campaign": {"name": "spring"},
            },
        ),
        track("Product Viewed", message_id="c", context={"userAgent": "Mozilla/5.0 (iPad; CPU OS 17_0)"}),
    )
    clicked, viewed, tablet = (Event.objects.get(event_id=m) for m in "abc")
    assert (clicked.device, clicked.url, clicked.campaign) == ("mobile", "https://shop.example/sale", "42")
    assert clicked.properties == {"campaign_id": 42, "url": "https://shop.example/sale"}
    assert (viewed.device, viewed.url, viewed.campaign) == ("desktop", "https://shop.example/p/1", "spring")
    assert tablet.device == "tablet"
    assert ContactStats.objects.get(contact=contact(workspace)).preferred_device == "cross_platform"


def test_order_completed_becomes_an_order_with_items_and_catalogue_products(segment, workspace):
    properties = {
        "order_id": "50314b8e",
        "total": 27.5,
        "revenue": 25.0,
        "currency": "usd",
        "products": [
            {"product_id": "507f1f77", "sku": "G-32", "name": "Monopoly", "price": 19, "quantity": 1,
             "brand": "Hasbro", "category": "Games"},
            {"product_id": "505bd76785", "name": "Uno", "price": 3.25, "quantity": 2, "category": "Games"},
        ],
    }  # fmt: skip
    response = batch(segment, track("Order Completed", properties=properties))
    assert response.json() == {"success": True}
    order = Order.objects.get(workspace=workspace, external_id="50314b8e")
    assert (order.total, order.currency, order.contact) == (Decimal("27.50"), "USD", contact(workspace))
    assert order.ordered_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert sorted(OrderItem.objects.values_list("product__sku", "quantity", "unit_price")) == [
        ("505bd76785", 2, Decimal("3.25")),
        ("G-32", 1, Decimal("19.00")),
    ]
    monopoly = Product.objects.get(sku="G-32")
    assert (monopoly.name, monopoly.producer, monopoly.category) == ("Monopoly", "Hasbro", "Games")
    figures = ContactStats.objects.get(contact=contact(workspace))
    assert (figures.orders_count, figures.total_spent, figures.top_category) == (1, Decimal("27.50"), "Games")


def test_order_completed_uses_revenue_without_total_and_a_repeat_changes_nothing(segment, workspace):
    message = track("Order Completed", properties={"order_id": "o-9", "revenue": "12.00", "products": []})
    batch(segment, message)
    batch(segment, message)
    assert Order.objects.get(external_id="o-9").total == Decimal("12.00")
    assert Order.objects.count() == 1


def test_page_and_screen_calls_are_page_views(segment, workspace):
    send(segment, "/v1/page", {"userId": "u1", "name": "Home", "properties": {"url": "https://shop.example/"}})
    send(segment, "/v1/screen", {"userId": "u1", "name": "Cart", "messageId": "s-1"})
    page, screen = Event.objects.order_by("id")
    assert (page.type, page.url, page.properties["name"]) == ("page_view", "https://shop.example/", "Home")
    assert (screen.type, screen.properties) == ("page_view", {"name": "Cart"})


def test_single_track_call_stores_one_event(segment, workspace):
    response = send(segment, "/v1/track", {"userId": "u1", "event": "Checkout Started", "messageId": "t-1"})
    assert response.json() == {"success": True}
    assert Event.objects.get().type == "checkout_start"


# --- what is not stored -----------------------------------------------------------------------------------------


def test_anonymous_messages_are_acknowledged_and_not_stored(segment, workspace):
    response = batch(
        segment,
        {"type": "identify", "anonymousId": "anon-1", "traits": {"email": "who@example.com"}},
        {"type": "track", "anonymousId": "anon-1", "event": "Product Viewed"},
    )
    assert response.json() == {"success": True}
    assert not Contact.objects.exists()
    assert not Event.objects.exists()


@pytest.mark.parametrize("path", ["/v1/alias", "/v1/group"])
def test_alias_and_group_are_acknowledged_and_not_stored(segment, workspace, path):
    response = send(segment, path, {"userId": "u1", "previousId": "anon-1", "groupId": "g-1"})
    assert response.json() == {"success": True}
    assert not Contact.objects.exists()


# --- batches ---------------------------------------------------------------------------------------------------


def test_identify_and_track_of_one_user_in_one_batch_land_on_one_contact(segment, workspace):
    response = batch(
        segment,
        track("Product Added", user="new-user"),
        {"type": "identify", "userId": "new-user", "traits": {"email": "new@example.com"}},
    )
    assert response.json() == {"success": True}
    assert contact(workspace, "new-user").email == "new@example.com"
    assert Event.objects.get().contact == contact(workspace, "new-user")
    assert ContactStats.objects.get(contact__external_id="new-user").cart_open_since is not None


def test_batch_context_applies_to_every_message(segment, workspace):
    batch(segment, track("Product Viewed"), context={"device": {"type": "android"}})
    assert Event.objects.get().device == "mobile"
