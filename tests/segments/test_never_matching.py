"""Valid definitions that can never match anyone answer 0 everywhere (preview, create, refresh), never a 500.

The compiler turns a condition no contact can pass into an empty `pk IN ()`, which Django will not render as
SQL; the preview's one-pass count and the membership recompute embed the compiled SQL, so they must cope.
"""

from __future__ import annotations

import pytest

from segments_app.models import Segment
from tests.factories import make_contact, make_event, make_order

from .support import ALL, ANY, NONE, ago, attr

ORDERS_COUNT_NOT_SET = {"type": "orders", "measure": "count", "op": "is_not_set"}
ORDERS_COUNT_SET = {"type": "orders", "measure": "count", "op": "is_set"}
ORDERS_SUM_NOT_SET = {"type": "orders", "measure": "sum", "op": "is_not_set"}

NEVER = {
    "orders count is not set": ALL(ORDERS_COUNT_NOT_SET),
    "orders sum is not set": ALL(ORDERS_SUM_NOT_SET),
    "event count is not set": ALL({"type": "event", "event": "email_open", "measure": "count", "op": "is_not_set"}),
    "none of: orders count is set": NONE(ORDERS_COUNT_SET),
    "orders count below 0": ALL({"type": "orders", "measure": "count", "op": "lt", "value": 0}),
    "orders count of 0.5": ALL({"type": "orders", "measure": "count", "op": "eq", "value": 0.5}),
    "orders count between -5 and -1": ALL({"type": "orders", "measure": "count", "op": "between", "value": [-5, -1]}),
    "any event with an empty url": ALL({
        "type": "event", "event": "any", "filters": [{"field": "url", "op": "eq", "value": ""}],
        "measure": "count", "op": "gte", "value": 1,
    }),  # fmt: skip
    "never-matching and a field": ALL(ORDERS_COUNT_NOT_SET, attr("country", "eq", "PL")),
    "any of never-matching conditions": ANY(ORDERS_COUNT_NOT_SET, ORDERS_SUM_NOT_SET),
    "country is the empty string": ALL(attr("country", "eq", "")),
    "orders count of 1.5 (figure)": ALL(attr("orders_count", "eq", 1.5)),
}


@pytest.fixture
def people(workspace):
    """Contacts with and without orders and events, in Poland and elsewhere: none of them can match."""
    buyer = make_contact(workspace, external_id="buyer", country="PL")
    make_order(buyer, total="10", ordered_at=ago(days=2))
    make_event(buyer, "email_open", occurred_at=ago(days=1), url="https://shop.example/")
    make_contact(workspace, external_id="nobody", country="DE")
    make_contact(workspace, external_id="no_country")


@pytest.mark.parametrize("name", list(NEVER))
def test_preview_answers_zero_and_an_empty_sample(api, people, name):
    response = api.post("/api/v1/segments/preview/", {"definition": NEVER[name]}, format="json")

    assert response.status_code == 200, response.content[:300]
    assert (response.json()["count"], response.json()["sample"]) == (0, [])


SAVED = ["orders count is not set", "none of: orders count is set", "country is the empty string"]


@pytest.mark.parametrize("name", SAVED)
def test_a_saved_segment_computes_to_zero_and_refreshes(api, people, name):
    created = api.post("/api/v1/segments/", {"name": name, "definition": NEVER[name]}, format="json")
    assert created.status_code == 201, created.content[:300]
    segment_id = created.json()["id"]

    refreshed = api.post(f"/api/v1/segments/{segment_id}/refresh/")

    assert refreshed.status_code == 200, refreshed.content[:300]
    assert (refreshed.json()["size"], refreshed.json()["entered"], refreshed.json()["exited"]) == (0, 0, 0)
    segment = Segment.objects.get(pk=segment_id)
    assert (segment.size, segment.status, segment.last_error) == (0, Segment.Status.FRESH, "")


def test_not_in_a_segment_that_matches_everyone_is_empty_and_refreshes(api, workspace, people):
    everyone = Segment.objects.create(workspace=workspace, name="everyone", definition=ANY())
    definition = ALL({"type": "segment", "op": "not_in", "segment": everyone.pk})
    created = api.post("/api/v1/segments/", {"name": "outside everyone", "definition": definition}, format="json")

    refreshed = api.post(f"/api/v1/segments/{created.json()['id']}/refresh/")

    assert refreshed.status_code == 200, refreshed.content[:300]
    assert refreshed.json()["size"] == 0
