"""The wizard's form <-> definition translation (segments_app.builder): plain functions, no database."""

from __future__ import annotations

import pytest
from django.http import QueryDict

from segments_app import builder
from segments_app.builder import BuilderActionError, apply_action, definition_from_form, normalize
from segments_app.catalog import Catalog
from segments_app.definition import parse_definition
from tests.web.formdata import builder_form

CATALOG = Catalog(workspace_id=None, attribute_types={"plan": "choice"}, attribute_choices={"plan": ["pro"]})

SPEC_EXAMPLES = [
    {"match": "all", "conditions": [
        {"type": "orders", "filters": [{"field": "product.producer", "op": "eq", "value": "Acme"}],
         "window": {"last": 6, "unit": "months"}, "measure": "sum", "op": "gt", "value": 300}]},
    {"match": "all", "conditions": [{"type": "orders", "measure": "sum", "op": "between", "value": [500, 1000]}]},
    {"match": "all", "conditions": [
        {"type": "orders", "measure": "count", "op": "gte", "value": 1},
        {"type": "orders", "filters": [{"field": "source", "op": "not_in", "value": ["paid_search", "paid_social"]}],
         "measure": "count", "op": "eq", "value": 0}]},
    {"match": "all", "conditions": [
        {"type": "event", "event": "email_open", "window": {"last": 7, "unit": "days"},
         "measure": "count", "op": "gte", "value": 1},
        {"type": "attribute", "field": "email_status", "op": "eq", "value": "subscribed"},
        {"match": "any", "conditions": [
            {"type": "attribute", "field": "country", "op": "eq", "value": "PL"},
            {"type": "tag", "op": "has_any", "value": ["vip"]}]}]},
    {"match": "all", "conditions": [
        {"type": "attribute", "field": "orders_count", "op": "gte", "value": 3},
        {"type": "attribute", "field": "last_order_at", "op": "not_in_last", "value": {"last": 90, "unit": "days"}}]},
    {"match": "none", "conditions": [
        {"type": "attribute", "field": "created_at", "op": "between",
         "value": ["2024-01-01", {"ago": 2, "unit": "weeks"}]},
        {"type": "attribute", "field": "birth_date", "op": "before", "value": "1990-05-17T10:30"},
        {"type": "attribute", "field": "email", "op": "is_set"},
        {"type": "attribute", "field": "lifecycle_stage", "op": "in", "value": ["new", "active"]},
        {"type": "attribute", "field": "attributes.plan", "op": "in", "value": ["pro", "team"]},
        {"type": "event", "event": "any", "filters": [
            {"field": "device", "op": "eq", "value": "mobile"},
            {"field": "properties.price", "op": "between", "value": [10, 20.5]},
            {"field": "properties.color", "op": "eq", "value": "red"}],
         "window": {"from": "2024-01-01T00:00:00Z", "to": "2024-02-01T00:00:00Z"}, "measure": "last_at",
         "op": "in_last", "value": {"last": 3, "unit": "months"}}]},
]


def form_of(definition: dict) -> QueryDict:
    """The form the builder page renders for a definition, as the browser would post it."""
    return builder_form(definition, catalog=CATALOG)


@pytest.mark.parametrize("definition", SPEC_EXAMPLES)
def test_a_rendered_definition_posts_back_unchanged(definition):
    parse_definition(definition, catalog=CATALOG)  # the examples themselves are valid
    assert definition_from_form(form_of(definition), catalog=CATALOG) == _canonical(definition)


def _canonical(definition: dict) -> dict:
    # A fixed window's end typed as a date means the end of that day; spec examples use midnight, which the
    # date input shows as that day: the form then posts the day's end. Everything else comes back as is.
    import copy
    import json

    text = json.dumps(definition).replace('"to": "2024-02-01T00:00:00Z"', '"to": "2024-02-01T23:59:59.999999Z"')
    text = text.replace('"from": "2024-01-01T00:00:00Z"', '"from": "2024-01-01"')
    return copy.deepcopy(json.loads(text))


def test_empty_inputs_are_missing_values_so_the_validator_asks_for_them():
    form = QueryDict("match=all&conditions[0].type=attribute&conditions[0].field=total_spent"
                     "&conditions[0].op=gte&conditions[0].value=")
    definition = definition_from_form(form, catalog=CATALOG)
    assert definition["conditions"][0] == {"type": "attribute", "field": "total_spent", "op": "gte"}


def test_numbers_are_typed_and_non_numbers_left_for_the_validator():
    form = QueryDict("conditions[0].type=orders&conditions[0].measure=sum&conditions[0].op=between"
                     "&conditions[0].value[0]=12.5&conditions[0].value[1]=1,000")
    assert definition_from_form(form, catalog=CATALOG)["conditions"][0]["value"] == [12.5, "1,000"]


def test_changing_the_field_to_another_type_resets_operator_and_value():
    draft = {"match": "all", "conditions": [{"type": "attribute", "field": "email_status", "op": "in",
                                              "value": ["subscribed"]}]}
    draft["conditions"][0]["field"] = "total_spent"
    assert normalize(draft, catalog=CATALOG)["conditions"][0] == {
        "type": "attribute", "field": "total_spent", "op": "gte"}


def test_changing_eq_to_in_keeps_the_typed_value_as_a_list():
    draft = {"match": "all", "conditions": [{"type": "attribute", "field": "country", "op": "in", "value": "PL"}]}
    assert normalize(draft, catalog=CATALOG)["conditions"][0]["value"] == ["PL"]


def test_a_choice_value_of_another_field_is_dropped_for_the_first_choice():
    draft = {"match": "all", "conditions": [{"type": "attribute", "field": "loyalty_tier", "op": "eq",
                                              "value": "subscribed"}]}
    assert normalize(draft, catalog=CATALOG)["conditions"][0]["value"] == "none"


def test_a_measure_change_to_a_time_gives_time_operators():
    draft = {"match": "all", "conditions": [{"type": "orders", "measure": "last_at", "op": "gte", "value": 3}]}
    assert normalize(draft, catalog=CATALOG)["conditions"][0] == {
        "type": "orders", "measure": "last_at", "op": "in_last", "value": {"last": 30, "unit": "days"}}


def test_add_remove_move_wrap_unwrap():
    d = {"match": "all", "conditions": []}
    d = apply_action(d, "add", "", "attribute:country", catalog=CATALOG)
    d = apply_action(d, "add", "", "group", catalog=CATALOG)
    d = apply_action(d, "add", "conditions[1]", "orders", catalog=CATALOG)
    d = apply_action(d, "add", "conditions[1]", "tag", catalog=CATALOG)
    assert d == {"match": "all", "conditions": [
        {"type": "attribute", "field": "country", "op": "eq"},
        {"match": "any", "conditions": [
            {"type": "orders", "measure": "count", "op": "gte", "value": 1},
            {"type": "tag", "op": "has_any", "value": []}]}]}
    moved = apply_action(d, "move_up", "conditions[1].conditions[1]", catalog=CATALOG)
    assert [n["type"] for n in moved["conditions"][1]["conditions"]] == ["tag", "orders"]
    assert apply_action(d, "move_up", "conditions[0]", catalog=CATALOG) == d  # already first: unchanged
    wrapped = apply_action(d, "wrap", "conditions[0]", catalog=CATALOG)
    assert wrapped["conditions"][0] == {"match": "any", "conditions": [d["conditions"][0]]}
    unwrapped = apply_action(d, "unwrap", "conditions[1]", catalog=CATALOG)
    assert [n.get("type") for n in unwrapped["conditions"]] == ["attribute", "orders", "tag"]
    removed = apply_action(d, "remove", "conditions[1].conditions[0]", catalog=CATALOG)
    assert removed["conditions"][1]["conditions"] == [{"type": "tag", "op": "has_any", "value": []}]
    assert d["conditions"][1]["conditions"][0]["type"] == "orders"  # the input is never changed


def test_filters_and_list_items():
    d = {"match": "all", "conditions": [{"type": "orders", "measure": "count", "op": "gte", "value": 1}]}
    d = apply_action(d, "add_filter", "conditions[0]", catalog=CATALOG)
    assert d["conditions"][0]["filters"] == [{"field": "source", "op": "eq"}]
    d = apply_action(d, "add_item", "conditions[0].filters[0].value", catalog=CATALOG)
    assert d["conditions"][0]["filters"][0]["value"] == [""]
    d = apply_action(d, "remove", "conditions[0].filters[0]", catalog=CATALOG)
    assert d["conditions"][0]["filters"] == []


@pytest.mark.parametrize("action,target,argument", [
    ("explode", "", ""),
    ("remove", "conditions[5]", ""),
    ("add", "conditions[0]", "tag"),  # a condition, not a group
    ("add", "", "attribute:no_such_field"),
    ("add", "", "nonsense"),
    ("remove", "conditions[0]]]", ""),
])
def test_actions_that_do_not_apply_are_refused(action, target, argument):
    d = {"match": "all", "conditions": [{"type": "tag", "op": "has_any", "value": ["a"]}]}
    with pytest.raises(BuilderActionError):
        apply_action(d, action, target, argument, catalog=CATALOG)


def test_groups_do_not_nest_deeper_than_the_limit():
    d = {"match": "all", "conditions": []}
    path = ""
    for _ in range(5):
        d = apply_action(d, "add", path, "group", catalog=CATALOG)
        path = builder.join(builder.join(path, "conditions"), 0)
    with pytest.raises(BuilderActionError):
        apply_action(d, "add", path, "group", catalog=CATALOG)


def test_errors_land_on_the_condition_they_belong_to_in_words():
    errors = [
        {"path": "conditions[1].conditions[0].filters[0].value", "message": "expected a number, got a string"},
        {"path": "conditions[0].value[1]", "message": "expected a number"},
        {"path": "conditions[2]", "message": "unknown key"},
        {"path": "match", "message": "bad match"},
    ]
    assert builder.errors_by_node(errors) == {
        "conditions[1].conditions[0]": ["Filter 1, value: expected a number, got a string"],
        "conditions[0]": ["Second value: expected a number"],
        "conditions[2]": ["unknown key"],
        "": ["Match: bad match"],
    }


def test_node_paths_list_every_error_slot():
    d = SPEC_EXAMPLES[3]
    assert builder.node_paths(d) == ["", "conditions[0]", "conditions[1]", "conditions[2]",
                                     "conditions[2].conditions[0]", "conditions[2].conditions[1]"]
