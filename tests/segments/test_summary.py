"""Plain-language summaries: every example of the contract and every template, word for word."""

from __future__ import annotations

import pytest

from segments_app.catalog import Catalog
from segments_app.definition import parse_definition
from segments_app.models import Segment
from segments_app.summary import summarize
from segments_app.templates_library import templates
from tests.factories import make_contact

from .support import ALL, ANY, NONE, attr

CATALOG = Catalog(workspace_id=1, attribute_types={"plan": "choice", "vip": "boolean"}, custom_event_types=["webinar"])


class _Named:
    """Referenced segments exist (an empty rule) for parsing without a database."""

    def __init__(self) -> None:
        self.parsed = {}

    def stored_definition(self, segment_id):
        return ALL()


def say(definition, **kwargs) -> str:
    group = parse_definition(definition, catalog=CATALOG, segments=_Named())
    return summarize(group, catalog=CATALOG, **kwargs)


UP_SELL = {
    "type": "orders",
    "filters": [{"field": "product.producer", "op": "eq", "value": "Acme"}],
    "window": {"last": 6, "unit": "months"},
    "measure": "sum",
    "op": "gt",
    "value": 300,
}
OPENED_7_DAYS = {
    "type": "event",
    "event": "email_open",
    "window": {"last": 7, "unit": "days"},
    "measure": "count",
    "op": "gte",
    "value": 1,
}

CONTRACT_EXAMPLES = [
    (ALL(UP_SELL), "Contacts who bought Acme products for over 300 EUR in the last 6 months"),
    (
        ALL({"type": "orders", "measure": "sum", "op": "between", "value": [500, 1000]}),
        "Contacts who spent between 500 and 1000 EUR",
    ),
    (
        ALL(
            {"type": "orders", "measure": "count", "op": "gte", "value": 1},
            {
                "type": "orders",
                "filters": [{"field": "source", "op": "not_in", "value": ["paid_search", "paid_social"]}],
                "measure": "count",
                "op": "eq",
                "value": 0,
            },
        ),
        'Contacts who placed at least 1 order and placed no orders whose source is none of "paid_search", '
        '"paid_social"',
    ),
    (
        ALL(
            {
                "type": "orders",
                "filters": [{"field": "product.sku", "op": "eq", "value": "SKU-1"}],
                "window": {"last": 1, "unit": "months"},
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
        "Contacts who bought SKU-1 in the last month and never bought SKU-2 or SKU-3",
    ),
    (
        ALL(
            OPENED_7_DAYS,
            attr("email_status", "eq", "subscribed"),
            ANY(attr("country", "eq", "PL"), {"type": "tag", "op": "has_any", "value": ["vip"]}),
        ),
        "Contacts who opened an email in the last 7 days and whose email status is subscribed and "
        '(whose country is "PL" or who are tagged vip)',
    ),
    (
        ALL(attr("orders_count", "gte", 3), attr("last_order_at", "not_in_last", {"last": 90, "unit": "days"})),
        "Contacts whose number of orders is at least 3 and whose last order is more than 90 days ago or missing",
    ),
    (
        ALL(attr("cart_open_since", "in_last", {"last": 48, "unit": "hours"})),
        "Contacts whose first cart add since the last order is in the last 48 hours",
    ),
    (
        ALL(attr("preferred_device", "eq", "mobile_only"), {"type": "segment", "op": "not_in", "segment": 7}),
        'Contacts whose preferred device is mobile_only and who are not in segment "Newsletter readers"',
    ),
]


@pytest.mark.parametrize("definition, expected", CONTRACT_EXAMPLES)
def test_every_contract_example(definition, expected):
    assert say(definition, segment_names={7: "Newsletter readers"}) == expected


def test_the_issues_own_example():
    assert (
        say(ALL(UP_SELL, OPENED_7_DAYS))
        == "Contacts who bought Acme products for over 300 EUR in the last 6 months and opened an email in the "
        "last 7 days"
    )


TEMPLATE_SUMMARIES = {
    "producer_upsell": "Contacts who bought Acme products for over 300 EUR in the last 6 months",
    "spent_100_plus": "Contacts whose total spending is at least 100 EUR",
    "spent_500_plus": "Contacts whose total spending is at least 500 EUR",
    "spent_1000_plus": "Contacts whose total spending is at least 1000 EUR",
    "paid_source_only": "Contacts who placed at least 1 order and placed no orders whose source is none of "
    '"paid_search", "paid_social"',
    "cross_sell_accessories": "Contacts who bought SKU-1 in the last month and never bought SKU-2 or SKU-3",
    "lifecycle_new": "Contacts whose lifecycle stage is new",
    "lifecycle_active": "Contacts whose lifecycle stage is active",
    "lifecycle_inactive": "Contacts whose lifecycle stage is inactive",
    "lifecycle_churned": "Contacts whose lifecycle stage is churned",
    "lifecycle_returning": "Contacts whose lifecycle stage is returning",
    "high_value": "Contacts whose RFM monetary score is 5",
    "frequent_buyers": "Contacts who placed at least 3 orders in the last 6 months",
    "one_time_buyers": "Contacts whose number of orders is 1",
    "repeat_buyers": "Contacts whose number of orders is at least 2",
    "loyal_gone_quiet": "Contacts whose number of orders is at least 3 and whose last order is more than 90 days "
    "ago or missing",
    "product_affinity_accessories": "Contacts who bought Accessories products in at least 2 orders in the last "
    "12 months",
    "cart_abandoners_48h": "Contacts whose first cart add since the last order is in the last 48 hours",
    "recent_visitors": "Contacts who viewed a page in the last 7 days",
    "inactive_30_days": "Contacts whose last activity is more than 30 days ago or missing",
    "inactive_90_days": "Contacts whose last activity is more than 90 days ago or missing",
    "engaged_openers_7d": "Contacts who opened an email in the last 7 days and whose email status is subscribed",
    "mobile_only_shoppers": "Contacts whose preferred device is mobile_only and whose number of orders is at least 1",
    "desktop_only_shoppers": "Contacts whose preferred device is desktop_only and whose number of orders is at least 1",
    "cross_platform_shoppers": "Contacts whose preferred device is cross_platform and whose number of orders is "
    "at least 1",
    "tier_bronze": "Contacts whose loyalty tier is bronze",
    "tier_silver": "Contacts whose loyalty tier is silver",
    "tier_gold": "Contacts whose loyalty tier is gold",
    "rfm_champions": "Contacts whose RFM segment is champions",
    "rfm_at_risk": "Contacts whose RFM segment is at_risk",
}


def test_every_template_has_a_summary_here():
    assert {t["key"] for t in templates()} == set(TEMPLATE_SUMMARIES)


@pytest.mark.parametrize("template", templates(), ids=lambda t: t["key"])
def test_every_template(template):
    assert say(template["definition"]) == TEMPLATE_SUMMARIES[template["key"]]


@pytest.mark.parametrize(
    "definition, expected",
    [
        (ALL(), "All contacts"),
        (
            ANY(attr("country", "eq", "PL"), attr("country", "in", ["DE", "AT"])),
            'Contacts whose country is "PL" or whose country is one of "DE", "AT"',
        ),
        (
            NONE(attr("city", "contains", "ków"), {"type": "tag", "op": "has_all", "value": ["vip", "b2b"]}),
            'Contacts matching none of: (whose city contains "ków"; who are tagged vip and b2b)',
        ),
        (
            ALL(attr("email", "ends_with", "@example.com"), NONE(attr("country", "is_not_set"))),
            'Contacts whose email ends with "@example.com" and none of: (whose country is missing)',
        ),
        (
            ALL(
                {"type": "tag", "op": "has_none", "value": ["vip", "b2b"]},
                {"type": "tag", "op": "has_none", "value": ["test"]},
            ),
            "Contacts who have none of the tags vip, b2b and are not tagged test",
        ),
        (
            ALL(attr("attributes.plan", "ne", "free"), attr("attributes.vip", "is_false")),
            "Contacts whose plan is not free and whose vip is not true",
        ),
        (
            ALL(attr("created_at", "between", ["2024-01-01", {"ago": 1, "unit": "weeks"}])),
            "Contacts whose creation time is between 2024-01-01 and 1 week ago",
        ),
        (
            ALL(attr("birth_date", "before", "1990-06-01T12:30:00Z")),
            "Contacts whose birth date is before 1990-06-01 12:30 UTC",
        ),
        (
            ALL({**OPENED_7_DAYS, "op": "eq", "value": 0}),
            "Contacts who did not open an email in the last 7 days",
        ),
        (
            ALL({"type": "event", "event": "cart_add", "measure": "count", "op": "eq", "value": 0}),
            "Contacts who never added to cart",
        ),
        (
            ALL(
                {
                    "type": "event",
                    "event": "page_view",
                    "filters": [
                        {"field": "device", "op": "eq", "value": "mobile"},
                        {"field": "url", "op": "contains", "value": "/sale"},
                    ],
                    "window": {"from": "2024-01-01", "to": "2024-01-31T23:59:59Z"},
                    "measure": "count",
                    "op": "gte",
                    "value": 3,
                }
            ),
            'Contacts who viewed a page on mobile where URL contains "/sale" at least 3 times between 2024-01-01 '
            "and 2024-01-31 23:59:59 UTC",
        ),
        (
            ALL(
                {
                    "type": "event",
                    "event": "webinar",
                    "measure": "last_at",
                    "op": "in_last",
                    "value": {"last": 1, "unit": "days"},
                }
            ),
            'Contacts whose last "webinar" event is in the last day',
        ),
        (
            ALL({"type": "orders", "window": {"from": "2024-01-01"}, "measure": "avg", "op": "gte", "value": 49.5}),
            "Contacts whose average order since 2024-01-01 is at least 49.5 EUR",
        ),
        (
            ALL(
                {
                    "type": "orders",
                    "filters": [{"field": "source", "op": "eq", "value": "email"}],
                    "measure": "sum",
                    "op": "lt",
                    "value": 10,
                }
            ),
            'Contacts who spent under 10 EUR on orders whose source is "email"',
        ),
        (
            ALL(
                {
                    "type": "orders",
                    "filters": [
                        {"field": "product.category", "op": "eq", "value": "Shoes"},
                        {"field": "quantity", "op": "gte", "value": 2},
                    ],
                    "measure": "max",
                    "op": "gt",
                    "value": 100,
                }
            ),
            'Contacts whose largest order of items whose product category is "Shoes" and whose quantity is at least '
            "2 is over 100 EUR",
        ),
        (
            ALL({"type": "orders", "measure": "first_at", "op": "is_not_set"}),
            "Contacts whose first order is missing",
        ),
        (
            ALL(
                {
                    "type": "orders",
                    "measure": "count",
                    "op": "between",
                    "value": [2, 5],
                    "window": {"last": 1, "unit": "weeks"},
                }
            ),
            "Contacts who placed between 2 and 5 orders in the last week",
        ),
    ],
)
def test_phrases(definition, expected):
    assert say(definition) == expected


def test_money_is_in_the_given_currency():
    assert (
        say(ALL(UP_SELL), currency="PLN") == "Contacts who bought Acme products for over 300 PLN in the last 6 months"
    )


def test_a_segment_without_a_known_name_is_named_by_id():
    assert say(ALL({"type": "segment", "op": "in", "segment": 12})) == "Contacts who are in segment #12"


def test_from_json_with_a_workspace_names_its_segments_and_uses_its_currency(workspace):
    workspace.currency = "PLN"
    workspace.save()
    make_contact(workspace, attributes={"plan": "pro"})
    base = Segment.objects.create(workspace=workspace, name="Big spenders", definition=ALL())
    definition = ALL({"type": "segment", "op": "in", "segment": base.pk}, attr("attributes.plan", "eq", "pro"))

    assert summarize(definition, workspace=workspace) == (
        'Contacts who are in segment "Big spenders" and whose plan is "pro"'
    )
    assert summarize(ALL(UP_SELL), workspace=workspace).endswith("over 300 PLN in the last 6 months")


def test_an_invalid_definition_is_described_by_its_first_error(workspace):
    assert summarize(ALL(attr("nope", "eq", 1)), workspace=workspace) == (
        "(invalid definition at conditions[0].field: unknown field 'nope'; expected a catalog field, or "
        "attributes.<key> for a custom attribute some contact has or the workspace declares in its attribute types)"
    )
