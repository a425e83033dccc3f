"""Every way a definition can be wrong is refused with located errors (and only those errors)."""

from __future__ import annotations

import pytest

from contacts.models import EventType
from segments_app.catalog import Catalog
from segments_app.definition import DefinitionError, parse_definition, validate_definition
from segments_app.models import Segment
from tests.factories import make_contact

from .support import ALL, attr


def orders(**fields) -> dict:
    return {"type": "orders", "measure": "count", "op": "gte", "value": 1, **fields}


def event(**fields) -> dict:
    return {"type": "event", "event": "email_open", "measure": "count", "op": "gte", "value": 1, **fields}


def deep(levels: int) -> dict:
    group = ALL(attr("country", "eq", "PL"))
    for _ in range(levels - 1):
        group = ALL(group)
    return group


def paths(workspace, definition, **kw) -> list[str]:
    return [error["path"] for error in validate_definition(definition, workspace=workspace, **kw)]


REFUSALS = [
    # shape
    ("not an object", ["all"], [""]),
    ("null", None, [""]),
    ("unknown key at the root", {"match": "all", "conditions": [], "version": 1}, ["version"]),
    ("missing match", {"conditions": []}, ["match"]),
    ("missing conditions", {"match": "all"}, ["conditions"]),
    ("wrong match", {"match": "AND", "conditions": []}, ["match"]),
    ("conditions not a list", {"match": "all", "conditions": {}}, ["conditions"]),
    ("the root is a condition", attr("country", "eq", "PL"), ["type", "field", "op", "value", "match", "conditions"]),
    (
        "empty nested group",
        ALL(attr("country", "eq", "PL"), {"match": "any", "conditions": []}),
        ["conditions[1].conditions"],
    ),
    (
        "unknown key in a nested group",
        ALL({"match": "any", "conditions": [attr("city", "is_set")], "x": 1}),
        ["conditions[0].x"],
    ),
    ("node is not an object", ALL("country = PL"), ["conditions[0]"]),
    ("node is neither group nor condition", ALL({"field": "country"}), ["conditions[0]"]),
    ("unknown condition type", ALL({"type": "cohort"}), ["conditions[0].type"]),
    ("condition type not a string", ALL({"type": 1}), ["conditions[0].type"]),
    # attribute conditions
    ("unknown field", ALL(attr("colour", "eq", "red")), ["conditions[0].field"]),
    ("unknown custom attribute", ALL(attr("attributes.nothing", "eq", "x")), ["conditions[0].field"]),
    ("missing field", ALL({"type": "attribute", "op": "eq", "value": "PL"}), ["conditions[0].field"]),
    ("missing op", ALL({"type": "attribute", "field": "country", "value": "PL"}), ["conditions[0].op"]),
    ("unknown key in a condition", ALL({**attr("country", "eq", "PL"), "negate": True}), ["conditions[0].negate"]),
    ("operator not for text", ALL(attr("country", "gt", "PL")), ["conditions[0].op"]),
    ("operator not for numbers", ALL(attr("total_spent", "contains", "1")), ["conditions[0].op"]),
    ("operator not for datetimes", ALL(attr("created_at", "eq", "2024-01-01")), ["conditions[0].op"]),
    ("operator not for choices", ALL(attr("email_status", "contains", "sub")), ["conditions[0].op"]),
    ("missing value", ALL(attr("country", "eq")), ["conditions[0].value"]),
    ("value for is_set", ALL(attr("country", "is_set", "PL")), ["conditions[0].value"]),
    ("text given a number", ALL(attr("country", "eq", 48)), ["conditions[0].value"]),
    ("in given a string", ALL(attr("country", "in", "PL")), ["conditions[0].value"]),
    ("in with an empty list", ALL(attr("country", "in", [])), ["conditions[0].value"]),
    (
        "not_in with a bad item",
        ALL(attr("country", "not_in", ["PL", 1, "DE", None])),
        ["conditions[0].value[1]", "conditions[0].value[3]"],
    ),
    ("text over 500 characters", ALL(attr("city", "contains", "x" * 501)), ["conditions[0].value"]),
    ("list over 1000 items", ALL(attr("city", "in", ["x"] * 1001)), ["conditions[0].value"]),
    ("NUL in text", ALL(attr("city", "eq", "a\x00b")), ["conditions[0].value"]),
    ("lone surrogate in text", ALL(attr("city", "eq", "a\ud800")), ["conditions[0].value"]),
    ("number given a string", ALL(attr("orders_count", "gt", "3")), ["conditions[0].value"]),
    ("number given a boolean", ALL(attr("orders_count", "eq", True)), ["conditions[0].value"]),
    ("number not finite", ALL(attr("total_spent", "gt", float("inf"))), ["conditions[0].value"]),
    ("number too large", ALL(attr("total_spent", "gt", 10**16)), ["conditions[0].value"]),
    ("number too precise", ALL(attr("total_spent", "gt", 0.1234567)), ["conditions[0].value"]),
    ("between low > high", ALL(attr("total_spent", "between", [1000, 500])), ["conditions[0].value"]),
    ("between with one number", ALL(attr("total_spent", "between", [500])), ["conditions[0].value"]),
    ("between with a string", ALL(attr("total_spent", "between", [500, "1000"])), ["conditions[0].value[1]"]),
    ("choice not among choices", ALL(attr("email_status", "eq", "Subscribed")), ["conditions[0].value"]),
    ("choice list with a stranger", ALL(attr("lifecycle_stage", "in", ["new", "vip"])), ["conditions[0].value[1]"]),
    ("datetime given a number", ALL(attr("created_at", "before", 1700000000)), ["conditions[0].value"]),
    ("impossible date", ALL(attr("created_at", "before", "2024-02-30")), ["conditions[0].value"]),
    ("not a date", ALL(attr("created_at", "after", "yesterday")), ["conditions[0].value"]),
    ("month 13", ALL(attr("created_at", "after", "2024-13-01T00:00:00Z")), ["conditions[0].value"]),
    ("offset out of range", ALL(attr("created_at", "after", "2024-01-01T00:00:00+24:00")), ["conditions[0].value"]),
    ("ago of 0", ALL(attr("created_at", "before", {"ago": 0, "unit": "days"})), ["conditions[0].value.ago"]),
    (
        "ago with an unknown unit",
        ALL(attr("created_at", "before", {"ago": 3, "unit": "years"})),
        ["conditions[0].value.unit"],
    ),
    (
        "ago with an extra key",
        ALL(attr("created_at", "before", {"ago": 3, "unit": "days", "tz": "UTC"})),
        ["conditions[0].value.tz"],
    ),
    ("in_last given an ISO date", ALL(attr("last_order_at", "in_last", "2024-01-01")), ["conditions[0].value"]),
    (
        "in_last given ago",
        ALL(attr("last_order_at", "in_last", {"ago": 3, "unit": "days"})),
        ["conditions[0].value.ago", "conditions[0].value.last"],
    ),
    (
        "in_last of a float",
        ALL(attr("last_order_at", "in_last", {"last": 1.5, "unit": "days"})),
        ["conditions[0].value.last"],
    ),
    (
        "in_last of true",
        ALL(attr("last_order_at", "in_last", {"last": True, "unit": "days"})),
        ["conditions[0].value.last"],
    ),
    (
        "in_last overflowing",
        ALL(attr("last_order_at", "not_in_last", {"last": 10**7, "unit": "days"})),
        ["conditions[0].value.last"],
    ),
    (
        "datetime between reversed",
        ALL(attr("created_at", "between", ["2024-02-01", "2024-01-01"])),
        ["conditions[0].value"],
    ),
    (
        "relative between reversed",
        ALL(attr("created_at", "between", [{"ago": 1, "unit": "days"}, {"ago": 7, "unit": "days"}])),
        ["conditions[0].value"],
    ),
    # tags
    ("tag without names", ALL({"type": "tag", "op": "has_any", "value": []}), ["conditions[0].value"]),
    ("tag names not a list", ALL({"type": "tag", "op": "has_any", "value": "vip"}), ["conditions[0].value"]),
    ("tag unknown operator", ALL({"type": "tag", "op": "has", "value": ["vip"]}), ["conditions[0].op"]),
    (
        "tag with a field",
        ALL({"type": "tag", "field": "tags", "op": "has_any", "value": ["vip"]}),
        ["conditions[0].field"],
    ),
    # orders
    ("orders unknown measure", ALL(orders(measure="median")), ["conditions[0].measure"]),
    ("orders missing measure", ALL({"type": "orders", "op": "gte", "value": 1}), ["conditions[0].measure"]),
    (
        "orders datetime op on a number measure",
        ALL(orders(op="in_last", value={"last": 3, "unit": "days"})),
        ["conditions[0].op"],
    ),
    ("orders number op on a time measure", ALL(orders(measure="last_at", op="gt", value=3)), ["conditions[0].op"]),
    (
        "orders unknown filter field",
        ALL(orders(filters=[{"field": "product.colour", "op": "eq", "value": "red"}])),
        ["conditions[0].filters[0].field"],
    ),
    (
        "orders filter with a bad value",
        ALL(orders(filters=[{"field": "total", "op": "gt", "value": "100"}])),
        ["conditions[0].filters[0].value"],
    ),
    (
        "orders filter unknown key",
        ALL(orders(filters=[{"field": "total", "op": "gt", "value": 1, "x": 0}])),
        ["conditions[0].filters[0].x"],
    ),
    ("orders filters not a list", ALL(orders(filters={"field": "total"})), ["conditions[0].filters"]),
    ("window of 0", ALL(orders(window={"last": 0, "unit": "days"})), ["conditions[0].window.last"]),
    ("window negative", ALL(orders(window={"last": -3, "unit": "days"})), ["conditions[0].window.last"]),
    ("window of a float", ALL(orders(window={"last": 6.0, "unit": "months"})), ["conditions[0].window.last"]),
    ("window unit years", ALL(orders(window={"last": 1, "unit": "years"})), ["conditions[0].window.unit"]),
    ("window without unit", ALL(orders(window={"last": 1})), ["conditions[0].window.unit"]),
    ("window from after to", ALL(orders(window={"from": "2024-02-01", "to": "2024-01-01"})), ["conditions[0].window"]),
    ("window bad from", ALL(orders(window={"from": "01/02/2024"})), ["conditions[0].window.from"]),
    (
        "window mixing kinds",
        ALL(orders(window={"last": 1, "unit": "days", "from": "2024-01-01"})),
        ["conditions[0].window.from"],
    ),
    ("window of neither kind", ALL(orders(window={"to": "2024-01-01"})), ["conditions[0].window"]),
    # events
    ("unknown event type", ALL(event(event="email_opened")), ["conditions[0].event"]),
    ("missing event", ALL({"type": "event", "measure": "count", "op": "gte", "value": 1}), ["conditions[0].event"]),
    ("event measure not allowed", ALL(event(measure="sum")), ["conditions[0].measure"]),
    (
        "event filter unknown field",
        ALL(event(filters=[{"field": "browser", "op": "eq", "value": "x"}])),
        ["conditions[0].filters[0].field"],
    ),
    (
        "event device not a choice",
        ALL(event(filters=[{"field": "device", "op": "eq", "value": "phone"}])),
        ["conditions[0].filters[0].value"],
    ),
    (
        "event property with an object",
        ALL(event(filters=[{"field": "properties.plan", "op": "eq", "value": {"a": 1}}])),
        ["conditions[0].filters[0].value"],
    ),
    (
        "event property mixed list",
        ALL(event(filters=[{"field": "properties.plan", "op": "in", "value": ["a", 1]}])),
        ["conditions[0].filters[0].value[1]"],
    ),
    (
        "event property gt given text",
        ALL(event(filters=[{"field": "properties.amount", "op": "gt", "value": "10"}])),
        ["conditions[0].filters[0].value"],
    ),
    (
        "event property contains a number",
        ALL(event(filters=[{"field": "properties.plan", "op": "contains", "value": 1}])),
        ["conditions[0].filters[0].value"],
    ),
    # segments
    ("segment id not a number", ALL({"type": "segment", "op": "in", "segment": "7"}), ["conditions[0].segment"]),
    ("segment id a boolean", ALL({"type": "segment", "op": "in", "segment": True}), ["conditions[0].segment"]),
    ("segment id zero", ALL({"type": "segment", "op": "in", "segment": 0}), ["conditions[0].segment"]),
    ("segment that does not exist", ALL({"type": "segment", "op": "in", "segment": 999999}), ["conditions[0].segment"]),
    (
        "segment unknown operator",
        ALL({"type": "segment", "op": "is", "segment": 999999}),
        ["conditions[0].op", "conditions[0].segment"],
    ),
    # limits
    (
        "seven levels of groups",
        deep(7),
        ["conditions[0].conditions[0].conditions[0].conditions[0].conditions[0].conditions[0]"],
    ),
    ("101 conditions", ALL(*[attr("city", "is_set")] * 101), ["conditions[100]"]),
]


@pytest.mark.parametrize(
    ("definition", "expected"), [case[1:] for case in REFUSALS], ids=[case[0] for case in REFUSALS]
)
def test_refused_with_located_errors(workspace, definition, expected):
    assert paths(workspace, definition) == expected


def test_six_levels_and_100_conditions_are_accepted(workspace):
    assert paths(workspace, deep(6)) == []
    assert paths(workspace, ALL(*[attr("city", "is_set")] * 100)) == []


def test_every_error_is_collected_in_document_order(workspace):
    definition = {
        "match": "all",
        "conditions": [
            attr("country", "eq", "PL"),
            {"type": "orders", "measure": "sum", "op": "between", "value": [500, 100]},
            {
                "match": "any",
                "conditions": [
                    attr("colour", "eq", "red"),
                    {
                        "type": "orders",
                        "measure": "count",
                        "op": "gte",
                        "value": 1,
                        "filters": [
                            {"field": "source", "op": "eq", "value": "web"},
                            {"field": "quantity", "op": "gt", "value": True},
                        ],
                    },
                ],
            },
        ],
        "limit": 10,
    }
    errors = validate_definition(definition, workspace=workspace)
    assert [e["path"] for e in errors] == [
        "limit",
        "conditions[1].value",
        "conditions[2].conditions[0].field",
        "conditions[2].conditions[1].filters[1].value",
    ]
    assert errors[1]["message"] == "between needs [low, high] with low <= high"


def test_messages_say_what_is_wrong_and_what_is_expected(workspace):
    [error] = validate_definition(ALL(attr("email_status", "eq", "gold")), workspace=workspace)
    assert "'gold' is not a choice of email_status" in error["message"]
    assert "subscribed" in error["message"]
    [error] = validate_definition(ALL(attr("country", "gt", "PL")), workspace=workspace)
    assert "'gt' is not allowed for country (text)" in error["message"]
    assert "contains" in error["message"]


def test_parse_definition_raises_with_all_errors():
    with pytest.raises(DefinitionError) as caught:
        parse_definition(ALL(attr("country", "gt", "PL"), attr("city", "eq")), catalog=Catalog(workspace_id=None))
    assert [e["path"] for e in caught.value.errors] == ["conditions[0].op", "conditions[1].value"]


def test_custom_attribute_and_event_type_known_once_the_workspace_has_them(workspace):
    definition = ALL(
        attr("attributes.plan", "eq", "gold"),
        event(event="webinar_joined"),
    )
    assert paths(workspace, definition) == ["conditions[0].field", "conditions[1].event"]
    make_contact(workspace, attributes={"plan": "gold"})
    EventType.objects.create(workspace=workspace, name="webinar_joined")
    assert paths(workspace, definition) == []


def test_declared_attribute_is_known_without_data(workspace):
    workspace.attribute_types = {"score": "number"}
    workspace.save()
    assert paths(workspace, ALL(attr("attributes.score", "gt", 3))) == []
    assert paths(workspace, ALL(attr("attributes.score", "contains", "3"))) == ["conditions[0].op"]


def test_segment_of_another_workspace_does_not_exist(workspace, other_workspace):
    foreign = Segment.objects.create(workspace=other_workspace, name="theirs", definition=ALL())
    [error] = validate_definition(ALL({"type": "segment", "op": "in", "segment": foreign.pk}), workspace=workspace)
    assert error == {"path": "conditions[0].segment", "message": f"segment {foreign.pk} does not exist"}


def test_segment_cannot_refer_to_itself(workspace):
    segment = Segment.objects.create(workspace=workspace, name="me", definition=ALL())
    [error] = validate_definition(
        ALL({"type": "segment", "op": "in", "segment": segment.pk}), workspace=workspace, segment_id=segment.pk
    )
    assert error["path"] == "conditions[0].segment"
    assert f"({segment.pk} -> {segment.pk})" in error["message"]


def test_cycle_through_another_segment_is_refused_and_named(workspace):
    a = Segment.objects.create(workspace=workspace, name="A", definition=ALL())
    b = Segment.objects.create(
        workspace=workspace, name="B", definition=ALL({"type": "segment", "op": "in", "segment": a.pk})
    )
    # Saving A so that it refers to B would close the loop A -> B -> A.
    definition = ALL(attr("city", "is_set"), {"type": "segment", "op": "not_in", "segment": b.pk})
    [error] = validate_definition(definition, workspace=workspace, segment_id=a.pk)
    assert error["path"] == "conditions[1].segment"
    assert f"({a.pk} -> {b.pk} -> {a.pk})" in error["message"]


def test_reference_to_a_segment_with_an_invalid_stored_definition(workspace):
    broken = Segment.objects.create(workspace=workspace, name="broken", definition=ALL(attr("colour", "eq", "red")))
    [error] = validate_definition(ALL({"type": "segment", "op": "in", "segment": broken.pk}), workspace=workspace)
    assert error["path"] == "conditions[0].segment"
    assert "invalid definition at conditions[0].field" in error["message"]


def test_chain_of_references_without_a_cycle_is_accepted(workspace):
    a = Segment.objects.create(workspace=workspace, name="A", definition=ALL(attr("city", "is_set")))
    b = Segment.objects.create(
        workspace=workspace, name="B", definition=ALL({"type": "segment", "op": "in", "segment": a.pk})
    )
    both = ALL({"type": "segment", "op": "in", "segment": a.pk}, {"type": "segment", "op": "not_in", "segment": b.pk})
    assert paths(workspace, both) == []


def test_null_for_an_optional_part_means_it_is_absent(workspace):
    """Clients that always send every key: null value of a value-less operator, null window, null filters."""
    orders = {"type": "orders", "measure": "count", "op": "gte", "value": 1, "window": None, "filters": None}
    definition = ALL(attr("country", "is_not_set", None), orders)

    assert paths(workspace, definition) == []
    parsed = parse_definition(definition, catalog=Catalog(workspace_id=None))
    assert parsed.as_json() == ALL(
        {"type": "attribute", "field": "country", "op": "is_not_set"},
        {"type": "orders", "measure": "count", "op": "gte", "value": 1},
    )


def test_empty_top_level_group_is_accepted(workspace):
    for match in ("all", "any", "none"):
        assert paths(workspace, {"match": match, "conditions": []}) == []


def test_segment_references_nest_at_most_20_deep(workspace):
    previous = Segment.objects.create(workspace=workspace, name="base", definition=ALL(attr("city", "is_set")))
    chain = [previous]
    for level in range(21):
        previous = Segment.objects.create(
            workspace=workspace,
            name=f"level {level}",
            definition=ALL({"type": "segment", "op": "in", "segment": previous.pk}),
        )
        chain.append(previous)
    assert paths(workspace, ALL({"type": "segment", "op": "in", "segment": chain[19].pk})) == []
    [error] = validate_definition(ALL({"type": "segment", "op": "in", "segment": chain[-1].pk}), workspace=workspace)
    assert error["path"] == "conditions[0].segment"
    assert error["message"] == f"segment {chain[-1].pk} refers to segments nested more than 20 deep"
