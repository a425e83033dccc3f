"""The examples of the segment definition format (docs/segment-definition.md), as data.

Each must be accepted and mean what the documentation says; the benchmarks (`bench.segments`) and the
fresh-database plan checks (`tests/fresh_database_plans.py`) run every one of them.
"""

from __future__ import annotations


def contract_examples(referenced_id: int) -> dict[str, dict]:
    """The examples of the definition format (docs/segment-definition.md), by name; the last one refers to
    segment `referenced_id`. Benchmarks and plan checks run every one of them."""
    return {
        "contract: up-selling": {"match": "all", "conditions": [
            {"type": "orders", "filters": [{"field": "product.producer", "op": "eq", "value": "Acme"}],
             "window": {"last": 6, "unit": "months"}, "measure": "sum", "op": "gt", "value": 300}]},
        "contract: loyalty threshold": {"match": "all", "conditions": [
            {"type": "orders", "measure": "sum", "op": "between", "value": [500, 1000]}]},
        "contract: paid sources only": {"match": "all", "conditions": [
            {"type": "orders", "measure": "count", "op": "gte", "value": 1},
            {"type": "orders",
             "filters": [{"field": "source", "op": "not_in", "value": ["paid_search", "paid_social"]}],
             "measure": "count", "op": "eq", "value": 0}]},
        "contract: cross-selling": {"match": "all", "conditions": [
            {"type": "orders", "filters": [{"field": "product.sku", "op": "eq", "value": "SKU-1"}],
             "window": {"last": 1, "unit": "months"}, "measure": "count", "op": "gte", "value": 1},
            {"type": "orders", "filters": [{"field": "product.sku", "op": "in", "value": ["SKU-2", "SKU-3"]}],
             "measure": "count", "op": "eq", "value": 0}]},
        "contract: engaged and reachable": {"match": "all", "conditions": [
            {"type": "event", "event": "email_open", "window": {"last": 7, "unit": "days"},
             "measure": "count", "op": "gte", "value": 1},
            {"type": "attribute", "field": "email_status", "op": "eq", "value": "subscribed"},
            {"match": "any", "conditions": [
                {"type": "attribute", "field": "country", "op": "eq", "value": "PL"},
                {"type": "tag", "op": "has_any", "value": ["vip"]}]}]},
        "contract: at risk": {"match": "all", "conditions": [
            {"type": "attribute", "field": "orders_count", "op": "gte", "value": 3},
            {"type": "attribute", "field": "last_order_at", "op": "not_in_last",
             "value": {"last": 90, "unit": "days"}}]},
        "contract: cart abandoners 48 h": {"match": "all", "conditions": [
            {"type": "attribute", "field": "cart_open_since", "op": "in_last",
             "value": {"last": 48, "unit": "hours"}}]},
        "contract: mobile-only, not in a segment": {"match": "all", "conditions": [
            {"type": "attribute", "field": "preferred_device", "op": "eq", "value": "mobile_only"},
            {"type": "segment", "op": "not_in", "segment": referenced_id}]},
    }  # fmt: skip
