"""The field catalog: the contract's fields, their types and operators, and the workspace's own keys."""

from __future__ import annotations

from contacts.models import Contact, ContactStats, EventType
from segments_app.catalog import BUILTIN_EVENT_TYPES, CATEGORIES, OPERATORS, Catalog, build_catalog, value_widget
from tests.factories import make_contact

CONTRACT_FIELDS = {
    # Contact details
    "email": "text",
    "first_name": "text",
    "last_name": "text",
    "phone": "text",
    "country": "text",
    "city": "text",
    "gender": "text",
    "birth_date": "datetime",
    "created_at": "datetime",
    "email_status": "choice",
    "traffic_source": "choice",
    "utm_campaign": "text",
    # Computed
    "orders_count": "number",
    "total_spent": "number",
    "avg_order_value": "number",
    "first_order_at": "datetime",
    "last_order_at": "datetime",
    "last_seen_at": "datetime",
    "last_email_open_at": "datetime",
    "last_email_click_at": "datetime",
    "engagement_score": "number",
    "lifecycle_stage": "choice",
    "rfm_recency": "number",
    "rfm_frequency": "number",
    "rfm_monetary": "number",
    "rfm_segment": "choice",
    "preferred_device": "choice",
    "top_category": "text",
    "top_producer": "text",
    "cart_open_since": "datetime",
    "loyalty_tier": "choice",
}


def test_every_contract_field_with_its_type_and_operators():
    catalog = Catalog(workspace_id=None)
    assert {f.key: f.type for f in catalog.fields()} == CONTRACT_FIELDS
    for field in catalog.fields():
        assert field.operators == OPERATORS[field.type]
        assert field.category in CATEGORIES and field.label and field.widget


def test_operators_per_type_are_the_contract_table():
    assert OPERATORS["text"] == (
        "eq", "ne", "in", "not_in", "contains", "not_contains", "starts_with", "ends_with", "is_set", "is_not_set",
    )  # fmt: skip
    assert OPERATORS["number"] == ("eq", "ne", "gt", "gte", "lt", "lte", "between", "is_set", "is_not_set")
    assert OPERATORS["datetime"] == ("before", "after", "between", "in_last", "not_in_last", "is_set", "is_not_set")
    assert OPERATORS["boolean"] == ("is_true", "is_false")
    assert OPERATORS["choice"] == ("eq", "ne", "in", "not_in", "is_set", "is_not_set")


def test_choices_come_from_the_models_and_computed_fields_from_contact_stats():
    catalog = Catalog(workspace_id=None)
    assert catalog.field("email_status").choices == tuple(Contact.EmailStatus.values)
    assert catalog.field("traffic_source").choices == tuple(Contact.TrafficSource.values)
    assert catalog.field("lifecycle_stage").choices == tuple(ContactStats.Lifecycle.values)
    assert catalog.field("preferred_device").choices == ("mobile_only", "desktop_only", "cross_platform", "unknown")
    assert catalog.field("rfm_segment").choices == tuple(ContactStats.RfmSegment.values)
    assert catalog.field("loyalty_tier").choices == tuple(ContactStats.LoyaltyTier.values)
    total = catalog.field("total_spent")
    assert (total.column, total.category) == ("stats__total_spent", "Computed")
    assert catalog.field("country").category == "Contact details"


def test_order_and_event_filters():
    catalog = Catalog(workspace_id=None)
    assert [f.key for f in catalog.order_filters()] == [
        "source", "total", "currency", "ordered_at",
        "product.sku", "product.name", "product.producer", "product.category", "quantity", "unit_price",
    ]  # fmt: skip
    assert [f.key for f in catalog.event_filters()] == ["device", "url", "campaign"]
    assert catalog.event_filter("device").choices == ("mobile", "desktop", "tablet", "other")
    assert catalog.event_filter("properties.plan").type == "property"
    assert catalog.event_filter("properties.") is None


def test_custom_attribute_types_are_inferred_from_the_data(workspace):
    make_contact(workspace, attributes={"score": 3, "beta": True, "plan": "gold", "mixed": 1, "blank": None})
    make_contact(workspace, attributes={"score": 4.5, "beta": "", "plan": None, "mixed": "one", "blank": ""})
    catalog = build_catalog(workspace)
    types = {f.key: f.type for f in catalog.fields() if f.key.startswith("attributes.")}
    assert types == {
        "attributes.beta": "boolean",
        "attributes.blank": "text",
        "attributes.mixed": "text",
        "attributes.plan": "text",
        "attributes.score": "number",
    }
    assert catalog.field("attributes.score").category == "Contact details"


def test_declared_types_win_and_unsafe_keys_are_not_offered(workspace):
    workspace.attribute_types = {"score": "text", "tier": "choice", "odd": "colour"}
    workspace.save()
    make_contact(workspace, attributes={"score": 3, "tier": "gold", 'say "hi"': 1, "odd": 2})
    make_contact(workspace, attributes={"tier": "silver"})
    catalog = build_catalog(workspace)
    assert catalog.field("attributes.score").type == "text"
    assert catalog.field("attributes.tier").type == "choice"
    assert catalog.field("attributes.tier").choices == ("gold", "silver")
    assert catalog.field("attributes.odd").type == "number"  # an unknown declared type is ignored
    assert catalog.field('attributes.say "hi"') is None


def test_attributes_of_other_workspaces_are_not_offered(workspace, other_workspace):
    make_contact(other_workspace, attributes={"secret": 1})
    assert build_catalog(workspace).field("attributes.secret") is None


def test_event_types_are_the_builtins_and_those_received(workspace, other_workspace):
    EventType.objects.create(workspace=workspace, name="webinar")
    EventType.objects.create(workspace=other_workspace, name="theirs")
    catalog = build_catalog(workspace)
    assert catalog.event_types() == [*BUILTIN_EVENT_TYPES, "webinar"]
    assert catalog.is_event_type("any") and catalog.is_event_type("webinar")
    assert not catalog.is_event_type("theirs")


def test_widgets_and_json_for_the_wizard():
    assert value_widget("number", "between") == "number_range"
    assert value_widget("datetime", "in_last") == "relative_span"
    assert value_widget("choice", "in") == "choice_list"
    assert value_widget("text", "is_set") == "none"
    data = Catalog(workspace_id=None).as_json()
    assert {k["type"] for k in data["conditions"]} == {"tag", "orders", "event", "segment"}
    assert data["fields"][0] == {
        "key": "email",
        "label": "Email",
        "category": "Contact details",
        "type": "text",
        "operators": list(OPERATORS["text"]),
        "choices": [],
        "widget": "text",
        "description": "",
    }


def test_a_lazy_catalog_types_keys_on_first_use(workspace):
    workspace.attribute_types = {"tier": "choice"}
    workspace.save()
    make_contact(workspace, attributes={"score": 3, "plan": "gold", "flag": False, "nothing": None})
    make_contact(workspace, attributes={"score": "", "flag": True})
    catalog = build_catalog(workspace, discover_attributes=False)
    assert [f.key for f in catalog.fields() if f.key.startswith("attributes.")] == ["attributes.tier"]
    assert catalog.field("attributes.score").type == "number"
    assert catalog.field("attributes.plan").type == "text"
    assert catalog.field("attributes.flag").type == "boolean"
    assert catalog.field("attributes.nothing").type == "text"
    assert catalog.field("attributes.missing") is None
    assert catalog.field('attributes.a"b') is None
