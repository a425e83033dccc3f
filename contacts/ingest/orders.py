"""Upsert orders by `external_id`: an order record replaces the stored order, items included."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pycountry

from contacts.ingest import fastpath
from contacts.ingest import fields as f
from contacts.ingest.common import (
    IngestResult,
    contact_ids_by_external_id,
    in_one_transaction,
    refresh_and_notify,
)
from contacts.models import Product, Workspace

CURRENCY_CODES: frozenset[str] = frozenset(currency.alpha_3 for currency in pycountry.currencies)
MAX_ITEMS = 1000
TOTAL_LIMIT = Decimal(10) ** 12  # Order.total has 14 digits, 2 of them after the point


def currency(value: Any) -> str | None:
    """ISO 4217, any case in, upper case out; null means the workspace's currency."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise f.FieldError("must be a string")
    code = value.strip().upper()
    if code not in CURRENCY_CODES:
        raise f.FieldError("must be an ISO 4217 currency code, e.g. EUR")
    return code


ITEM_SPEC: dict[str, f.Parser] = {
    "sku": f.text(100, required=True),
    "quantity": f.positive_int,
    "unit_price": f.money(12, required=True),
}
ITEM_REQUIRED = ("sku", "unit_price")


def items(value: Any) -> list[dict]:
    """The order's line items; every bad item is reported, each at its own path."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise f.FieldError("must be a list of items")
    if len(value) > MAX_ITEMS:
        raise f.FieldError(f"must have at most {MAX_ITEMS} items")
    parsed: list[dict] = []
    problems: list[tuple[str, str]] = []
    for index, raw in enumerate(value):
        item, item_errors = f.parse_record(raw, spec=ITEM_SPEC, required=ITEM_REQUIRED, path=f"[{index}]", index=index)
        if item is None:
            problems.extend((error["message"], error["path"]) for error in item_errors)
        else:
            item.setdefault("quantity", 1)
            parsed.append(item)
    if problems:
        raise f.FieldError(problems[0][0], problems[0][1], problems=problems)
    return parsed


ORDER_SPEC: dict[str, f.Parser] = {
    "external_id": f.text(255, required=True),
    "contact": f.text(255, required=True),
    "ordered_at": f.past_datetime,
    "source": f.text(50),
    "currency": currency,
    "items": items,
    "total": f.money(14),
}
REQUIRED = ("external_id", "contact", "ordered_at")


def parse_orders(records: list[Any], *, root: str = "orders") -> tuple[list[tuple[int, dict]], list[dict]]:
    """Validate each order on its own; the default total (sum of quantity * unit_price) is filled in here,
    and a time a little ahead of the server's clock becomes the moment of receipt (`ordered_at_sent` keeps
    the time as sent)."""
    received_at = datetime.now(UTC)
    good, errors = f.parse_records(records, spec=ORDER_SPEC, required=REQUIRED, root=root)
    checked: list[tuple[int, dict]] = []
    for index, values in good:
        if values["ordered_at"] > received_at:
            values["ordered_at_sent"] = values["ordered_at"]
            values["ordered_at"] = f.not_after(values["ordered_at"], received_at)
        values.setdefault("items", [])
        if values.get("total") is None:
            total = sum((item["quantity"] * item["unit_price"] for item in values["items"]), Decimal("0.00"))
            if total >= TOTAL_LIMIT:
                errors.append(
                    {"index": index, "path": f"{root}[{index}].items", "message": "the items add up to too much"}
                )
                continue
            values["total"] = total
        checked.append((index, values))
    errors.sort(key=lambda error: error["index"])
    return checked, errors


def ingest_orders(*, workspace: Workspace, records: list[Any]) -> IngestResult:
    """Upsert orders by external_id. Unknown contacts and SKUs are created bare; items are replaced.

    >>> ingest_orders(workspace=ws, records=[{"external_id": "o-1", "contact": "u1", "ordered_at": "2024-05-01",
    ...     "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": "9.50"}]}])
    IngestResult(created=1, updated=0, errors=[], contact_ids=[...])   # total 19.00, currency the workspace's
    """
    good, errors = parse_orders(records)
    result = IngestResult(errors=errors)
    if good:
        in_one_transaction(lambda: write_orders(workspace, [values for _, values in good], result))
    return result


def write_orders(workspace: Workspace, records: list[dict], result: IngestResult) -> None:
    """Write already validated order records (also used by the Segment API for `Order Completed`)."""
    result.created = result.updated = 0
    latest: dict[str, dict] = {}
    for values in records:
        if values["external_id"] in latest:
            result.updated += 1  # a repeat within the call: the last one wins
        latest[values["external_id"]] = values
    external_ids = sorted(latest)

    contact_ids, new_contact_ids = contact_ids_by_external_id(
        workspace=workspace, external_ids=(values["contact"] for values in latest.values()), create_missing=True
    )
    product_ids = _product_ids(workspace, {item["sku"] for values in latest.values() for item in values["items"]})
    # Locked so that a concurrent upsert of the same order cannot leave us refreshing a stale contact.
    previous = fastpath.lock_orders(workspace=workspace, external_ids=external_ids)
    result.updated += len(previous)
    result.created += len(latest) - len(previous)
    for external_id, (_, _, stored_at) in previous.items():
        _keep_time_of_receipt(latest[external_id], stored_at)

    order_ids = fastpath.upsert_orders(
        workspace=workspace,
        rows=[
            (
                external_id,
                contact_ids[latest[external_id]["contact"]],
                latest[external_id]["ordered_at"],
                latest[external_id].get("source"),
                latest[external_id].get("currency") or workspace.currency,
                latest[external_id]["total"],
            )
            for external_id in external_ids
        ],
    )
    # Every order of the call, not only the ones seen before: a concurrent call may have just created one.
    # Replacing (never keeping) an upserted order's items is also what keeps their copies of the order's
    # contact and time current when an upsert moves the order or changes its time.
    fastpath.replace_items(
        workspace=workspace,
        order_ids=order_ids.values(),
        rows=[
            (
                order_ids[external_id],
                contact_ids[latest[external_id]["contact"]],
                latest[external_id]["ordered_at"],
                product_ids[item["sku"]],
                item["quantity"],
                item["unit_price"],
            )
            for external_id in external_ids
            for item in latest[external_id]["items"]
        ],
    )

    # An order that moved to another contact changes both contacts' figures.
    affected = {contact_ids[values["contact"]] for values in latest.values()}
    affected |= {contact_id for _, contact_id, _ in previous.values()}
    result.contact_ids = sorted(affected)
    data_kinds = {"orders", "contact"} if new_contact_ids else {"orders"}
    refresh_and_notify(workspace_id=workspace.pk, contact_ids=affected, stats_kinds=("orders",), data_kinds=data_kinds)


def _keep_time_of_receipt(values: dict, stored_at: datetime) -> None:
    """A repeat of an order that was dated ahead of the clock keeps the time it was stored at (the moment
    the first copy was received), so that sending the same record again changes nothing."""
    sent = values.get("ordered_at_sent")
    if sent is not None and sent - f.MAX_CLOCK_AHEAD <= stored_at <= sent:
        values["ordered_at"] = stored_at


def _product_ids(workspace: Workspace, skus: set[str]) -> dict[str, int]:
    """Map SKUs to product ids, creating bare products for unknown SKUs."""
    wanted = sorted(skus)
    found = fastpath.ids_by_key(Product, workspace=workspace, key="sku", values=wanted)
    missing = [sku for sku in wanted if sku not in found]
    if missing:
        fastpath.create_bare(Product, workspace=workspace, key="sku", values=missing)
        found.update(fastpath.ids_by_key(Product, workspace=workspace, key="sku", values=missing))
    return found
