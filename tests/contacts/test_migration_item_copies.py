"""Migrations that fill new columns of existing rows (the backfill of a live database): 0005, 0009."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("contacts", "0004_segment_indexes")]
AFTER = [("contacts", "0005_item_order_copies")]


def migrate(targets: list[tuple[str, str]]):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_items_get_their_orders_contact_and_time():
    old = migrate(BEFORE)
    try:
        Workspace = old.get_model("contacts", "Workspace")
        Contact = old.get_model("contacts", "Contact")
        Product = old.get_model("contacts", "Product")
        Order = old.get_model("contacts", "Order")
        OrderItem = old.get_model("contacts", "OrderItem")
        shop = Workspace.objects.create(name="Before 0005")
        ann, bob = (Contact.objects.create(workspace=shop, external_id=name) for name in ("ann", "bob"))
        mug = Product.objects.create(workspace=shop, sku="MUG", name="Mug", price=Decimal("9.50"))
        times = {"o-1": datetime(2024, 5, 1, 10, tzinfo=UTC), "o-2": datetime(2025, 1, 31, 23, 59, tzinfo=UTC)}
        for external_id, buyer in (("o-1", ann), ("o-2", bob)):
            order = Order.objects.create(
                workspace=shop, contact=buyer, external_id=external_id, ordered_at=times[external_id],
                currency="EUR", total=Decimal("19.00"),
            )  # fmt: skip
            OrderItem.objects.bulk_create(
                [OrderItem(order=order, product=mug, quantity=1, unit_price=Decimal("9.50")) for _ in range(2)]
            )

        new = migrate(AFTER)

        items = new.get_model("contacts", "OrderItem").objects.filter(order__workspace_id=shop.pk)
        copies = sorted(items.values_list("order__external_id", "contact_id", "ordered_at"))
        assert copies == [
            ("o-1", ann.pk, times["o-1"]),
            ("o-1", ann.pk, times["o-1"]),
            ("o-2", bob.pk, times["o-2"]),
            ("o-2", bob.pk, times["o-2"]),
        ]
    finally:
        # Back to every app's latest migration (later ones than 0005 too), as the tests after this one expect.
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_existing_items_and_contact_tags_get_their_workspace():
    old = migrate([("contacts", "0008_contact_covering_indexes")])
    try:
        Workspace = old.get_model("contacts", "Workspace")
        Contact = old.get_model("contacts", "Contact")
        Product = old.get_model("contacts", "Product")
        Order = old.get_model("contacts", "Order")
        OrderItem = old.get_model("contacts", "OrderItem")
        Tag = old.get_model("contacts", "Tag")
        ContactTag = old.get_model("contacts", "ContactTag")
        shops = [Workspace.objects.create(name=f"Before 0009 {n}") for n in (1, 2)]
        for shop in shops:
            ann = Contact.objects.create(workspace=shop, external_id="ann")
            mug = Product.objects.create(workspace=shop, sku="MUG", price=Decimal("9.50"))
            order = Order.objects.create(
                workspace=shop, contact=ann, external_id="o-1", ordered_at=datetime(2024, 5, 1, tzinfo=UTC),
                currency="EUR", total=Decimal("9.50"),
            )  # fmt: skip
            OrderItem.objects.create(
                order=order, contact=ann, ordered_at=order.ordered_at, product=mug, unit_price=Decimal("9.50")
            )
            ContactTag.objects.create(contact=ann, tag=Tag.objects.create(workspace=shop, name="vip"))

        new = migrate([("contacts", "0009_workspace_on_items_and_contact_tags")])

        for model in ("OrderItem", "ContactTag"):
            rows = new.get_model("contacts", model).objects.filter(contact__workspace_id__in=[s.pk for s in shops])
            assert sorted(rows.values_list("workspace_id", "contact__workspace_id")) == [
                (shop.pk, shop.pk) for shop in shops
            ]
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
