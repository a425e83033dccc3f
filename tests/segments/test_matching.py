"""Where previews and recomputes count a definition's contacts from (`selectors.matching_ids`).

The property tests prove every shape counts the same contacts as the query over the contacts; these pin
which shape each kind of definition gets, so that a change that loses a fast shape shows up here.
"""

from __future__ import annotations

import pytest
from django.db import connection

from contacts.models import Contact, ContactStats
from segments_app.catalog import build_catalog
from segments_app.definition import WorkspaceSegments, parse_definition
from segments_app.selectors import matching_ids
from tests.factories import make_contact, make_order, make_product

from .support import ALL, ANY, NONE, NOW, ago, attr, members


def matching(workspace, definition):
    catalog = build_catalog(workspace, discover_attributes=False)
    segments = WorkspaceSegments(workspace.pk)
    group = parse_definition(definition, catalog=catalog, segments=segments)
    return matching_ids(workspace=workspace, group=group, catalog=catalog, segments=segments, now=NOW)


def bought(sku: str, **extra) -> dict:
    return {"type": "orders", "filters": [{"field": "product.sku", "op": "eq", "value": sku}],
            "measure": "count", "op": "gte", "value": 1, **extra}  # fmt: skip


@pytest.fixture
def shop(workspace):
    runner, insoles = make_product(workspace, sku="SKU-1"), make_product(workspace, sku="SKU-2")
    both = make_contact(workspace, external_id="both", country="PL")
    make_order(both, items=[(runner, 1, "90")], ordered_at=ago(days=3))
    make_order(both, items=[(insoles, 1, "10")], ordered_at=ago(days=30))
    only_runner = make_contact(workspace, external_id="only_runner", country="DE")
    make_order(only_runner, items=[(runner, 2, "90")], ordered_at=ago(days=5))
    make_contact(workspace, external_id="nobody", country="PL")
    return workspace


def ids_of(workspace, definition) -> set[str]:
    sql, params = matching(workspace, definition).sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = [row[0] for row in cursor.fetchall()]
    return set(Contact.objects.filter(pk__in=found).values_list("external_id", flat=True))


def test_one_condition_on_rows_is_counted_from_the_rows(shop):
    found = matching(shop, ALL(bought("SKU-1")))
    assert found.direct is not None
    assert "contacts_contactstats" not in found.direct[0] and '"contacts_contact"' not in found.direct[0]
    assert ids_of(shop, ALL(bought("SKU-1"))) == {"both", "only_runner"}


def test_rows_and_negated_rows_are_the_first_anti_joined_with_the_others(shop):
    cross_sell = ALL(bought("SKU-1"), {**bought("SKU-2"), "op": "eq", "value": 0})
    found = matching(shop, cross_sell)
    assert found.direct is not None
    anti_join = "NOT EXISTS" if connection.vendor == "postgresql" else 'NOT "driver"."contact_id" IN (SELECT'
    assert anti_join in found.direct[0]
    assert ids_of(shop, cross_sell) == {"only_runner"} == members(shop, cross_sell)


@pytest.mark.parametrize(
    "definition",
    [
        NONE(bought("SKU-1")),  # no rows to start from
        ANY(bought("SKU-1"), bought("SKU-2")),  # an OR
        ALL(bought("SKU-1"), attr("orders_count", "gte", 2)),  # a figure
        ALL(bought("SKU-1"), attr("country", "eq", "PL")),  # a contact column
    ],
)
def test_other_shapes_are_not_counted_from_rows_alone(shop, definition):
    assert matching(shop, definition).direct is None
    assert ids_of(shop, definition) == members(shop, definition)


def test_figures_root_the_count_on_the_figures_and_join_contact_columns(shop):
    definition = ALL(attr("orders_count", "gte", 2), attr("country", "eq", "PL"))
    found = matching(shop, definition)
    assert found.rows.model is ContactStats
    sql = str(found.rows.query)
    assert "EXISTS" not in sql and "INNER JOIN" in sql
    assert ids_of(shop, definition) == {"both"}


def test_contact_columns_alone_are_counted_over_the_contacts(shop):
    assert matching(shop, ALL(attr("country", "eq", "PL"))).rows.model is Contact


def test_missing_or_older_is_counted_as_two_index_ranges(shop):
    inactive = ALL(attr("last_order_at", "not_in_last", {"last": 4, "unit": "days"}))
    found = matching(shop, inactive)
    assert found.direct is not None and "UNION ALL" in found.direct[0]
    assert ids_of(shop, inactive) == {"only_runner", "nobody"} == members(shop, inactive)
    last_4_days = {"last": 4, "unit": "days"}
    no_order = ALL({"type": "orders", "window": last_4_days, "measure": "count", "op": "eq", "value": 0})
    assert "UNION ALL" in matching(shop, no_order).direct[0]
    assert ids_of(shop, no_order) == {"only_runner", "nobody"} == members(shop, no_order)
    # Beside other conditions, one pass tests them all.
    with_more = ALL(attr("orders_count", "gte", 1), attr("last_order_at", "not_in_last", {"last": 4, "unit": "days"}))
    assert matching(shop, with_more).direct is None
    assert ids_of(shop, with_more) == {"only_runner"}
