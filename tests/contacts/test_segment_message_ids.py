"""Segment `messageId`: a message the workspace has already processed is a no-op, whatever its type.

Without it a retried older identify or Order Completed would overwrite what a newer message wrote.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from contacts.ingest.segment import ingest_segment_messages, prune_processed_messages
from contacts.models import Contact, ContactStats, Event, Order, OrderItem, ProcessedMessage, Workspace


def segment_client(raw_key: str) -> APIClient:
    """Authenticated the way Segment's libraries do it: HTTP Basic, key as user, empty password."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{raw_key}:".encode()).decode())
    return client


@pytest.fixture
def segment(api) -> APIClient:
    return segment_client(api.raw_key)


@pytest.fixture
def other_segment(other_api) -> APIClient:
    return segment_client(other_api.raw_key)


def send(client: APIClient, path: str, body: dict):
    return client.generic("POST", path, json.dumps(body), content_type="application/json")


def batch(client: APIClient, *messages: dict):
    return send(client, "/v1/batch", {"batch": list(messages)})


def identify(first_name: str, plan: str, message_id: str | None, user: str = "mid2") -> dict:
    message = {"type": "identify", "userId": user, "traits": {"firstName": first_name, "plan": plan}}
    if message_id is not None:
        message["messageId"] = message_id
    return message


def order_completed(total: str, message_id: str | None, sku: str = "SKU-1", quantity: int = 1) -> dict:
    properties = {
        "order_id": "ORD-77",
        "total": total,
        "currency": "EUR",
        "products": [{"sku": sku, "price": total, "quantity": quantity}],
    }
    message = {
        "type": "track",
        "userId": "buyer",
        "event": "Order Completed",
        "timestamp": "2024-05-01T10:00:00Z",
        "properties": properties,
    }
    if message_id is not None:
        message["messageId"] = message_id
    return message


def contact(workspace: Workspace, external_id: str = "mid2") -> Contact:
    return Contact.objects.get(workspace=workspace, external_id=external_id)


def names_and_plan(workspace: Workspace, external_id: str = "mid2") -> tuple[str, str]:
    found = contact(workspace, external_id)
    return found.first_name, found.attributes.get("plan")


def order_figures(workspace: Workspace) -> tuple:
    order = Order.objects.get(workspace=workspace, external_id="ORD-77")
    figures = ContactStats.objects.get(contact=order.contact)
    items = sorted(OrderItem.objects.filter(order=order).values_list("product__sku", "quantity", "unit_price"))
    return order.total, figures.orders_count, figures.total_spent, items


# --- the audit's reproductions ----------------------------------------------------------------------------------


def test_a_repeated_identify_after_a_newer_one_is_a_no_op(segment, workspace):
    for message in (identify("Alice", "free", "msg-1"), identify("Alicia", "pro", "msg-2")):
        assert send(segment, "/v1/identify", message).json() == {"success": True}
    response = send(segment, "/v1/identify", identify("Alice", "free", "msg-1"))
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert names_and_plan(workspace) == ("Alicia", "pro")


def test_a_repeated_order_completed_after_a_newer_one_is_a_no_op(segment, workspace):
    send(segment, "/v1/track", order_completed("10.00", "oc-a", sku="SKU-1", quantity=1))
    send(segment, "/v1/track", order_completed("20.00", "oc-b", sku="SKU-2", quantity=2))
    newer = order_figures(workspace)
    assert newer == (Decimal("20.00"), 1, Decimal("20.00"), [("SKU-2", 2, Decimal("20.00"))])
    response = send(segment, "/v1/track", order_completed("10.00", "oc-a", sku="SKU-1", quantity=1))
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert order_figures(workspace) == newer


def test_repeats_through_the_batch_endpoint_are_no_ops(segment, workspace):
    batch(segment, identify("Alice", "free", "msg-1"), order_completed("10.00", "oc-a"))
    batch(segment, identify("Alicia", "pro", "msg-2"), order_completed("20.00", "oc-b"))
    response = batch(segment, identify("Alice", "free", "msg-1"), order_completed("10.00", "oc-a"))
    assert response.json() == {"success": True}
    assert names_and_plan(workspace) == ("Alicia", "pro")
    assert order_figures(workspace)[:3] == (Decimal("20.00"), 1, Decimal("20.00"))


# --- within one call, across workspaces, without messageId -----------------------------------------------------


def test_a_repeat_within_one_batch_is_a_no_op(segment, workspace):
    response = batch(
        segment,
        identify("Alice", "free", "msg-1"),
        identify("Alicia", "pro", "msg-2"),
        identify("Alice", "free", "msg-1"),
        order_completed("10.00", "oc-a"),
        order_completed("20.00", "oc-b"),
        order_completed("10.00", "oc-a"),
    )
    assert response.json() == {"success": True}
    assert names_and_plan(workspace) == ("Alicia", "pro")
    assert order_figures(workspace)[:3] == (Decimal("20.00"), 1, Decimal("20.00"))


def test_the_first_of_two_messages_with_one_id_in_a_batch_wins(segment, workspace):
    batch(segment, identify("Alice", "free", "msg-1"), identify("Bob", "pro", "msg-1"))
    assert names_and_plan(workspace) == ("Alice", "free")


def test_a_repeated_track_event_is_stored_once(segment, workspace):
    event = {"type": "track", "userId": "u1", "event": "Email Opened", "messageId": "e-1"}
    batch(segment, event, event)
    send(segment, "/v1/track", event)
    assert Event.objects.filter(workspace=workspace).values_list("event_id", flat=True).get() == "e-1"


def test_the_same_message_id_in_two_workspaces_is_processed_in_both(segment, other_segment, workspace, other_workspace):
    assert send(segment, "/v1/identify", identify("Alice", "free", "msg-1")).json() == {"success": True}
    assert send(other_segment, "/v1/identify", identify("Bob", "pro", "msg-1")).json() == {"success": True}
    send(segment, "/v1/track", order_completed("10.00", "oc-a"))
    send(other_segment, "/v1/track", order_completed("30.00", "oc-a"))
    assert names_and_plan(workspace) == ("Alice", "free")
    assert names_and_plan(other_workspace) == ("Bob", "pro")
    assert order_figures(workspace)[:3] == (Decimal("10.00"), 1, Decimal("10.00"))
    assert order_figures(other_workspace)[:3] == (Decimal("30.00"), 1, Decimal("30.00"))


def test_messages_without_message_id_apply_every_time(segment, workspace):
    for first_name, plan in (("Alice", "free"), ("Alicia", "pro"), ("Alice", "free")):
        assert send(segment, "/v1/identify", identify(first_name, plan, None)).json() == {"success": True}
        assert names_and_plan(workspace) == (first_name, plan)
    for total in ("10.00", "20.00", "10.00"):
        send(segment, "/v1/track", order_completed(total, None))
        assert order_figures(workspace)[:3] == (Decimal(total), 1, Decimal(total))
    batch(segment, identify("Bob", "pro", None), identify("Alice", "free", None))
    assert names_and_plan(workspace) == ("Alice", "free")
    assert not ProcessedMessage.objects.exists()


# --- what is recorded ---------------------------------------------------------------------------------------------


def test_processed_ids_are_recorded_per_workspace_and_numbers_count_as_strings(segment, workspace):
    send(segment, "/v1/identify", identify("Alice", "free", 42))
    send(segment, "/v1/identify", identify("Alicia", "pro", "42"))
    assert names_and_plan(workspace) == ("Alice", "free")
    assert list(ProcessedMessage.objects.values_list("workspace", "message_id")) == [(workspace.pk, "42")]


def test_a_refused_message_does_not_use_up_its_id(segment, workspace):
    bad = identify("Alice", "free", "msg-1")
    bad["traits"]["birthday"] = "not a date"
    response = send(segment, "/v1/identify", bad)
    assert response.status_code == 400
    assert not ProcessedMessage.objects.exists()
    assert send(segment, "/v1/identify", identify("Alice", "free", "msg-1")).json() == {"success": True}
    assert names_and_plan(workspace) == ("Alice", "free")


def test_a_message_id_longer_than_its_column_is_refused_at_its_path(segment, workspace):
    response = batch(segment, identify("Alice", "free", "x" * 256), identify("Bob", "pro", "ok", user="u2"))
    assert response.json() == {
        "success": True,
        "errors": [{"path": "batch[0].messageId", "message": "must be at most 255 characters (got 256)"}],
    }
    assert not Contact.objects.filter(external_id="mid2").exists()
    assert names_and_plan(workspace, "u2") == ("Bob", "pro")


def test_the_result_counts_repeats(workspace):
    messages = [identify("Alice", "free", "msg-1"), identify("Alice", "free", "msg-1"), identify("Al", "x", None)]
    result = ingest_segment_messages(workspace=workspace, messages=messages)
    assert (result.stored, result.repeated, result.errors) == (3, 1, [])
    again = ingest_segment_messages(workspace=workspace, messages=messages[:1])
    assert (again.stored, again.repeated, again.contact_ids) == (1, 1, [])


def test_ids_past_the_retention_are_forgotten_by_the_daily_prune(workspace, settings):
    settings.SEGMENT_MESSAGE_ID_RETENTION_DAYS = 30
    ingest_segment_messages(workspace=workspace, messages=[identify("Alice", "free", "old"), identify("B", "x", "new")])
    now = timezone.now()
    ProcessedMessage.objects.filter(message_id="old").update(received_at=now - timedelta(days=31))
    ProcessedMessage.objects.filter(message_id="new").update(received_at=now - timedelta(days=29))

    assert prune_processed_messages(now=now) == 1

    assert list(ProcessedMessage.objects.values_list("message_id", flat=True)) == ["new"]
    # Past the retention a repeat applies again; within it, it stays a no-op.
    repeats = [identify("A", "y", "old"), identify("C", "z", "new")]
    again = ingest_segment_messages(workspace=workspace, messages=repeats)
    assert again.repeated == 1


# --- concurrent calls -----------------------------------------------------------------------------------------------


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent transactions need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_of_two_concurrent_calls_with_one_id_only_the_first_applies(workspace):
    """The second call's claim waits on the first's uncommitted row, then finds the id taken."""
    claimed, results, failures = threading.Event(), {}, []

    def first() -> None:
        try:
            with transaction.atomic():
                messages = [identify("Alice", "free", "m")]
                results["first"] = ingest_segment_messages(workspace=workspace, messages=messages)
                claimed.set()
                threading.Event().wait(0.5)  # the second call is blocked on the unique index meanwhile
        except Exception as exc:  # noqa: BLE001 - reported by the test thread below
            failures.append(exc)
            claimed.set()
        finally:
            connection.close()

    def second() -> None:
        try:
            claimed.wait(10)
            started = time.monotonic()
            results["second"] = ingest_segment_messages(workspace=workspace, messages=[identify("Bob", "pro", "m")])
            results["waited"] = time.monotonic() - started
        except Exception as exc:  # noqa: BLE001
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert (results["first"].repeated, results["second"].repeated) == (0, 1)
    assert results["waited"] > 0.2  # it did overlap the first call's transaction
    assert names_and_plan(workspace) == ("Alice", "free")
