"""Segment's own Python library, unchanged, against a live server: what it sends lands as our data."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connections
from segment.analytics import Client
from segment.analytics import request as segment_request
from segment.analytics.request import APIError

from contacts.models import Contact, ContactStats, Event, Order, Product


@pytest.fixture(autouse=True)
def server_threads_close_their_database_connections(monkeypatch):
    """The library keeps its HTTP connection alive, so a server thread (and its persistent database
    connection) could outlive the test and stop the test database from being dropped at the end."""
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    yield
    segment_request._session.close()


@pytest.fixture
def segment_client(live_server, api):
    failures: list[Exception] = []
    client = Client(
        write_key=api.raw_key,
        host=live_server.url,
        sync_mode=True,
        max_retries=1,
        timeout=10,
        on_error=lambda error, batch: failures.append(error),
    )
    client.failures = failures
    return client


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_the_segment_library_creates_the_contact_order_and_events(segment_client, workspace, gzip):
    segment_client.gzip = gzip
    segment_client.identify(
        "u-1",
        {"email": "ann@example.com", "firstName": "Ann", "address": {"country": "PL", "city": "Kraków"}, "plan": "pro"},
    )
    segment_client.track(
        "u-1",
        "Product Viewed",
        {"sku": "G-32", "url": "https://shop.example/p/g-32"},
        context={"device": {"type": "android"}},
        timestamp=datetime(2024, 5, 1, 9, 0, tzinfo=UTC),
        message_id="view-1",
    )
    segment_client.track(
        "u-1",
        "Order Completed",
        {
            "order_id": "50314b8e",
            "total": 45.5,
            "currency": "EUR",
            "products": [
                {"sku": "G-32", "name": "Monopoly", "brand": "Hasbro", "category": "Games", "price": 19, "quantity": 2},
                {"product_id": "UNO-1", "price": 7.5, "quantity": 1},
            ],
        },
        timestamp=datetime(2024, 5, 1, 9, 5, tzinfo=UTC),
    )
    segment_client.track("u-1", "Email Opened", {"campaign_id": "spring"}, message_id="open-1")
    segment_client.track("u-1", "Email Opened", {"campaign_id": "spring"}, message_id="open-1")  # a resend

    assert segment_client.failures == []
    ann = Contact.objects.get(workspace=workspace, external_id="u-1")
    assert (ann.email, ann.first_name, ann.country, ann.city) == ("ann@example.com", "Ann", "PL", "Kraków")
    assert ann.attributes == {"plan": "pro"}

    order = Order.objects.get(workspace=workspace, external_id="50314b8e")
    assert (order.contact, order.total, order.currency) == (ann, Decimal("45.50"), "EUR")
    assert order.ordered_at == datetime(2024, 5, 1, 9, 5, tzinfo=UTC)
    assert sorted(order.items.values_list("product__sku", "quantity", "unit_price")) == [
        ("G-32", 2, Decimal("19.00")),
        ("UNO-1", 1, Decimal("7.50")),
    ]
    assert Product.objects.get(workspace=workspace, sku="G-32").producer == "Hasbro"

    events = {(e.type, e.event_id, e.device, e.url, e.campaign) for e in Event.objects.filter(contact=ann)}
    assert events == {
        ("product_view", "view-1", "mobile", "https://shop.example/p/g-32", None),
        ("email_open", "open-1", None, None, "spring"),
    }
    figures = ContactStats.objects.get(contact=ann)
    assert (figures.orders_count, figures.total_spent, figures.top_producer) == (1, Decimal("45.50"), "Hasbro")


@pytest.mark.django_db(transaction=True)
def test_the_library_hears_a_401_for_a_wrong_write_key(live_server, db):
    client = Client(write_key="ds_wrong", host=live_server.url, sync_mode=True, max_retries=0)
    with pytest.raises(APIError) as refused:  # sync mode raises what a background thread would log
        client.track("u-1", "Product Viewed")
    assert refused.value.status == 401
    assert not Event.objects.exists()
