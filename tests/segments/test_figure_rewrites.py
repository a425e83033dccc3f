"""Orders and event conditions answered from the stored figures instead of the history, exactly.

The property tests (`test_properties.py`) prove the rewrites agree with the reference evaluator on random
worlds; these pin that each rewrite is taken (the compiled SQL reads the figure, not the history), the
averages the stored rounding would get wrong, and the invariant recency rests on: nothing is stored dated
after the moment it arrives (ingest: `tests/contacts/test_bad_input.py`; the admin: here).
"""

from __future__ import annotations

import pytest

from segments_app.selectors import segment_contacts
from tests.factories import make_contact, make_event, make_order

from .support import ALL, ANY, NONE, NOW, ago, members


def orders(measure, op, value=None, **extra) -> dict:
    condition = {"type": "orders", "measure": measure, "op": op, **extra}
    if value is not None:
        condition["value"] = value
    return condition


def event(name, measure, op, value=None, **extra) -> dict:
    condition = {"type": "event", "event": name, "measure": measure, "op": op, **extra}
    if value is not None:
        condition["value"] = value
    return condition


def sql(workspace, definition) -> str:
    return str(segment_contacts(workspace=workspace, definition=definition, now=NOW).query)


LAST_30_DAYS = {"last": 30, "unit": "days"}


@pytest.mark.parametrize(
    ("condition", "figure"),
    [
        (orders("count", "gte", 1), "orders_count"),
        (orders("count", "eq", 0), "orders_count"),
        (orders("sum", "between", [500, 1000]), "total_spent"),
        (orders("avg", "gt", 50), "total_spent"),
        (orders("first_at", "before", "2024-01-01"), "first_order_at"),
        (orders("last_at", "not_in_last", LAST_30_DAYS), "last_order_at"),
        (event("email_open", "last_at", "in_last", LAST_30_DAYS), "last_email_open_at"),
        (event("email_click", "count", "gte", 1), "last_email_click_at"),
        (event("any", "last_at", "is_not_set"), "last_seen_at"),
    ],
)
def test_all_time_measures_without_filters_read_the_figure_and_not_the_history(workspace, condition, figure):
    query = sql(workspace, ALL(condition))
    assert figure in query
    assert "contacts_order" not in query.replace("contacts_orderitem", "")
    assert "contacts_event" not in query


@pytest.mark.parametrize(
    ("condition", "figure"),
    [
        (orders("count", "gte", 1, window=LAST_30_DAYS), "last_order_at"),
        (event("email_open", "count", "eq", 0, window={"last": 7, "unit": "days"}), "last_email_open_at"),
        (event("any", "count", "gte", 1, window={"from": "2024-01-01"}), "last_seen_at"),
    ],
)
def test_recency_reads_the_latest_time_only(workspace, condition, figure):
    query = sql(workspace, ALL(condition))
    assert figure in query
    assert "contacts_event" not in query and "contacts_order" not in query.replace("contacts_orderitem", "")


@pytest.mark.parametrize(
    "condition",
    [
        orders("count", "gte", 3, window=LAST_30_DAYS),  # a count, not presence
        orders("max", "gt", 100),  # no figure keeps the largest order
        orders("count", "gte", 1, filters=[{"field": "source", "op": "eq", "value": "email"}]),
        event("page_view", "count", "gte", 1),  # no figure for page views
        event("email_open", "first_at", "is_set"),  # nor for first opens
        orders("count", "gte", 1, window={"from": "2024-01-01", "to": "2024-02-01"}),  # a window in the past
    ],
)
def test_conditions_no_figure_answers_read_the_history(workspace, condition):
    query = sql(workspace, ALL(condition))
    assert "contacts_order" in query or "contacts_event" in query


def test_an_average_is_the_total_over_the_count_not_the_rounded_stored_average(workspace):
    thirds = make_contact(workspace, external_id="thirds")
    for total in ("10.00", "10.00", "10.01"):  # average 10.00333..., stored rounded as 10.00
        make_order(thirds, total=total, ordered_at=ago(days=3))
    assert members(workspace, ALL(orders("avg", "gt", 10))) == {"thirds"}
    assert members(workspace, ALL(orders("avg", "lte", 10))) == set()
    assert members(workspace, ALL(orders("avg", "lt", 10.004))) == {"thirds"}


def test_recency_counts_the_edges_of_the_window(workspace):
    inside = make_contact(workspace, external_id="inside")
    make_order(inside, ordered_at=ago(days=40))
    make_order(inside, ordered_at=ago(days=30))  # exactly at the window's start
    lapsed = make_contact(workspace, external_id="lapsed")
    make_order(lapsed, ordered_at=ago(days=30, microseconds=1))
    make_contact(workspace, external_id="never")
    recent = orders("count", "gte", 1, window=LAST_30_DAYS)

    assert members(workspace, ALL(recent)) == {"inside"}
    assert members(workspace, NONE(recent)) == {"lapsed", "never"}
    assert members(workspace, ALL(orders("count", "eq", 0, window=LAST_30_DAYS))) == {"lapsed", "never"}


def test_an_open_in_the_window_counts_inside_an_or_and_a_negation(workspace):
    opener = make_contact(workspace, external_id="opener", country="DE")
    make_event(opener, "email_open", occurred_at=ago(days=2))
    make_event(make_contact(workspace, external_id="old", country="DE"), "email_open", occurred_at=ago(days=8))
    make_contact(workspace, external_id="pole", country="PL")
    opened = event("email_open", "count", "gte", 1, window={"last": 7, "unit": "days"})
    in_poland = {"type": "attribute", "field": "country", "op": "eq", "value": "PL"}

    assert members(workspace, ANY(in_poland, opened)) == {"opener", "pole"}
    assert members(workspace, NONE(in_poland, opened)) == {"old"}
