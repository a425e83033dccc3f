"""Ready-made segment definitions a marketer starts from (served by GET /api/v1/segments/templates/).

Each template is `{"key", "name", "description", "category", "definition"}`; the definition follows the
contract (docs/segment-definition.md) and is copied into a new segment, where it can be edited.
Definitions that depend on a shop's own data use placeholders that exist in the demo data (`seed_demo`):
producer `Acme`, products `SKU-1` (a shoe) with its accessories `SKU-2` and `SKU-3`, category
`Accessories`; their descriptions say so. Amounts are in the workspace's currency.

Where a stored computed figure says the same thing as an aggregate over all orders (total spent, number
of orders), the template uses the figure: it is indexed, so the segment stays fast on a million contacts.
Windowed conditions ("in the last 6 months") and item filters (a producer, a SKU) need the orders and
events themselves.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

USE_CASES = "Use cases"
LIFECYCLE = "Lifecycle"
VALUE = "Value and frequency"
BEHAVIOUR = "Behaviour"
DEVICES = "Devices"
LOYALTY = "Loyalty tiers"
RFM = "RFM"
CATEGORIES = (USE_CASES, LIFECYCLE, VALUE, BEHAVIOUR, DEVICES, LOYALTY, RFM)

PLACEHOLDER_NOTE = " Placeholder from the demo data: replace {what} with your own."


@dataclass(frozen=True)
class Template:
    key: str
    name: str
    description: str
    category: str
    definition: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The template as the API serves it (a fresh copy of the definition)."""
        return {
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "category": self.category,
            "definition": copy.deepcopy(self.definition),
        }


def _all(*conditions: dict) -> dict:
    return {"match": "all", "conditions": list(conditions)}


def _attr(field: str, op: str, value: Any = None) -> dict:
    condition = {"type": "attribute", "field": field, "op": op}
    if value is not None:
        condition["value"] = value
    return condition


def _last(amount: int, unit: str) -> dict:
    return {"last": amount, "unit": unit}


def _has_ordered() -> dict:
    return _attr("orders_count", "gte", 1)


def _spent_at_least(amount: int) -> Template:
    return Template(
        key=f"spent_{amount}_plus",
        name=f"Spent {amount} or more",
        description=f"Customers whose orders add up to at least {amount} over all time (total spent, in the "
        "workspace currency): a spending threshold for a reward or a loyalty message.",
        category=USE_CASES,
        definition=_all(_attr("total_spent", "gte", amount)),
    )


def _lifecycle(stage: str, name: str, description: str) -> Template:
    return Template(
        key=f"lifecycle_{stage}",
        name=name,
        description=description + " (the computed lifecycle stage; the day counts shown are the defaults of the "
        "workspace settings).",
        category=LIFECYCLE,
        definition=_all(_attr("lifecycle_stage", "eq", stage)),
    )


def _device_shoppers(device: str, name: str, description: str) -> Template:
    return Template(
        key=f"{device}_shoppers",
        name=name,
        description=description,
        category=DEVICES,
        definition=_all(_attr("preferred_device", "eq", device), _has_ordered()),
    )


def _tier(tier: str, description: str) -> Template:
    return Template(
        key=f"tier_{tier}",
        name=f"{tier.capitalize()} tier",
        description=description + " Tier thresholds are workspace settings (by total spent).",
        category=LOYALTY,
        definition=_all(_attr("loyalty_tier", "eq", tier)),
    )


TEMPLATES: tuple[Template, ...] = (
    # -- the four SALESmanago-style use cases
    Template(
        key="producer_upsell",
        name="Producer up-sell: Acme buyers",
        description="Bought products of producer Acme for over 300 in the last 6 months: ready for the "
        "producer's premium line." + PLACEHOLDER_NOTE.format(what="Acme with your producer"),
        category=USE_CASES,
        definition=_all(
            {
                "type": "orders",
                "filters": [{"field": "product.producer", "op": "eq", "value": "Acme"}],
                "window": _last(6, "months"),
                "measure": "sum",
                "op": "gt",
                "value": 300,
            }
        ),
    ),
    _spent_at_least(100),
    _spent_at_least(500),
    _spent_at_least(1000),
    Template(
        key="paid_source_only",
        name="Bought only through paid ads",
        description="Ordered at least once, and every order came from paid search or paid social: lower "
        "the cost of conversion by moving them to email.",
        category=USE_CASES,
        definition=_all(
            {"type": "orders", "measure": "count", "op": "gte", "value": 1},
            {
                "type": "orders",
                "filters": [{"field": "source", "op": "not_in", "value": ["paid_search", "paid_social"]}],
                "measure": "count",
                "op": "eq",
                "value": 0,
            },
        ),
    ),
    Template(
        key="cross_sell_accessories",
        name="Cross-sell: accessories for SKU-1",
        description="Bought SKU-1 in the last month and never bought its accessories SKU-2 or SKU-3."
        + PLACEHOLDER_NOTE.format(what="the SKUs with your product and its accessories"),
        category=USE_CASES,
        definition=_all(
            {
                "type": "orders",
                "filters": [{"field": "product.sku", "op": "eq", "value": "SKU-1"}],
                "window": _last(1, "months"),
                "measure": "count",
                "op": "gte",
                "value": 1,
            },
            {
                "type": "orders",
                "filters": [{"field": "product.sku", "op": "in", "value": ["SKU-2", "SKU-3"]}],
                "measure": "count",
                "op": "eq",
                "value": 0,
            },
        ),
    ),
    # -- lifecycle
    _lifecycle("new", "New customers", "First order in the last 30 days"),
    _lifecycle("active", "Active customers", "Last order in the last 90 days, not new and not returning"),
    _lifecycle("inactive", "Inactive customers", "Last order 90 to 365 days ago"),
    _lifecycle("churned", "Churned customers", "No order for more than 365 days"),
    _lifecycle("returning", "Returning customers", "Ordered in the last 90 days after a gap of more than 90 days"),
    # -- value and frequency
    Template(
        key="high_value",
        name="High-value customers",
        description="The top fifth of customers by money spent (RFM monetary score 5).",
        category=VALUE,
        definition=_all(_attr("rfm_monetary", "eq", 5)),
    ),
    Template(
        key="frequent_buyers",
        name="Frequent buyers",
        description="Placed at least 3 orders in the last 6 months.",
        category=VALUE,
        definition=_all({"type": "orders", "window": _last(6, "months"), "measure": "count", "op": "gte", "value": 3}),
    ),
    Template(
        key="one_time_buyers",
        name="One-time buyers",
        description="Exactly one order so far: the second order is the hard one.",
        category=VALUE,
        definition=_all(_attr("orders_count", "eq", 1)),
    ),
    Template(
        key="repeat_buyers",
        name="Repeat buyers",
        description="Two or more orders so far.",
        category=VALUE,
        definition=_all(_attr("orders_count", "gte", 2)),
    ),
    Template(
        key="loyal_gone_quiet",
        name="Loyal customers gone quiet",
        description="Three or more orders, none in the last 90 days: win them back before they churn.",
        category=VALUE,
        definition=_all(
            _attr("orders_count", "gte", 3),
            _attr("last_order_at", "not_in_last", _last(90, "days")),
        ),
    ),
    Template(
        key="product_affinity_accessories",
        name="Product affinity: Accessories",
        description="Bought from category Accessories in at least 2 orders in the last 12 months."
        + PLACEHOLDER_NOTE.format(what="Accessories with your category"),
        category=VALUE,
        definition=_all(
            {
                "type": "orders",
                "filters": [{"field": "product.category", "op": "eq", "value": "Accessories"}],
                "window": _last(12, "months"),
                "measure": "count",
                "op": "gte",
                "value": 2,
            }
        ),
    ),
    # -- behaviour
    Template(
        key="cart_abandoners_48h",
        name="Cart abandoners (48 hours)",
        description="Added to cart in the last 48 hours and have not ordered since.",
        category=BEHAVIOUR,
        definition=_all(_attr("cart_open_since", "in_last", _last(48, "hours"))),
    ),
    Template(
        key="recent_visitors",
        name="Recent visitors",
        description="Viewed a page of the shop in the last 7 days.",
        category=BEHAVIOUR,
        definition=_all(
            {
                "type": "event",
                "event": "page_view",
                "window": _last(7, "days"),
                "measure": "count",
                "op": "gte",
                "value": 1,
            }
        ),
    ),
    Template(
        key="inactive_30_days",
        name="Inactive for 30 days",
        description="No activity of any kind (no event) in the last 30 days, including contacts never seen.",
        category=BEHAVIOUR,
        definition=_all(_attr("last_seen_at", "not_in_last", _last(30, "days"))),
    ),
    Template(
        key="inactive_90_days",
        name="Inactive for 90 days",
        description="No activity of any kind (no event) in the last 90 days, including contacts never seen.",
        category=BEHAVIOUR,
        definition=_all(_attr("last_seen_at", "not_in_last", _last(90, "days"))),
    ),
    Template(
        key="engaged_openers_7d",
        name="Engaged openers (7 days)",
        description="Opened an email in the last 7 days and can still be emailed.",
        category=BEHAVIOUR,
        definition=_all(
            {
                "type": "event",
                "event": "email_open",
                "window": _last(7, "days"),
                "measure": "count",
                "op": "gte",
                "value": 1,
            },
            _attr("email_status", "eq", "subscribed"),
        ),
    ),
    # -- devices
    _device_shoppers("mobile_only", "Mobile-only shoppers", "Customers seen only on mobile devices."),
    _device_shoppers("desktop_only", "Desktop-only shoppers", "Customers seen only on desktop computers."),
    _device_shoppers("cross_platform", "Cross-platform shoppers", "Customers seen on mobile and on desktop."),
    # -- loyalty tiers
    _tier("bronze", "Customers in the bronze tier (spent something, below silver)."),
    _tier("silver", "Customers in the silver tier."),
    _tier("gold", "Customers in the gold tier."),
    # -- RFM
    Template(
        key="rfm_champions",
        name="RFM champions",
        description="Bought recently, often and for a lot (RFM segment champions).",
        category=RFM,
        definition=_all(_attr("rfm_segment", "eq", "champions")),
    ),
    Template(
        key="rfm_at_risk",
        name="RFM at risk",
        description="Used to buy often and for a lot, but not recently (RFM segment at_risk).",
        category=RFM,
        definition=_all(_attr("rfm_segment", "eq", "at_risk")),
    ),
)

_BY_KEY = {t.key: t for t in TEMPLATES}


def templates() -> list[dict[str, Any]]:
    """Every template as the API serves it, in library order (grouped by category)."""
    return [t.as_json() for t in TEMPLATES]


def get_template(key: str) -> dict[str, Any] | None:
    """One template as the API serves it, or None when there is no such key."""
    found = _BY_KEY.get(key)
    return found.as_json() if found is not None else None
