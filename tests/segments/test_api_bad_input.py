"""Every way a definition can be wrong answers 400 with located errors, on preview and on create alike.

Nothing is ever dropped or simplified: an unknown key, an extra value or a wrong type is refused, not
ignored, and a refused create saves nothing.
"""

from __future__ import annotations

import pytest

from segments_app.models import Segment

from .support import ALL, ANY, attr

ORDERS_SUM = {"type": "orders", "measure": "sum", "op": "gt", "value": 300}
OPENED = {"type": "event", "event": "email_open", "measure": "count", "op": "gte", "value": 1}


def nested(depth: int) -> dict:
    node = attr("country", "eq", "PL")
    for _ in range(depth):
        node = ALL(node)
    return node


def with_(base: dict, **changes) -> dict:
    return {**base, **changes}


def without(base: dict, key: str) -> dict:
    return {k: v for k, v in base.items() if k != key}


# (case, definition, path of the error)
CASES = [
    # shape of groups
    ("not an object", ["match", "all"], "definition"),
    ("a string", "everyone", "definition"),
    ("match missing", {"conditions": []}, "match"),
    ("match unknown", {"match": "most", "conditions": []}, "match"),
    ("conditions missing", {"match": "all"}, "conditions"),
    ("conditions not a list", {"match": "all", "conditions": {"a": 1}}, "conditions"),
    ("unknown key at the root", {"match": "all", "conditions": [], "limit": 10}, "limit"),
    ("empty nested group", ALL(ANY()), "conditions[0].conditions"),
    ("unknown key in a nested group", ALL({"match": "any", "conditions": [OPENED], "x": 1}), "conditions[0].x"),
    ("node not an object", ALL("country = PL"), "conditions[0]"),
    ("node neither group nor condition", ALL({"field": "country"}), "conditions[0]"),
    ("too deep", nested(7), "conditions[0].conditions[0].conditions[0].conditions[0].conditions[0].conditions[0]"),
    ("too many conditions", ALL(*[attr("country", "eq", "PL")] * 101), "conditions[100]"),
    # condition type
    ("unknown condition type", ALL({"type": "purchase"}), "conditions[0].type"),
    # attribute conditions
    ("unknown field", ALL(attr("shoe_size", "eq", 42)), "conditions[0].field"),
    ("unknown custom attribute", ALL(attr("attributes.plan", "eq", "pro")), "conditions[0].field"),
    ("field missing", ALL({"type": "attribute", "op": "eq", "value": "PL"}), "conditions[0].field"),
    ("op missing", ALL({"type": "attribute", "field": "country", "value": "PL"}), "conditions[0].op"),
    ("op of another type", ALL(attr("country", "gt", 3)), "conditions[0].op"),
    ("op unknown", ALL(attr("total_spent", "approximately", 3)), "conditions[0].op"),
    ("value missing", ALL(attr("country", "eq")), "conditions[0].value"),
    ("value given to is_set", ALL(attr("country", "is_set", "PL")), "conditions[0].value"),
    ("value given to is_true", ALL(attr("email_status", "is_set", True)), "conditions[0].value"),
    ("unknown key in a condition", ALL(with_(attr("country", "eq", "PL"), negate=True)), "conditions[0].negate"),
    ("text value not a string", ALL(attr("country", "eq", 48)), "conditions[0].value"),
    ("text value too long", ALL(attr("city", "contains", "x" * 501)), "conditions[0].value"),
    ("NUL in text", ALL(attr("city", "eq", "War\x00saw")), "conditions[0].value"),
    ("in without a list", ALL(attr("country", "in", "PL")), "conditions[0].value"),
    ("in with an empty list", ALL(attr("country", "in", [])), "conditions[0].value"),
    ("in with too many items", ALL(attr("country", "in", ["PL"] * 1001)), "conditions[0].value"),
    ("in with a non-string item", ALL(attr("country", "in", ["PL", 4])), "conditions[0].value[1]"),
    ("choice not offered", ALL(attr("email_status", "eq", "opted_in")), "conditions[0].value"),
    ("choice list item not offered", ALL(attr("lifecycle_stage", "in", ["new", "vip"])), "conditions[0].value[1]"),
    ("number value a string", ALL(attr("total_spent", "gt", "300")), "conditions[0].value"),
    ("number value a boolean", ALL(attr("orders_count", "eq", True)), "conditions[0].value"),
    ("number too large", ALL(attr("total_spent", "gt", 10**16)), "conditions[0].value"),
    ("number too precise", ALL(attr("total_spent", "gt", 0.1234567)), "conditions[0].value"),
    ("between reversed", ALL(attr("total_spent", "between", [1000, 500])), "conditions[0].value"),
    ("between not a pair", ALL(attr("total_spent", "between", [1, 2, 3])), "conditions[0].value"),
    ("between with a string", ALL(attr("total_spent", "between", [1, "2"])), "conditions[0].value[1]"),
    ("datetime not ISO", ALL(attr("created_at", "before", "yesterday")), "conditions[0].value"),
    ("datetime impossible date", ALL(attr("created_at", "after", "2024-02-30")), "conditions[0].value"),
    (
        "ago with an unknown unit",
        ALL(attr("created_at", "before", {"ago": 3, "unit": "years"})),
        "conditions[0].value.unit",
    ),
    ("ago of zero", ALL(attr("created_at", "before", {"ago": 0, "unit": "days"})), "conditions[0].value.ago"),
    (
        "ago with an extra key",
        ALL(attr("created_at", "before", {"ago": 1, "unit": "days", "tz": "CET"})),
        "conditions[0].value.tz",
    ),
    ("in_last without a span", ALL(attr("last_order_at", "in_last", 7)), "conditions[0].value"),
    (
        "in_last of a fraction",
        ALL(attr("last_order_at", "in_last", {"last": 1.5, "unit": "days"})),
        "conditions[0].value.last",
    ),
    (
        "datetime between reversed",
        ALL(attr("created_at", "between", ["2024-02-01", "2024-01-01"])),
        "conditions[0].value",
    ),
    # tag conditions
    ("tag op unknown", ALL({"type": "tag", "op": "has", "value": ["vip"]}), "conditions[0].op"),
    ("tag value not a list", ALL({"type": "tag", "op": "has_any", "value": "vip"}), "conditions[0].value"),
    ("tag value missing", ALL({"type": "tag", "op": "has_any"}), "conditions[0].value"),
    # orders conditions
    ("orders measure missing", ALL(without(ORDERS_SUM, "measure")), "conditions[0].measure"),
    ("orders measure unknown", ALL(with_(ORDERS_SUM, measure="median")), "conditions[0].measure"),
    ("orders op of the measure's type", ALL(with_(ORDERS_SUM, measure="last_at")), "conditions[0].op"),
    ("orders filters not a list", ALL(with_(ORDERS_SUM, filters={"field": "source"})), "conditions[0].filters"),
    (
        "orders filter field unknown",
        ALL(with_(ORDERS_SUM, filters=[{"field": "product.colour", "op": "eq", "value": "red"}])),
        "conditions[0].filters[0].field",
    ),
    (
        "orders filter value wrong",
        ALL(with_(ORDERS_SUM, filters=[{"field": "quantity", "op": "gt", "value": "2"}])),
        "conditions[0].filters[0].value",
    ),
    (
        "orders filter unknown key",
        ALL(with_(ORDERS_SUM, filters=[{"field": "source", "op": "eq", "value": "x", "case": "ignore"}])),
        "conditions[0].filters[0].case",
    ),
    ("window not an object", ALL(with_(ORDERS_SUM, window="6 months")), "conditions[0].window"),
    (
        "window unit unknown",
        ALL(with_(ORDERS_SUM, window={"last": 6, "unit": "quarters"})),
        "conditions[0].window.unit",
    ),
    (
        "fixed window reversed",
        ALL(with_(ORDERS_SUM, window={"from": "2024-06-01", "to": "2024-01-01"})),
        "conditions[0].window",
    ),
    ("fixed window bad date", ALL(with_(ORDERS_SUM, window={"from": "June"})), "conditions[0].window.from"),
    (
        "window with an extra key",
        ALL(with_(ORDERS_SUM, window={"last": 6, "unit": "days", "x": 1})),
        "conditions[0].window.x",
    ),
    # event conditions
    ("event missing", ALL(without(OPENED, "event")), "conditions[0].event"),
    ("event type unknown", ALL(with_(OPENED, event="email_read")), "conditions[0].event"),
    ("event measure not an event measure", ALL(with_(OPENED, measure="sum")), "conditions[0].measure"),
    (
        "event filter unknown",
        ALL(with_(OPENED, filters=[{"field": "browser", "op": "eq", "value": "Firefox"}])),
        "conditions[0].filters[0].field",
    ),
    (
        "event device not a device",
        ALL(with_(OPENED, filters=[{"field": "device", "op": "eq", "value": "phone"}])),
        "conditions[0].filters[0].value",
    ),
    (
        "event property compared with an object",
        ALL(with_(OPENED, filters=[{"field": "properties.plan", "op": "eq", "value": {"a": 1}}])),
        "conditions[0].filters[0].value",
    ),
    # segment conditions
    ("segment op unknown", ALL({"type": "segment", "op": "within", "segment": "EXISTING"}), "conditions[0].op"),
    ("segment id not a number", ALL({"type": "segment", "op": "in", "segment": "vip"}), "conditions[0].segment"),
    ("segment does not exist", ALL({"type": "segment", "op": "in", "segment": 999_999}), "conditions[0].segment"),
    (
        "segment of another workspace",
        ALL({"type": "segment", "op": "in", "segment": "THEIRS"}),
        "conditions[0].segment",
    ),
    (
        "segment with an invalid definition",
        ALL({"type": "segment", "op": "in", "segment": "BROKEN"}),
        "conditions[0].segment",
    ),
]


@pytest.fixture
def references(workspace, other_workspace) -> dict[str, int]:
    """Ids the cases name symbolically: a good segment, a broken one, another workspace's."""
    existing = Segment.objects.create(workspace=workspace, name="Existing", definition=ALL())
    broken = Segment.objects.create(workspace=workspace, name="Broken", definition=ALL(attr("nope", "eq", 1)))
    theirs = Segment.objects.create(workspace=other_workspace, name="Theirs", definition=ALL())
    return {"EXISTING": existing.pk, "BROKEN": broken.pk, "THEIRS": theirs.pk}


def resolve(definition, references):
    if isinstance(definition, dict):
        return {k: resolve(v, references) for k, v in definition.items()}
    if isinstance(definition, list):
        return [resolve(v, references) for v in definition]
    return references.get(definition, definition) if isinstance(definition, str) else definition


@pytest.mark.parametrize("case, definition, path", CASES, ids=[case for case, _, _ in CASES])
def test_a_wrong_definition_answers_400_with_the_error_located(api, references, case, definition, path):
    definition = resolve(definition, references)
    segments_before = Segment.objects.count()

    preview = api.post("/api/v1/segments/preview/", {"definition": definition}, format="json")
    created = api.post("/api/v1/segments/", {"name": "Attempt", "definition": definition}, format="json")

    for response in (preview, created):
        assert response.status_code == 400
        errors = response.json()["errors"]
        assert path in [e["path"] for e in errors], errors
        assert all(set(e) == {"path", "message"} and e["message"] for e in errors)
    assert Segment.objects.count() == segments_before


def test_every_error_of_a_definition_is_reported_at_once(api):
    definition = ALL(
        attr("country", "gt", 3),
        {"match": "any", "conditions": [attr("nope", "eq", 1), with_(OPENED, event="email_read")]},
        with_(ORDERS_SUM, value="300"),
    )
    response = api.post("/api/v1/segments/preview/", {"definition": definition}, format="json")
    assert [e["path"] for e in response.json()["errors"]] == [
        "conditions[0].op",
        "conditions[1].conditions[0].field",
        "conditions[1].conditions[1].event",
        "conditions[2].value",
    ]


def test_a_cycle_through_other_segments_is_refused(api, workspace):
    first = Segment.objects.create(workspace=workspace, name="First", definition=ALL())
    second = Segment.objects.create(
        workspace=workspace, name="Second", definition=ALL({"type": "segment", "op": "in", "segment": first.pk})
    )
    loop = ALL({"type": "segment", "op": "in", "segment": second.pk})

    response = api.patch(f"/api/v1/segments/{first.pk}/", {"definition": loop}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "conditions[0].segment"
    assert f"{first.pk} -> {second.pk} -> {first.pk}" in response.json()["errors"][0]["message"]
    assert Segment.objects.get(pk=first.pk).definition == ALL()


def test_json_that_does_not_parse_is_a_400(api):
    response = api.generic("POST", "/api/v1/segments/preview/", '{"definition": {', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == ""
