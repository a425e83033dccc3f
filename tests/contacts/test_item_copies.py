"""Every order item carries its order's contact and time (`OrderItem.contact`, `OrderItem.ordered_at`).

The segment engine reads item conditions from the items alone, so the copies must equal the order's
after every way orders are written or changed: bulk ingest (also when an upsert moves an order to
another contact or changes its time), the Segment API's `Order Completed`, the CSV import, the admin,
and the model's own save (factories). The demo seed is checked in test_seed_demo.py.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from contacts.csv_import import guess_mapping, plan_import, read_csv, run_import
from contacts.models import Order, OrderItem, Workspace
from tests.factories import make_contact, make_order, make_product
from tests.segments.support import ALL, ago, members

ORDERS = "/api/v1/orders/bulk/"


def item_copies(workspace: Workspace) -> list[tuple[str, str, str, datetime, datetime]]:
    """(order, item's contact, order's contact, item's time, order's time) for every item of the workspace."""
    rows = OrderItem.objects.filter(order__workspace=workspace).values_list(
        "order__external_id", "contact__external_id", "order__contact__external_id", "ordered_at", "order__ordered_at"
    )
    return sorted(rows)


def assert_items_carry_their_orders(workspace: Workspace, *, items: int) -> None:
    copies = item_copies(workspace)
    assert len(copies) == items
    mismatched = [row for row in copies if row[1] != row[2] or row[3] != row[4]]
    assert mismatched == []


def owners(workspace: Workspace, external_id: str) -> set[tuple[str, datetime]]:
    """The distinct (contact, time) the items of one order carry."""
    return {(contact, at) for order, contact, _, at, _ in item_copies(workspace) if order == external_id}


# --- bulk ingest ------------------------------------------------------------------------------------------------


def test_bulk_orders_copy_the_contact_and_time_onto_every_item(api, workspace):
    response = api.post(
        ORDERS,
        {"orders": [
            {"external_id": "o-1", "contact": "u1", "ordered_at": "2024-05-01T10:00:00Z",
             "items": [{"sku": "MUG", "quantity": 2, "unit_price": "9.50"}, {"sku": "TEA", "unit_price": 3}]},
            {"external_id": "o-2", "contact": "u2", "ordered_at": "2024-05-02",
             "items": [{"sku": "MUG", "unit_price": "9.50"}]},
        ]},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200, response.content
    assert_items_carry_their_orders(workspace, items=3)
    assert owners(workspace, "o-1") == {("u1", datetime(2024, 5, 1, 10, tzinfo=UTC))}
    assert owners(workspace, "o-2") == {("u2", datetime(2024, 5, 2, tzinfo=UTC))}


def test_an_upsert_that_moves_an_order_and_changes_its_time_moves_its_items(api, workspace):
    first = {"external_id": "o-1", "contact": "u1", "ordered_at": "2024-05-01T10:00:00Z",
             "items": [{"sku": "MUG", "quantity": 2, "unit_price": "9.50"},
                       {"sku": "TEA", "unit_price": 3}]}  # fmt: skip
    api.post(ORDERS, {"orders": [first]}, format="json")

    moved = {**first, "contact": "u2", "ordered_at": "2024-06-02T08:30:00Z"}
    assert api.post(ORDERS, {"orders": [moved]}, format="json").json()["updated"] == 1
    assert_items_carry_their_orders(workspace, items=2)
    assert owners(workspace, "o-1") == {("u2", datetime(2024, 6, 2, 8, 30, tzinfo=UTC))}


def test_a_repeat_within_one_call_leaves_the_items_of_the_last_record(api, workspace):
    records = [
        {"external_id": "o-1", "contact": "u1", "ordered_at": "2024-05-01", "items": [{"sku": "A", "unit_price": 1}]},
        {"external_id": "o-1", "contact": "u3", "ordered_at": "2024-05-07", "items": [{"sku": "B", "unit_price": 2}]},
    ]
    api.post(ORDERS, {"orders": records}, format="json")
    assert_items_carry_their_orders(workspace, items=1)
    assert owners(workspace, "o-1") == {("u3", datetime(2024, 5, 7, tzinfo=UTC))}


def test_an_upsert_without_items_replaces_them_so_no_item_keeps_the_old_contact(api, workspace):
    api.post(
        ORDERS,
        {"orders": [{"external_id": "o-1", "contact": "u1", "ordered_at": "2024-05-01",
                     "items": [{"sku": "MUG", "unit_price": "9.50"}]}]},
        format="json",
    )  # fmt: skip
    response = api.post(
        ORDERS, {"orders": [{"external_id": "o-1", "contact": "u2", "ordered_at": "2024-05-09", "total": "9.50"}]},
        format="json",
    )  # fmt: skip
    assert response.json()["updated"] == 1
    # An order record replaces the stored order, items included: without `items` it has none.
    assert Order.objects.get(workspace=workspace, external_id="o-1").contact.external_id == "u2"
    assert item_copies(workspace) == []


def test_item_conditions_follow_an_order_to_its_new_contact(api, workspace):
    api.post("/api/v1/products/bulk/", {"products": [{"sku": "BOOT", "producer": "Acme"}]}, format="json")
    order = {"external_id": "o-1", "contact": "u1", "ordered_at": ago(days=10).isoformat(),
             "items": [{"sku": "BOOT", "quantity": 1, "unit_price": "350"}]}  # fmt: skip
    api.post(ORDERS, {"orders": [order]}, format="json")
    acme_spend = ALL({
        "type": "orders", "filters": [{"field": "product.producer", "op": "eq", "value": "Acme"}],
        "window": {"last": 6, "unit": "months"}, "measure": "sum", "op": "gt", "value": 300,
    })  # fmt: skip
    assert members(workspace, acme_spend) == {"u1"}

    api.post(ORDERS, {"orders": [{**order, "contact": "u2"}]}, format="json")
    assert members(workspace, acme_spend) == {"u2"}

    api.post(ORDERS, {"orders": [{**order, "contact": "u2", "ordered_at": ago(days=400).isoformat()}]}, format="json")
    assert members(workspace, acme_spend) == set()


# --- Segment API ------------------------------------------------------------------------------------------------


@pytest.fixture
def segment(api) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{api.raw_key}:".encode()).decode())
    return client


def order_completed(user: str, timestamp: str) -> dict:
    return {
        "type": "track",
        "userId": user,
        "event": "Order Completed",
        "messageId": f"m-{user}-{timestamp}",
        "timestamp": timestamp,
        "properties": {
            "order_id": "50314b8e",
            "products": [{"sku": "G-32", "price": 19, "quantity": 1}, {"sku": "U-1", "price": 3.25, "quantity": 2}],
        },
    }


def test_order_completed_copies_the_contact_and_time_and_a_resend_moves_them(segment, workspace):
    def send(message: dict) -> None:
        body = json.dumps({"batch": [message]})
        response = segment.generic("POST", "/v1/batch", body, content_type="application/json")
        assert response.json() == {"success": True}

    send(order_completed("u1", "2024-05-01T10:00:00.000Z"))
    assert_items_carry_their_orders(workspace, items=2)
    assert owners(workspace, "50314b8e") == {("u1", datetime(2024, 5, 1, 10, tzinfo=UTC))}

    send(order_completed("u2", "2024-05-03T12:00:00.000Z"))
    assert_items_carry_their_orders(workspace, items=2)
    assert owners(workspace, "50314b8e") == {("u2", datetime(2024, 5, 3, 12, tzinfo=UTC))}


# --- CSV import -------------------------------------------------------------------------------------------------


def import_orders(workspace: Workspace, data: bytes) -> None:
    table = read_csv(data)
    plan = plan_import("orders", table, guess_mapping("orders", table.headers))
    assert plan.ok, plan.row_errors
    run_import(workspace=workspace, plan=plan)


def test_csv_import_copies_and_a_reimport_moves_the_items(workspace):
    import_orders(workspace, (
        b"order_id,customer_id,order_date,sku,qty,price\n"
        b"o-1,u1,2024-05-01,SKU-1,2,9.50\n"
        b"o-1,u1,2024-05-01,SKU-2,1,20\n"
        b"o-2,u9,2024-05-03T10:00:00Z,SKU-1,1,9.50\n"
    ))  # fmt: skip
    assert_items_carry_their_orders(workspace, items=3)
    assert owners(workspace, "o-1") == {("u1", datetime(2024, 5, 1, tzinfo=UTC))}

    import_orders(workspace, b"order_id,customer_id,order_date,sku,qty,price\no-1,u9,2024-05-20,SKU-2,1,20\n")
    assert_items_carry_their_orders(workspace, items=2)
    assert owners(workspace, "o-1") == {("u9", datetime(2024, 5, 20, tzinfo=UTC))}


# --- model saves: factories and the admin ---------------------------------------------------------------------


def test_saving_items_and_orders_keeps_the_copies(workspace):
    ann, bob = make_contact(workspace, external_id="ann"), make_contact(workspace, external_id="bob")
    mug = make_product(workspace)
    order = make_order(ann, external_id="o-1", items=[(mug, 1, "5"), (mug, 2, "4")], ordered_at=ago(days=3))
    assert owners(workspace, "o-1") == {("ann", ago(days=3))}

    order.contact, order.ordered_at = bob, ago(days=1)
    order.save()
    assert owners(workspace, "o-1") == {("bob", ago(days=1))}

    order.ordered_at = ago(hours=5)
    order.save(update_fields=["ordered_at"])
    assert owners(workspace, "o-1") == {("bob", ago(hours=5))}
    assert_items_carry_their_orders(workspace, items=2)


def test_an_admin_edit_of_an_order_moves_its_items(client, workspace):
    client.force_login(User.objects.create_superuser("operator", "op@example.com", "pw-123-secret"))
    ann, bob = make_contact(workspace, external_id="ann"), make_contact(workspace, external_id="bob")
    mug, tea = make_product(workspace), make_product(workspace)
    order = make_order(ann, external_id="o-1", items=[(mug, 1, "5.00")], ordered_at=datetime(2024, 5, 1, tzinfo=UTC))
    item = order.items.get()
    form = {
        "workspace": workspace.pk, "contact": bob.pk, "external_id": "o-1",
        "ordered_at_0": "2024-05-20", "ordered_at_1": "09:15:00",
        "source": "", "currency": "EUR", "total": "13.00",
        "items-TOTAL_FORMS": "2", "items-INITIAL_FORMS": "1", "items-MIN_NUM_FORMS": "0", "items-MAX_NUM_FORMS": "1000",
        "items-0-id": item.pk, "items-0-order": order.pk, "items-0-product": mug.pk,
        "items-0-quantity": "1", "items-0-unit_price": "5.00",
        "items-1-id": "", "items-1-order": order.pk, "items-1-product": tea.pk,
        "items-1-quantity": "2", "items-1-unit_price": "4.00",
    }  # fmt: skip
    response = client.post(f"/admin/contacts/order/{order.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert_items_carry_their_orders(workspace, items=2)
    assert owners(workspace, "o-1") == {("bob", datetime(2024, 5, 20, 9, 15, tzinfo=UTC))}
