"""The contract's semantics, one rule per test, with hand-made contacts. "Now" is 2024-06-15 12:00 UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contacts.models import EventType
from segments_app.catalog import Catalog, build_catalog
from segments_app.compiler import CompileError, compile_definition
from segments_app.definition import AttributeCondition, Group, parse_definition
from segments_app.models import Segment, SegmentMember
from tests.factories import make_contact, make_event, make_order, make_product

from .support import ALL, ANY, NONE, NOW, ago, attr, members, set_stats


def orders(measure: str, op: str, *value, **extra) -> dict:
    condition = {"type": "orders", **extra, "measure": measure, "op": op}
    if value:
        (condition["value"],) = value
    return condition


def events(name: str, measure: str, op: str, *value, **extra) -> dict:
    condition = {"type": "event", "event": name, **extra, "measure": measure, "op": op}
    if value:
        (condition["value"],) = value
    return condition


# ---------------------------------------------------------------------------- missing values


def test_ne_includes_contacts_without_the_attribute(workspace):
    make_contact(workspace, external_id="pl", country="PL")
    make_contact(workspace, external_id="de", country="DE")
    make_contact(workspace, external_id="unknown", country=None)
    make_contact(workspace, external_id="empty", country="")
    assert members(workspace, ALL(attr("country", "ne", "PL"))) == {"de", "unknown", "empty"}
    assert members(workspace, ALL(attr("country", "is_not_set"))) == {"unknown", "empty"}
    assert members(workspace, ALL(attr("country", "not_in", ["DE"]))) == {"pl", "unknown", "empty"}
    assert members(workspace, ALL(attr("country", "not_contains", "P"))) == {"de", "unknown", "empty"}
    assert members(workspace, ALL(attr("country", "contains", ""))) == {"pl", "de"}


def test_none_is_the_complement_of_any_including_missing_values(workspace):
    make_contact(workspace, external_id="pl", country="PL", city="Kraków")
    make_contact(workspace, external_id="bare")
    make_contact(workspace, external_id="de", country="DE")
    conditions = [attr("country", "eq", "PL"), attr("city", "starts_with", "war")]
    assert members(workspace, ANY(*conditions)) == {"pl"}
    assert members(workspace, NONE(*conditions)) == {"bare", "de"}


def test_number_operators_are_false_on_missing_except_ne_and_is_not_set(workspace):
    set_stats(make_contact(workspace, external_id="rated"), rfm_recency=3)
    make_contact(workspace, external_id="unrated")
    assert members(workspace, ALL(attr("rfm_recency", "lt", 5))) == {"rated"}
    assert members(workspace, ALL(attr("rfm_recency", "ne", 5))) == {"rated", "unrated"}
    assert members(workspace, ALL(attr("rfm_recency", "is_not_set"))) == {"unrated"}
    assert members(workspace, NONE(attr("rfm_recency", "lt", 5))) == {"unrated"}


# ---------------------------------------------------------------------------- text


def test_eq_and_in_are_exact_and_case_sensitive(workspace):
    make_contact(workspace, external_id="upper", city="Paris")
    make_contact(workspace, external_id="lower", city="paris")
    make_contact(workspace, external_id="spaced", city="Paris ")
    assert members(workspace, ALL(attr("city", "eq", "Paris"))) == {"upper"}
    assert members(workspace, ALL(attr("city", "in", ["paris", "Lyon"]))) == {"lower"}


def test_contains_family_ignores_the_case_of_latin_greek_and_cyrillic_letters(workspace):
    make_contact(workspace, external_id="krakow", city="Kraków")
    make_contact(workspace, external_id="shout", city="KRAKÓW")
    make_contact(workspace, external_id="warsaw", city="Warsaw")
    make_contact(workspace, external_id="lodz", city="ŁÓDŹ")
    make_contact(workspace, external_id="moscow", city="Москва")
    make_contact(workspace, external_id="istanbul", city="İstanbul")
    assert members(workspace, ALL(attr("city", "contains", "kRaK"))) == {"krakow", "shout"}
    assert members(workspace, ALL(attr("city", "contains", "ków"))) == {"krakow", "shout"}
    assert members(workspace, ALL(attr("city", "ends_with", "ÓW"))) == {"krakow", "shout"}
    assert members(workspace, ALL(attr("city", "starts_with", "wAR"))) == {"warsaw"}
    assert members(workspace, ALL(attr("city", "starts_with", "łód"))) == {"lodz"}
    assert members(workspace, ALL(attr("city", "contains", "МОСК"))) == {"moscow"}
    assert members(workspace, ALL(attr("city", "not_contains", "Ów"))) == {"warsaw", "lodz", "moscow", "istanbul"}
    # "İ" lower-cases to two characters: it is compared as it is, so only an exact "İ" matches it.
    assert members(workspace, ALL(attr("city", "starts_with", "ist"))) == set()
    assert members(workspace, ALL(attr("city", "starts_with", "İST"))) == {"istanbul"}
    # eq stays exact.
    assert members(workspace, ALL(attr("city", "eq", "kraków"))) == set()


def test_like_wildcards_in_values_match_themselves(workspace):
    make_contact(workspace, external_id="percent", utm_campaign="50%_off")
    make_contact(workspace, external_id="plain", utm_campaign="500 off")
    make_contact(workspace, external_id="backslash", utm_campaign="a\\b")
    assert members(workspace, ALL(attr("utm_campaign", "contains", "0%_"))) == {"percent"}
    assert members(workspace, ALL(attr("utm_campaign", "starts_with", "50%"))) == {"percent"}
    assert members(workspace, ALL(attr("utm_campaign", "contains", "\\"))) == {"backslash"}


# ---------------------------------------------------------------------------- numbers


def test_integer_fields_compare_exactly_with_fractions(workspace):
    for n in (2, 3):
        set_stats(make_contact(workspace, external_id=f"n{n}"), orders_count=n)
    assert members(workspace, ALL(attr("orders_count", "gt", 2.5))) == {"n3"}
    assert members(workspace, ALL(attr("orders_count", "lte", 2.5))) == {"n2"}
    assert members(workspace, ALL(attr("orders_count", "eq", 2.5))) == set()
    assert members(workspace, ALL(attr("orders_count", "ne", 2.5))) == {"n2", "n3"}
    assert members(workspace, ALL(attr("orders_count", "between", [2.1, 3]))) == {"n3"}


def test_money_sums_are_exact(workspace):
    tenth = make_contact(workspace, external_id="tenth")
    for total in ("0.10", "0.20"):
        make_order(tenth, total=total, ordered_at=ago(days=1))
    assert members(workspace, ALL(orders("sum", "eq", 0.3))) == {"tenth"}
    assert members(workspace, ALL(orders("avg", "eq", 0.15))) == {"tenth"}


def test_measures_over_no_orders(workspace):
    make_contact(workspace, external_id="none")
    buyer = make_contact(workspace, external_id="buyer")
    make_order(buyer, total="10", ordered_at=ago(days=1))
    assert members(workspace, ALL(orders("count", "eq", 0))) == {"none"}
    assert members(workspace, ALL(orders("sum", "lt", 5))) == {"none"}
    assert members(workspace, ALL(orders("avg", "lt", 5))) == set()
    assert members(workspace, ALL(orders("avg", "ne", 5))) == {"none", "buyer"}
    assert members(workspace, ALL(orders("max", "is_not_set"))) == {"none"}
    assert members(workspace, ALL(orders("last_at", "not_in_last", {"last": 7, "unit": "days"}))) == {"none"}
    assert members(workspace, ALL(orders("first_at", "before", "2030-01-01"))) == {"buyer"}


def test_avg_min_max_with_item_filters_use_matching_items_per_order(workspace):
    acme = make_product(workspace, producer="Acme")
    other = make_product(workspace, producer="Other")
    buyer = make_contact(workspace, external_id="buyer")
    # Acme amounts per order: 30 (2 x 15) and 10; the Other item never counts.
    make_order(buyer, items=[(acme, 2, "15"), (other, 1, "100")], ordered_at=ago(days=3))
    make_order(buyer, items=[(acme, 1, "10")], ordered_at=ago(days=2))
    make_order(buyer, items=[(other, 1, "7")], ordered_at=ago(days=1))
    acme_only = {"filters": [{"field": "product.producer", "op": "eq", "value": "Acme"}]}
    assert members(workspace, ALL(orders("count", "eq", 2, **acme_only))) == {"buyer"}
    assert members(workspace, ALL(orders("sum", "eq", 40, **acme_only))) == {"buyer"}
    assert members(workspace, ALL(orders("avg", "eq", 20, **acme_only))) == {"buyer"}
    assert members(workspace, ALL(orders("min", "eq", 10, **acme_only))) == {"buyer"}
    assert members(workspace, ALL(orders("max", "eq", 30, **acme_only))) == {"buyer"}
    assert members(workspace, ALL(orders("last_at", "before", ago(days=1).isoformat(), **acme_only))) == {"buyer"}


def test_largest_and_smallest_item_order_compare_per_order_sums(workspace):
    """max > v / min < v are decided by one order (compiled as "some order's sum passes"): check the edges."""
    acme = make_product(workspace, producer="Acme")
    other = make_product(workspace, producer="Other")
    # Acme sums per order: big 30 and 10 (no single Acme item is over 20, the first order's sum is);
    # small 20.01; other_only has no Acme order at all.
    big = make_contact(workspace, external_id="big")
    make_order(big, items=[(acme, 2, "15"), (other, 1, "100")], ordered_at=ago(days=3))
    make_order(big, items=[(acme, 1, "10")], ordered_at=ago(days=2))
    make_order(make_contact(workspace, external_id="small"), items=[(acme, 1, "20.01")], ordered_at=ago(days=1))
    make_order(make_contact(workspace, external_id="other_only"), items=[(other, 1, "500")], ordered_at=ago(days=1))
    make_contact(workspace, external_id="never")
    acme_only = {"filters": [{"field": "product.producer", "op": "eq", "value": "Acme"}]}
    everyone = {"big", "small", "other_only", "never"}

    assert members(workspace, ALL(orders("max", "gt", 20, **acme_only))) == {"big", "small"}
    assert members(workspace, ALL(orders("max", "gt", 20.01, **acme_only))) == {"big"}
    assert members(workspace, ALL(orders("max", "gte", 30, **acme_only))) == {"big"}
    assert members(workspace, ALL(orders("max", "gt", 20.005, **acme_only))) == {"big", "small"}
    assert members(workspace, ALL(orders("min", "lt", 20.01, **acme_only))) == {"big"}
    assert members(workspace, ALL(orders("min", "lte", 20.01, **acme_only))) == {"big", "small"}
    assert members(workspace, ALL(orders("min", "lt", 10, **acme_only))) == set()
    # Contacts without Acme orders have no largest order: false, and in `none` the exact complement.
    none_over_20 = {"match": "none", "conditions": [orders("max", "gt", 20, **acme_only)]}
    assert members(workspace, none_over_20) == everyone - {"big", "small"}


def test_item_filter_ne_passes_items_without_the_value(workspace):
    unbranded = make_product(workspace, producer=None)
    acme = make_product(workspace, producer="Acme")
    make_order(make_contact(workspace, external_id="unbranded"), items=[(unbranded, 1, "5")], ordered_at=ago(days=1))
    make_order(make_contact(workspace, external_id="acme"), items=[(acme, 1, "5")], ordered_at=ago(days=1))
    make_order(make_contact(workspace, external_id="no_items"), total="5", ordered_at=ago(days=1))
    not_acme = {"filters": [{"field": "product.producer", "op": "ne", "value": "Acme"}]}
    # An order without items has no matching item, so it does not count once item filters are given.
    assert members(workspace, ALL(orders("count", "gte", 1, **not_acme))) == {"unbranded"}


# ---------------------------------------------------------------------------- time


def test_before_after_are_strict_and_between_inclusive(workspace):
    edge = datetime(2024, 1, 1, tzinfo=UTC)
    for name, moment in [
        ("edge", edge),
        ("earlier", edge - timedelta(microseconds=1)),
        ("later", edge + timedelta(seconds=1)),
    ]:
        make_contact(workspace, external_id=name, created_at=moment)
    assert members(workspace, ALL(attr("created_at", "before", "2024-01-01"))) == {"earlier"}
    assert members(workspace, ALL(attr("created_at", "after", "2024-01-01T00:00:00Z"))) == {"later"}
    assert members(workspace, ALL(attr("created_at", "between", ["2024-01-01", "2024-01-01T01:00:00+01:00"]))) == {
        "edge"
    }


def test_iso_offsets_are_converted_to_utc(workspace):
    make_contact(workspace, external_id="c", created_at=datetime(2024, 1, 1, 10, 0, tzinfo=UTC))
    assert members(workspace, ALL(attr("created_at", "before", "2024-01-01T12:00:01+02:00"))) == {"c"}
    assert members(workspace, ALL(attr("created_at", "before", "2024-01-01T12:00:00+02:00"))) == set()


def test_in_last_and_not_in_last_leave_out_future_times(workspace):
    for name, moment in [("past", ago(days=3)), ("old", ago(days=30)), ("future", ago(days=-1)), ("unknown", None)]:
        set_stats(make_contact(workspace, external_id=name), last_seen_at=moment)
    span = {"last": 7, "unit": "days"}
    assert members(workspace, ALL(attr("last_seen_at", "in_last", span))) == {"past"}
    assert members(workspace, ALL(attr("last_seen_at", "not_in_last", span))) == {"old", "unknown"}


def test_months_are_calendar_months_clamped_to_the_month_end(workspace):
    now = datetime(2024, 3, 31, 12, 0, tzinfo=UTC)
    for name, moment in [
        ("leap_day_noon", datetime(2024, 2, 29, 12, 0, tzinfo=UTC)),
        ("just_before", datetime(2024, 2, 29, 11, 59, 59, 999999, tzinfo=UTC)),
    ]:
        set_stats(make_contact(workspace, external_id=name), last_order_at=moment)
    span = {"last": 1, "unit": "months"}
    assert members(workspace, ALL(attr("last_order_at", "in_last", span)), now=now) == {"leap_day_noon"}
    ago_one_month = {"ago": 1, "unit": "months"}
    assert members(workspace, ALL(attr("last_order_at", "before", ago_one_month)), now=now) == {"just_before"}


def test_weeks_are_seven_days(workspace):
    set_stats(make_contact(workspace, external_id="c"), last_seen_at=ago(days=14))
    assert members(workspace, ALL(attr("last_seen_at", "in_last", {"last": 2, "unit": "weeks"}))) == {"c"}
    assert members(workspace, ALL(attr("last_seen_at", "in_last", {"last": 335, "unit": "hours"}))) == set()


def test_birth_date_is_midnight_utc(workspace):
    make_contact(workspace, external_id="born", birth_date=date(1990, 5, 17))
    make_contact(workspace, external_id="unknown")
    assert members(workspace, ALL(attr("birth_date", "before", "1990-05-17T00:00:01Z"))) == {"born"}
    assert members(workspace, ALL(attr("birth_date", "before", "1990-05-17"))) == set()
    assert members(workspace, ALL(attr("birth_date", "after", "1990-05-16T23:59:59Z"))) == {"born"}
    assert members(workspace, ALL(attr("birth_date", "between", ["1990-05-17", "1990-05-17"]))) == {"born"}
    assert (
        members(workspace, ALL(attr("birth_date", "between", ["1990-05-16T00:00:01Z", "1990-05-16T23:59:59Z"])))
        == set()
    )
    assert members(workspace, ALL(attr("birth_date", "not_in_last", {"last": 1, "unit": "days"}))) == {
        "born",
        "unknown",
    }


def test_windows_include_both_ends(workspace):
    contact = make_contact(workspace, external_id="c")
    make_order(contact, total="1", ordered_at=datetime(2024, 1, 1, tzinfo=UTC))
    make_order(contact, total="2", ordered_at=datetime(2024, 1, 31, tzinfo=UTC))
    fixed = {"from": "2024-01-01", "to": "2024-01-31"}
    assert members(workspace, ALL(orders("sum", "eq", 3, window=fixed))) == {"c"}
    assert members(workspace, ALL(orders("sum", "eq", 2, window={"from": "2024-01-01T00:00:00.000001Z"}))) == {"c"}
    make_order(contact, total="4", ordered_at=ago(days=10))
    assert members(workspace, ALL(orders("sum", "eq", 4, window={"last": 10, "unit": "days"}))) == {"c"}


# ---------------------------------------------------------------------------- events, tags, segments


def test_did_not_is_count_eq_0_and_any_counts_every_type(workspace):
    opener = make_contact(workspace, external_id="opener")
    make_event(opener, "email_open", occurred_at=ago(days=1))
    visitor = make_contact(workspace, external_id="visitor")
    make_event(visitor, "page_view", occurred_at=ago(days=1))
    make_contact(workspace, external_id="silent")
    assert members(workspace, ALL(events("email_open", "count", "eq", 0))) == {"visitor", "silent"}
    assert members(workspace, ALL(events("any", "count", "gte", 1))) == {"opener", "visitor"}


def test_custom_event_types_and_filters(workspace):
    EventType.objects.create(workspace=workspace, name="webinar")
    joined = make_contact(workspace, external_id="joined")
    make_event(joined, "webinar", occurred_at=ago(hours=2), device="mobile", campaign="Spring", url="/w/1")
    make_event(make_contact(workspace, external_id="desktop"), "webinar", occurred_at=ago(hours=2), device="desktop")
    mobile = [
        {"field": "device", "op": "eq", "value": "mobile"},
        {"field": "campaign", "op": "contains", "value": "spr"},
    ]
    assert members(workspace, ALL(events("webinar", "count", "gte", 1, filters=mobile))) == {"joined"}
    no_campaign = [{"field": "campaign", "op": "is_not_set"}]
    assert members(workspace, ALL(events("webinar", "count", "gte", 1, filters=no_campaign))) == {"desktop"}


def test_event_properties_compare_strings_as_text_and_numbers_as_numbers(workspace):
    for name, value in [("text", "Gold plan"), ("number", 10), ("numeric_text", "10"), ("flag", True), ("empty", "")]:
        make_event(
            make_contact(workspace, external_id=name), "page_view", occurred_at=ago(hours=1), properties={"p": value}
        )
    make_event(make_contact(workspace, external_id="absent"), "page_view", occurred_at=ago(hours=1))

    def having(op, *value):
        flt = {"field": "properties.p", "op": op}
        if value:
            (flt["value"],) = value
        return members(workspace, ALL(events("page_view", "count", "gte", 1, filters=[flt])))

    assert having("eq", 10) == {"number"}
    assert having("eq", "10") == {"numeric_text"}
    assert having("gte", 9.5) == {"number"}
    assert having("contains", "GOLD") == {"text"}
    assert having("in", ["10", "Gold plan"]) == {"numeric_text", "text"}
    assert having("ne", "10") == {"text", "number", "flag", "empty", "absent"}
    assert having("is_set") == {"text", "number", "numeric_text", "flag"}
    assert having("is_not_set") == {"empty", "absent"}


def test_tags_have_any_all_none_by_exact_name(workspace):
    make_contact(workspace, external_id="both", tags=["vip", "newsletter"])
    make_contact(workspace, external_id="vip", tags=["vip"])
    make_contact(workspace, external_id="shouting", tags=["VIP"])
    make_contact(workspace, external_id="untagged")
    names = ["vip", "newsletter"]
    assert members(workspace, ALL({"type": "tag", "op": "has_any", "value": names})) == {"both", "vip"}
    assert members(workspace, ALL({"type": "tag", "op": "has_all", "value": names + ["vip"]})) == {"both"}
    assert members(workspace, ALL({"type": "tag", "op": "has_none", "value": names})) == {"shouting", "untagged"}


def test_segment_reference_evaluates_the_rule_now_not_the_stored_membership(workspace):
    vip = make_contact(workspace, external_id="vip", tags=["vip"])
    regular = make_contact(workspace, external_id="regular")
    segment = Segment.objects.create(
        workspace=workspace, name="VIP", definition=ALL({"type": "tag", "op": "has_any", "value": ["vip"]})
    )
    SegmentMember.objects.create(segment=segment, contact=regular)  # stale stored membership
    assert members(workspace, ALL({"type": "segment", "op": "in", "segment": segment.pk})) == {vip.external_id}
    assert members(workspace, ALL({"type": "segment", "op": "not_in", "segment": segment.pk})) == {"regular"}


def test_segment_references_inline_through_several_levels(workspace):
    make_contact(workspace, external_id="pl", country="PL")
    make_contact(workspace, external_id="de", country="DE")
    base = Segment.objects.create(workspace=workspace, name="PL", definition=ALL(attr("country", "eq", "PL")))
    middle = Segment.objects.create(
        workspace=workspace, name="not PL", definition=ALL({"type": "segment", "op": "not_in", "segment": base.pk})
    )
    everyone = Segment.objects.create(workspace=workspace, name="all", definition={"match": "any", "conditions": []})
    definition = ALL(
        {"type": "segment", "op": "in", "segment": middle.pk}, {"type": "segment", "op": "in", "segment": everyone.pk}
    )
    assert members(workspace, definition) == {"de"}


# ---------------------------------------------------------------------------- custom attributes


def test_number_attribute_counts_json_numbers_only(workspace):
    workspace.attribute_types = {"score": "number"}
    workspace.save()
    for name, value in [("int", 7), ("float", 7.5), ("text", "8"), ("flag", True), ("null", None)]:
        make_contact(workspace, external_id=name, attributes={"score": value})
    make_contact(workspace, external_id="absent")
    assert members(workspace, ALL(attr("attributes.score", "gte", 7))) == {"int", "float"}
    assert members(workspace, ALL(attr("attributes.score", "is_not_set"))) == {"text", "flag", "null", "absent"}
    assert members(workspace, ALL(attr("attributes.score", "ne", 7))) == {"float", "text", "flag", "null", "absent"}


def test_inferred_boolean_attribute_and_is_false_on_missing(workspace):
    make_contact(workspace, external_id="yes", attributes={"beta": True})
    make_contact(workspace, external_id="no", attributes={"beta": False})
    make_contact(workspace, external_id="absent")
    make_contact(workspace, external_id="null", attributes={"beta": None})
    assert build_catalog(workspace).field("attributes.beta").type == "boolean"
    assert members(workspace, ALL(attr("attributes.beta", "is_true"))) == {"yes"}
    assert members(workspace, ALL(attr("attributes.beta", "is_false"))) == {"no", "absent", "null"}


def test_text_attribute_counts_non_empty_strings_only(workspace):
    make_contact(workspace, external_id="gold", attributes={"plan": "Gold"})
    make_contact(workspace, external_id="number", attributes={"plan": 3})
    make_contact(workspace, external_id="empty", attributes={"plan": ""})
    assert build_catalog(workspace).field("attributes.plan").type == "text"  # mixed kinds: text
    assert members(workspace, ALL(attr("attributes.plan", "contains", "OL"))) == {"gold"}
    assert members(workspace, ALL(attr("attributes.plan", "is_set"))) == {"gold"}
    assert members(workspace, ALL(attr("attributes.plan", "ne", "Gold"))) == {"number", "empty"}


def test_declared_datetime_attribute_reads_iso_strings_in_utc(workspace):
    workspace.attribute_types = {"trial_ends": "datetime"}
    workspace.save()
    for name, value in [
        ("date", "2024-06-10"),
        ("offset", "2024-06-10T01:30:00.25+02:00"),  # 2024-06-09 23:30:00.25 UTC
        ("zulu", "2024-06-10T00:00:00.000001Z"),
        ("impossible", "2024-02-30"),
        ("number", 20240610),
        ("words", "next week"),
    ]:
        make_contact(workspace, external_id=name, attributes={"trial_ends": value})
    assert members(workspace, ALL(attr("attributes.trial_ends", "before", "2024-06-10"))) == {"offset"}
    assert members(workspace, ALL(attr("attributes.trial_ends", "after", "2024-06-10"))) == {"zulu"}
    assert members(
        workspace, ALL(attr("attributes.trial_ends", "between", ["2024-06-09T23:30:00.25Z", "2024-06-10"]))
    ) == {
        "date",
        "offset",
    }
    assert members(workspace, ALL(attr("attributes.trial_ends", "is_not_set"))) == {"impossible", "number", "words"}


def test_attribute_keys_with_dots_and_spaces(workspace):
    make_contact(workspace, external_id="c", attributes={"a.b": 1, "nick name": "Bo"})
    make_contact(workspace, external_id="other", attributes={"a": {"b": 1}})
    assert members(workspace, ALL(attr("attributes.a.b", "eq", 1))) == {"c"}
    assert members(workspace, ALL(attr("attributes.nick name", "eq", "Bo"))) == {"c"}


# ---------------------------------------------------------------------------- the compiler's contract


def test_empty_top_level_group_is_every_contact_whatever_the_match(workspace, other_workspace):
    make_contact(workspace, external_id="a")
    make_contact(workspace, external_id="b")
    make_contact(other_workspace, external_id="elsewhere")
    for match in ("all", "any", "none"):
        assert members(workspace, {"match": match, "conditions": []}) == {"a", "b"}


def test_a_parsed_group_can_be_passed_directly(workspace):
    make_contact(workspace, external_id="pl", country="PL")
    group = Group(match="all", conditions=(AttributeCondition(field="country", op="eq", value="PL"),))
    assert members(workspace, group) == {"pl"}


def test_compiling_runs_no_queries_and_keeps_the_input(workspace):
    catalog = build_catalog(workspace)
    definition = ALL(attr("country", "eq", "PL"), orders("sum", "gt", 5, window={"last": 6, "unit": "months"}))
    group = parse_definition(definition, catalog=catalog)
    before = group.as_json()
    with CaptureQueriesContext(connection) as queries:
        compile_definition(group, catalog=catalog, now=NOW, resolve_segment=lambda i: pytest.fail("no references"))
    assert len(queries) == 0
    assert group.as_json() == before


def test_compiler_refuses_what_it_does_not_know():
    catalog = Catalog(workspace_id=1)
    unknown = Group(match="all", conditions=(AttributeCondition(field="colour", op="eq", value="red"),))
    with pytest.raises(CompileError):
        compile_definition(unknown, catalog=catalog, now=NOW, resolve_segment=lambda i: None)
    with pytest.raises(CompileError):
        compile_definition(Group(match="xor", conditions=()), catalog=catalog, now=NOW, resolve_segment=lambda i: None)
    with pytest.raises(CompileError):
        compile_definition(
            Group(match="all", conditions=()),
            catalog=catalog,
            now=NOW.replace(tzinfo=None),
            resolve_segment=lambda i: None,
        )


def test_contacts_are_never_multiplied_by_joins(workspace):
    contact = make_contact(workspace, external_id="busy", tags=["vip", "b2b"])
    for day in range(3):
        make_order(contact, total="10", ordered_at=ago(days=day + 1))
        make_event(contact, "email_open", occurred_at=ago(days=day + 1))
    definition = ANY(
        orders("count", "gte", 1),
        events("email_open", "count", "gte", 1),
        {"type": "tag", "op": "has_any", "value": ["vip", "b2b"]},
        attr("total_spent", "gte", 0),
    )
    from segments_app.selectors import segment_contacts

    assert segment_contacts(workspace=workspace, definition=definition, now=NOW).count() == 1


def test_compile_node_tells_who_passes_each_condition(workspace):
    from contacts.models import Contact
    from segments_app.compiler import compile_node

    make_contact(workspace, external_id="pl", country="PL")
    make_contact(workspace, external_id="bare")
    catalog = build_catalog(workspace)
    group = parse_definition(ALL(attr("country", "eq", "PL"), ANY(attr("city", "is_set"))), catalog=catalog)
    contacts = Contact.objects.filter(workspace=workspace)

    def passing(node):
        q = compile_node(node, catalog=catalog, now=NOW, resolve_segment=lambda i: None)
        return set(contacts.filter(q).values_list("external_id", flat=True))

    assert passing(group.conditions[0]) == {"pl"}
    assert passing(group.conditions[1]) == set()
