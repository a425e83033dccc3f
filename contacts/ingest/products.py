"""Upsert products by `sku`; a changed producer or category refreshes the figures of everyone who bought it."""

from __future__ import annotations

from typing import Any

from contacts.ingest import fields as f
from contacts.ingest.common import IngestResult, in_one_transaction, refresh_and_notify
from contacts.models import OrderItem, Product, Workspace

PRODUCT_SPEC: dict[str, f.Parser] = {
    "sku": f.text(100, required=True),
    "name": f.text(255),
    "producer": f.text(150),
    "category": f.text(150),
    "price": f.money(12),
}
REQUIRED = ("sku",)
UPDATABLE = ["name", "producer", "category", "price"]
# top_producer / top_category are derived from these, so changing them changes buyers' figures.
FIGURE_INPUTS = ("producer", "category")


def parse_products(records: list[Any], *, root: str = "products") -> tuple[list[tuple[int, dict]], list[dict]]:
    """Validate each record on its own: (index, values) of the good ones, located errors of the bad ones."""
    return f.parse_records(records, spec=PRODUCT_SPEC, required=REQUIRED, root=root)


def ingest_products(*, workspace: Workspace, records: list[Any]) -> IngestResult:
    """Upsert products by sku; only the fields a record names change.

    >>> ingest_products(workspace=ws, records=[{"sku": "SKU-1", "name": "Mug", "producer": "Acme", "price": 9.5}])
    IngestResult(created=1, updated=0, errors=[], contact_ids=[])
    """
    good, errors = parse_products(records)
    result = IngestResult(errors=errors)
    if good:
        in_one_transaction(lambda: write_products(workspace, [values for _, values in good], result))
    return result


def write_products(workspace: Workspace, records: list[dict], result: IngestResult) -> None:
    """Write already validated product records (also used by the Segment API for `Order Completed` products)."""
    result.created = result.updated = 0
    skus = sorted({values["sku"] for values in records})
    existing = {
        product.sku: product
        for product in Product.objects.select_for_update().filter(workspace=workspace, sku__in=skus).order_by("sku")
    }
    existing_ids = {sku: product.pk for sku, product in existing.items()}
    before = {sku: tuple(getattr(product, name) for name in FIGURE_INPUTS) for sku, product in existing.items()}
    merged: dict[str, Product] = {}
    for values in records:
        sku = values["sku"]
        product = merged.get(sku) or existing.get(sku)
        if product is None:
            product = Product(workspace=workspace, sku=sku)
            result.created += 1
        else:
            result.updated += 1
        for name in UPDATABLE:
            if name in values:
                setattr(product, name, values[name])
        merged[sku] = product

    rows = [merged[sku] for sku in sorted(merged)]
    for product in rows:
        product.pk = None
    Product.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["workspace", "sku"], update_fields=UPDATABLE
    )

    changed_ids = [
        existing_ids[sku]
        for sku, product in merged.items()
        if sku in before and before[sku] != tuple(getattr(product, name) for name in FIGURE_INPUTS)
    ]
    if changed_ids:
        buyers = set(
            # The changed products are the workspace's, so are their items; each item carries its buyer.
            OrderItem.objects.filter(product_id__in=changed_ids).values_list("contact_id", flat=True)
            .distinct()
        )
        result.contact_ids = sorted(buyers)
        refresh_and_notify(
            workspace_id=workspace.pk, contact_ids=buyers, stats_kinds=("orders",), data_kinds=("orders",)
        )
