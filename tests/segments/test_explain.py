"""Explain: condition by condition, whether it holds for a contact and the value it looked at.

The explanation must agree with the compiled query (`member`) and, node by node, with the independent
reference evaluator; the property test checks both on random worlds and definitions.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest
from django.db import transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from segments_app.explain import explain_contact
from segments_app.models import Segment
from tests.factories import make_contact, make_event, make_order, make_product

from . import reference
from .loading import load
from .strategies import definitions, with_segment_ids, worlds
from .support import ALL, ANY, NONE, NOW, ago, attr, members, set_stats

PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

UP_SELL = {
    "type": "orders",
    "filters": [{"field": "product.producer", "op": "eq", "value": "Acme"}],
    "window": {"last": 6, "unit": "months"},
    "measure": "sum",
    "op": "gt",
    "value": 300,
}


def saved(workspace, definition, name="Segment") -> Segment:
    return Segment.objects.create(workspace=workspace, name=name, definition=definition)


def explain(workspace, segment, external_id, now=NOW) -> dict:
    contact = workspace.contacts.get(external_id=external_id)
    return explain_contact(workspace=workspace, segment=segment, contact=contact, now=now)


def test_the_issues_example_in_words(workspace):
    acme = make_product(workspace, producer="Acme")
    alice = make_contact(workspace, external_id="alice")
    make_order(alice, items=[(acme, 2, "206.25")], ordered_at=ago(days=30))
    make_order(alice, items=[(acme, 1, "999")], ordered_at=ago(days=400))  # outside the window
    segment = saved(workspace, ALL(UP_SELL), name="Acme fans")

    result = explain(workspace, segment, "alice")

    assert result["member"] is True and result["holds"] is True
    assert result["segment"] == {"id": segment.pk, "name": "Acme fans"}
    assert result["contact"] == {"external_id": "alice", "email": None}
    assert result["evaluated_at"] == "2024-06-15T12:00:00Z"
    assert result["conditions"] == [
        {
            "path": "conditions[0]",
            "summary": "who bought Acme products for over 300 EUR in the last 6 months",
            "holds": True,
            "observed": 412.5,
            "text": "spent 412.50 EUR on Acme products in the last 6 months > 300: yes",
        }
    ]


def test_a_contact_without_orders_spent_nothing(workspace):
    make_contact(workspace, external_id="bob")
    [node] = explain(workspace, saved(workspace, ALL(UP_SELL)), "bob")["conditions"]
    assert node["holds"] is False and node["observed"] == 0
    assert node["text"] == "spent 0.00 EUR on Acme products in the last 6 months > 300: no"


def test_nested_groups_carry_their_own_holds_and_paths(workspace):
    carol = make_contact(workspace, external_id="carol", country="DE", email_status="subscribed", tags=["vip"])
    make_event(carol, "email_open", occurred_at=ago(days=2))
    make_event(carol, "email_open", occurred_at=ago(days=3))
    definition = ALL(
        {"type": "event", "event": "email_open", "window": {"last": 7, "unit": "days"}, "measure": "count",
         "op": "gte", "value": 1},
        attr("email_status", "eq", "subscribed"),
        ANY(attr("country", "eq", "PL"), {"type": "tag", "op": "has_any", "value": ["vip", "b2b"]}),
    )  # fmt: skip

    result = explain(workspace, saved(workspace, definition), "carol")

    opened, status, either = result["conditions"]
    assert (opened["observed"], opened["text"]) == (2, "opened an email 2 times in the last 7 days >= 1: yes")
    assert (status["observed"], status["text"]) == ("subscribed", "email status subscribed = subscribed: yes")
    assert either["path"] == "conditions[2]" and either["match"] == "any" and either["holds"] is True
    assert either["summary"] == '(whose country is "PL" or who are tagged vip or b2b)'
    country, tags = either["conditions"]
    assert country == {
        "path": "conditions[2].conditions[0]",
        "summary": 'whose country is "PL"',
        "holds": False,
        "observed": "DE",
        "text": 'country "DE" = "PL": no',
    }
    assert (tags["path"], tags["holds"], tags["observed"]) == ("conditions[2].conditions[1]", True, ["vip"])
    assert result["member"] is True


def test_none_groups_hold_when_no_node_holds(workspace):
    make_contact(workspace, external_id="dave", country="PL")
    result = explain(workspace, saved(workspace, NONE(attr("country", "eq", "PL"), attr("city", "is_set"))), "dave")
    assert [n["holds"] for n in result["conditions"]] == [True, False]
    assert result["holds"] is False and result["member"] is False


def test_an_empty_definition_has_every_contact(workspace):
    make_contact(workspace, external_id="ann")
    result = explain(workspace, saved(workspace, ALL()), "ann")
    assert (result["member"], result["holds"], result["conditions"], result["summary"]) == (
        True,
        True,
        [],
        "All contacts",
    )


def test_missing_values_are_null_and_said_missing(workspace):
    make_contact(workspace, external_id="erin")
    definition = ALL(attr("country", "ne", "PL"), attr("last_order_at", "not_in_last", {"last": 90, "unit": "days"}))

    country, last_order = explain(workspace, saved(workspace, definition), "erin")["conditions"]

    assert (country["observed"], country["holds"], country["text"]) == (None, True, 'country missing != "PL": yes')
    assert last_order["observed"] is None and last_order["holds"] is True
    assert last_order["text"] == "last order missing more than 90 days ago or missing: yes"


def test_computed_figures_and_times_are_observed(workspace):
    frank = make_contact(workspace, external_id="frank")
    set_stats(frank, total_spent=Decimal("1234.50"), cart_open_since=datetime(2024, 6, 14, 9, 30, tzinfo=UTC))
    definition = ALL(
        attr("total_spent", "gte", 1000), attr("cart_open_since", "in_last", {"last": 48, "unit": "hours"})
    )

    spent, cart = explain(workspace, saved(workspace, definition), "frank")["conditions"]

    assert (spent["observed"], spent["text"]) == (1234.5, "total spending 1234.50 EUR >= 1000 EUR: yes")
    assert cart["observed"] == "2024-06-14T09:30:00Z"
    assert cart["text"] == "first cart add since the last order 2024-06-14 09:30 UTC in the last 48 hours: yes"


def test_custom_attributes_are_observed_as_their_type_sees_them(workspace):
    make_contact(workspace, external_id="gina", attributes={"shoe_size": 41})
    make_contact(workspace, external_id="hugo", attributes={"shoe_size": "forty"})  # text: now a text attribute
    workspace.attribute_types = {"shoe_size": "number"}
    workspace.save()
    segment = saved(workspace, ALL(attr("attributes.shoe_size", "gte", 40)))

    assert explain(workspace, segment, "gina")["conditions"][0]["observed"] == 41
    hugo = explain(workspace, segment, "hugo")["conditions"][0]
    assert hugo["observed"] is None and hugo["holds"] is False


def test_orders_times_and_item_counts_are_observed(workspace):
    runner = make_product(workspace, sku="SKU-1")
    ida = make_contact(workspace, external_id="ida")
    make_order(ida, items=[(runner, 1, "99")], ordered_at=datetime(2024, 6, 1, 8, 0, tzinfo=UTC))
    definition = ALL(
        {"type": "orders", "filters": [{"field": "product.sku", "op": "eq", "value": "SKU-1"}],
         "window": {"last": 1, "unit": "months"}, "measure": "count", "op": "gte", "value": 1},
        {"type": "orders", "measure": "last_at", "op": "before", "value": "2024-06-10"},
    )  # fmt: skip

    count, last = explain(workspace, saved(workspace, definition), "ida")["conditions"]

    assert (count["observed"], count["text"]) == (1, "bought SKU-1 in 1 order in the last month >= 1: yes")
    assert (last["observed"], last["text"]) == ("2024-06-01T08:00:00Z", "last order 2024-06-01 08:00 UTC before "
                                                "2024-06-10: yes")  # fmt: skip


def test_a_referenced_segment_is_observed_as_membership_of_its_rule(workspace):
    make_contact(workspace, external_id="jan", country="PL")
    poles = saved(workspace, ALL(attr("country", "eq", "PL")), name="Poles")
    segment = saved(workspace, ALL({"type": "segment", "op": "not_in", "segment": poles.pk}), name="Not Poles")

    [node] = explain(workspace, segment, "jan")["conditions"]

    assert node["observed"] is True and node["holds"] is False
    assert node["text"] == 'in segment "Poles" now (needs: not in): no'


def test_the_api_answers_the_explanation_and_404_for_unknown_contacts(api, workspace, other_workspace):
    make_contact(workspace, external_id="shop/42", country="PL")
    make_contact(other_workspace, external_id="stranger")
    segment = saved(workspace, ALL(attr("country", "eq", "PL")))

    response = api.get(f"/api/v1/segments/{segment.pk}/explain/shop/42/")
    assert response.status_code == 200
    assert response.json()["member"] is True and response.json()["conditions"][0]["holds"] is True
    assert api.get(f"/api/v1/segments/{segment.pk}/explain/nobody/").status_code == 404
    assert api.get(f"/api/v1/segments/{segment.pk}/explain/stranger/").status_code == 404


def test_a_stored_definition_that_no_longer_validates_answers_400(api, workspace):
    make_contact(workspace, external_id="kim")
    segment = saved(workspace, ALL(attr("attributes.plan", "eq", "pro")))  # no contact has "plan"

    response = api.get(f"/api/v1/segments/{segment.pk}/explain/kim/")

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "conditions[0].field"


def test_member_agrees_with_the_segments_query(workspace):
    acme = make_product(workspace, producer="Acme")
    for n, price in enumerate(["100", "301", "150.50"]):
        contact = make_contact(workspace, external_id=f"c{n}")
        make_order(contact, items=[(acme, 2, price)], ordered_at=ago(days=20))
    segment = saved(workspace, ALL(UP_SELL))

    in_segment = members(workspace, segment.definition)
    explained = {key for key in ("c0", "c1", "c2") if explain(workspace, segment, key)["member"]}

    assert explained == in_segment == {"c1", "c2"}


# --- property: explanation = compiled query = reference, node by node -----------------------------------


def _same_measure(observed, expected) -> bool:
    if expected is reference.MISSING:
        return observed is None
    if isinstance(expected, datetime):
        return observed == expected.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(expected, Fraction):
        return abs(Fraction(Decimal(str(observed))) - expected) < Fraction(1, 10**6)
    return Decimal(str(observed)) == expected


def _check_node(evaluator, contact, node_json, explained):
    assert explained["holds"] == evaluator.node(contact, node_json), (node_json, explained)
    if "match" in node_json:
        for child_json, child in zip(node_json["conditions"], explained["conditions"], strict=True):
            _check_node(evaluator, contact, child_json, child)
    elif node_json["type"] in ("orders", "event"):
        if node_json["type"] == "orders":
            rows = reference.order_rows(contact, node_json, evaluator.now)
        else:
            rows = [
                (e.occurred_at, Decimal(0))
                for e in contact.events
                if reference.event_passes(e, node_json, evaluator.now)
            ]
        expected = reference.measure_value(node_json["measure"], rows)
        assert _same_measure(explained["observed"], expected), (node_json, explained)


@pytest.mark.django_db
@settings(PROFILE, max_examples=min(PROFILE.max_examples, 40))
@given(data=st.data())
def test_explanations_agree_with_the_query_and_the_reference(data):
    world = data.draw(worlds(max_contacts=4), label="world")
    definition = data.draw(definitions(world, max_depth=3), label="definition")
    with transaction.atomic():
        workspace, segment_ids = load(world)
        real = with_segment_ids(definition, segment_ids)
        segment = Segment.objects.create(workspace=workspace, name="explained", definition=real)
        in_segment = members(workspace, real, now=world.now)
        evaluator = reference.Evaluator(world.reference_world(segment_ids), world.now)
        for contact in world.contacts:
            result = explain(workspace, segment, contact.key, now=world.now)
            assert result["member"] == (contact.key in in_segment)
            if real["conditions"]:
                assert result["holds"] == result["member"]
            for node_json, node in zip(real["conditions"], result["conditions"], strict=True):
                _check_node(evaluator, contact, node_json, node)
        transaction.set_rollback(True)
