"""Property tests: the SQL the compiler builds agrees with the independent reference evaluator.

Random small worlds and random valid definitions (every condition type, operator,
measure, filter, window kind and nesting, including `none` and references to saved
segments); each example loads its world in a savepoint that is rolled back. Run with
HYPOTHESIS_PROFILE=ci for a few hundred examples per property.
"""

from __future__ import annotations

import os

import pytest
from django.db import connection, transaction
from hypothesis import event, given, settings
from hypothesis import strategies as st

from contacts.models import Contact
from segments_app.catalog import build_catalog
from segments_app.definition import DefinitionError, WorkspaceSegments, parse_definition
from segments_app.selectors import matching_ids, segment_contacts

from . import reference
from .loading import load
from .strategies import definitions, history_condition, leaves, mutated, with_segment_ids, worlds

PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def sql_members(workspace, definition, now) -> set[str]:
    """Members by both ways a definition becomes SQL: over the contacts (explanations, samples) and as the
    ids previews and recomputes count (rooted on the figures, or straight from the rows); they must agree."""
    over_contacts = set(
        segment_contacts(workspace=workspace, definition=definition, now=now).values_list("external_id", flat=True)
    )
    catalog = build_catalog(workspace, discover_attributes=False)
    segments = WorkspaceSegments(workspace.pk)
    group = parse_definition(definition, catalog=catalog, segments=segments)
    matching = matching_ids(workspace=workspace, group=group, catalog=catalog, segments=segments, now=now)
    sql, params = matching.sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall()]
    assert len(ids) == len(set(ids)), "the matching ids repeat a contact"
    counted = set(Contact.objects.filter(pk__in=ids).values_list("external_id", flat=True))
    assert counted == over_contacts
    assert matching.count() == len(over_contacts)
    return over_contacts


@pytest.mark.django_db
@settings(PROFILE)
@given(data=st.data())
def test_compiled_sql_agrees_with_the_reference(data):
    world = data.draw(worlds(), label="world")
    definition = data.draw(definitions(world), label="definition")
    with transaction.atomic():
        workspace, segment_ids = load(world)
        real = with_segment_ids(definition, segment_ids)
        expected = reference.members(world.reference_world(segment_ids), real, world.now)
        event(
            "members: none"
            if not expected
            else "members: all"
            if len(expected) == len(world.contacts)
            else "members: some"
        )
        assert sql_members(workspace, real, world.now) == expected
        transaction.set_rollback(True)


@pytest.mark.django_db
@settings(PROFILE)
@given(data=st.data())
def test_conditions_answered_by_stored_figures_agree_with_the_history(data):
    """Orders and event conditions without filters are answered from the stored figures (order count and
    total, first and last order, last open, click and activity); the reference reads the history. Each
    one alone, negated, in an OR with another condition, and through a reference to a saved segment."""
    world = data.draw(worlds(with_segments=False), label="world")
    condition = data.draw(history_condition(world), label="condition")
    world.segments.append({"match": "all", "conditions": [condition]})
    shape = data.draw(st.sampled_from(["alone", "none", "any", "in segment", "not in segment"]), label="shape")
    event(f"shape: {shape}")
    if shape == "alone":
        definition = {"match": "all", "conditions": [condition]}
    elif shape == "none":
        definition = {"match": "none", "conditions": [condition]}
    elif shape == "any":
        other = data.draw(leaves(world), label="other")
        definition = {"match": "any", "conditions": [other, condition]}
    else:
        op = "in" if shape == "in segment" else "not_in"
        other = data.draw(leaves(world), label="other")
        definition = {"match": "any", "conditions": [{"type": "segment", "op": op, "segment": 1}, other]}
    with transaction.atomic():
        workspace, segment_ids = load(world)
        real = with_segment_ids(definition, segment_ids)
        expected = reference.members(world.reference_world(segment_ids), real, world.now)
        assert sql_members(workspace, real, world.now) == expected
        transaction.set_rollback(True)


@pytest.mark.django_db
@settings(PROFILE)
@given(data=st.data())
def test_none_is_the_exact_complement_of_any(data):
    world = data.draw(worlds(), label="world")
    inner = data.draw(definitions(world, max_depth=2), label="definition")
    conditions = inner["conditions"] or [{"type": "tag", "op": "has_any", "value": ["vip"]}]
    with transaction.atomic():
        workspace, segment_ids = load(world)
        any_of = with_segment_ids({"match": "any", "conditions": conditions}, segment_ids)
        none_of = with_segment_ids({"match": "none", "conditions": conditions}, segment_ids)
        everyone = {c.key for c in world.contacts}
        matched = sql_members(workspace, any_of, world.now)
        unmatched = sql_members(workspace, none_of, world.now)
        assert matched | unmatched == everyone
        assert matched & unmatched == set()
        transaction.set_rollback(True)


@pytest.mark.django_db
@settings(PROFILE)
@given(data=st.data())
def test_invalid_definitions_only_ever_raise_definition_error(data):
    world = data.draw(worlds(max_contacts=2, with_segments=False), label="world")
    broken = data.draw(mutated(data.draw(definitions(world, max_depth=3))), label="mutated")
    with transaction.atomic():
        workspace, _ = load(world)
        try:
            queryset = segment_contacts(workspace=workspace, definition=broken, now=world.now)
        except DefinitionError as exc:
            assert exc.errors and all(set(e) == {"path", "message"} for e in exc.errors)
        else:
            # Still a valid definition after the mutation: it must run.
            list(queryset.values_list("pk", flat=True))
        transaction.set_rollback(True)


@pytest.mark.django_db
@settings(PROFILE)
@given(data=st.data())
def test_generated_definitions_are_valid_and_round_trip(data):
    world = data.draw(worlds(max_contacts=3), label="world")
    definition = data.draw(definitions(world), label="definition")
    with transaction.atomic():
        workspace, segment_ids = load(world)
        real = with_segment_ids(definition, segment_ids)
        catalog = build_catalog(workspace)
        group = parse_definition(real, catalog=catalog, segments=WorkspaceSegments(workspace.pk))
        again = parse_definition(group.as_json(), catalog=catalog, segments=WorkspaceSegments(workspace.pk))
        assert again == group
        transaction.set_rollback(True)
