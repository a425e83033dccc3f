"""POST /api/v1/orders/bulk/ and /api/v1/products/bulk/: upserts that keep the computed figures current."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from contacts.ingest import ingest_orders, ingest_products
from contacts.models import Contact, ContactStats, Order, OrderItem, Product
from tests.factories import make_contact

ORDERS = "/api/v1/orders/bulk/"
PRODUCTS = "/api/v1/products/bulk/"


def order(external_id="o-1", contact="u1", items=None, **fields):
    record = {
        "external_id": external_id,
        "contact": contact,
        "ordered_at": "2024-05-01T10:00:00Z",
        "items": items if items is not None else [{"sku": "MUG", "quantity": 2, "unit_price": "9.50"}],
    }
    record.update(fields)
    return record


def stats(workspace, external_id) -> ContactStats:
    return ContactStats.objects.get(contact__workspace=workspace, contact__external_id=external_id)


def items_of(external_id: str) -> list[tuple[str, int, Decimal]]:
    return sorted(
        OrderItem.objects.filter(order__external_id=external_id).values_list("product__sku", "quantity", "unit_price")
    )


def test_an_order_is_stored_with_its_items_default_total_and_currency(api, workspace):
    make_contact(workspace, external_id="u1")
    response = api.post(ORDERS, {"orders": [order()]}, format="json")
    assert response.json() == {"created": 1, "updated": 0, "errors": []}
    stored = Order.objects.get(external_id="o-1")
    assert stored.total == Decimal("19.00")
    assert stored.currency == workspace.currency
    assert stored.ordered_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert items_of("o-1") == [("MUG", 2, Decimal("9.50"))]
    assert (stats(workspace, "u1").orders_count, stats(workspace, "u1").total_spent) == (1, Decimal("19.00"))


def test_unknown_contacts_and_skus_are_created_bare_with_figures(api, workspace):
    api.post(ORDERS, {"orders": [order(contact="new-buyer")]}, format="json")
    buyer = Contact.objects.get(workspace=workspace, external_id="new-buyer")
    assert buyer.email is None
    assert Product.objects.get(workspace=workspace, sku="MUG").name is None
    assert stats(workspace, "new-buyer").orders_count == 1


def test_sending_the_same_orders_again_duplicates_nothing(api, workspace):
    payload = {"orders": [order(), order("o-2", items=[{"sku": "TEA", "unit_price": 4}])]}
    api.post(ORDERS, payload, format="json")
    response = api.post(ORDERS, payload, format="json")
    assert response.json() == {"created": 0, "updated": 2, "errors": []}
    assert Order.objects.count() == 2
    assert OrderItem.objects.count() == 2
    assert stats(workspace, "u1").total_spent == Decimal("23.00")


def test_an_upsert_replaces_the_items_and_the_total(api, workspace):
    api.post(ORDERS, {"orders": [order()]}, format="json")
    api.post(
        ORDERS,
        {"orders": [order(items=[{"sku": "TEA", "quantity": 1, "unit_price": 3}, {"sku": "CUP", "unit_price": 2}])]},
        format="json",
    )
    assert items_of("o-1") == [("CUP", 1, Decimal("2.00")), ("TEA", 1, Decimal("3.00"))]
    assert Order.objects.get(external_id="o-1").total == Decimal("5.00")
    assert stats(workspace, "u1").total_spent == Decimal("5.00")


def test_an_explicit_total_and_currency_are_kept(api, workspace):
    api.post(ORDERS, {"orders": [order(total=25.5, currency="pln")]}, format="json")
    stored = Order.objects.get(external_id="o-1")
    assert (stored.total, stored.currency) == (Decimal("25.50"), "PLN")


def test_an_order_that_moves_to_another_contact_refreshes_both(api, workspace):
    api.post(ORDERS, {"orders": [order(contact="first")]}, format="json")
    api.post(ORDERS, {"orders": [order(contact="second")]}, format="json")
    assert stats(workspace, "first").orders_count == 0
    assert stats(workspace, "first").total_spent == Decimal("0")
    assert stats(workspace, "second").orders_count == 1
    assert Order.objects.get(external_id="o-1").contact.external_id == "second"


def test_bad_orders_are_reported_at_the_item_that_is_wrong_and_good_ones_stored(api, workspace):
    response = api.post(
        ORDERS,
        {"orders": [order("ok"), order("bad", items=[{"sku": "A", "unit_price": 1}, {"sku": "B", "quantity": 0}])]},
        format="json",
    )
    body = response.json()
    assert response.status_code == 200
    assert body["created"] == 1
    assert [(e["index"], e["path"]) for e in body["errors"]] == [
        (1, "orders[1].items[1].quantity"),
        (1, "orders[1].items[1].unit_price"),
    ]
    assert list(Order.objects.values_list("external_id", flat=True)) == ["ok"]


def test_products_upsert_by_sku_changing_only_the_named_fields(api, workspace):
    api.post(PRODUCTS, {"products": [{"sku": "MUG", "name": "Mug", "producer": "Acme", "price": 9.99}]}, format="json")
    response = api.post(PRODUCTS, {"products": [{"sku": "MUG", "category": "Kitchen"}]}, format="json")
    assert response.json() == {"created": 0, "updated": 1, "errors": []}
    mug = Product.objects.get(workspace=workspace, sku="MUG")
    assert (mug.name, mug.producer, mug.category, mug.price) == ("Mug", "Acme", "Kitchen", Decimal("9.99"))


def test_a_product_whose_category_changes_refreshes_its_buyers_top_category(workspace):
    ingest_products(workspace=workspace, records=[{"sku": "MUG", "category": "Kitchen"}])
    ingest_orders(workspace=workspace, records=[order()])
    assert stats(workspace, "u1").top_category == "Kitchen"
    result = ingest_products(workspace=workspace, records=[{"sku": "MUG", "category": "Dining"}])
    assert stats(workspace, "u1").top_category == "Dining"
    assert result.contact_ids == [Contact.objects.get(external_id="u1").pk]
