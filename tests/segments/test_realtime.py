"""Real time: changed contacts are re-evaluated against the segments that use the changed data."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from contacts.models import Contact, ContactStats
from segments_app import realtime, tasks
from segments_app.membership import recompute_membership
from segments_app.models import RealtimeQueueEntry, RealtimeState, Segment, SegmentChange, SegmentSnapshot
from segments_app.realtime import definition_kinds, on_contacts_changed
from tests.factories import make_contact, make_event

POLISH = {"match": "all", "conditions": [{"type": "attribute", "field": "country", "op": "eq", "value": "PL"}]}
VIP = {"match": "all", "conditions": [{"type": "tag", "op": "has_any", "value": ["vip"]}]}
OPENED_LAST_WEEK = {
    "match": "all",
    "conditions": [
        {
            "type": "event",
            "event": "email_open",
            "window": {"last": 7, "unit": "days"},
            "measure": "count",
            "op": "gte",
            "value": 1,
        }
    ],
}
BIG_SPENDERS = {"match": "all", "conditions": [{"type": "attribute", "field": "total_spent", "op": "gt", "value": 100}]}


def cond(**node) -> dict:
    return {"match": "all", "conditions": [node]}


# --- which data a definition uses -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("definition", "kinds"),
    [
        (POLISH, {"contact"}),
        (cond(type="attribute", field="attributes.plan", op="eq", value="pro"), {"contact"}),
        (VIP, {"tags"}),
        (cond(type="orders", measure="count", op="gte", value=1), {"orders"}),
        (OPENED_LAST_WEEK, {"events"}),
        (BIG_SPENDERS, {"orders"}),
        (cond(type="attribute", field="last_seen_at", op="is_set"), {"events"}),
        (cond(type="attribute", field="cart_open_since", op="is_set"), {"orders", "events"}),
        (cond(type="attribute", field="lifecycle_stage", op="eq", value="active"), {"orders"}),
        (cond(type="attribute", field="engagement_score", op="gt", value=50), {"events"}),
        (
            {"match": "none", "conditions": [POLISH, {"match": "any", "conditions": [VIP["conditions"][0]]}]},
            {"contact", "tags"},
        ),
        ({"match": "all", "conditions": []}, {"contact"}),  # every contact: depends on which exist
    ],
)
def test_definition_kinds(definition, kinds):
    assert definition_kinds(definition, definitions={}) == kinds


def test_segment_references_count_transitively():
    definitions = {
        1: VIP,
        2: {
            "match": "any",
            "conditions": [{"type": "segment", "op": "in", "segment": 1}, BIG_SPENDERS["conditions"][0]],
        },
    }
    top = {"match": "all", "conditions": [POLISH["conditions"][0], {"type": "segment", "op": "not_in", "segment": 2}]}

    assert definition_kinds(top, definitions=definitions) == {"contact", "tags", "orders"}


def test_a_reference_to_an_unknown_segment_counts_as_every_kind():
    top = cond(type="segment", op="in", segment=404)
    assert definition_kinds(top, definitions={}) == {"contact", "tags", "orders", "events"}


def test_every_computed_figure_of_the_catalog_says_what_it_is_derived_from():
    from segments_app.catalog import COMPUTED_FIELDS

    assert {f.key for f in COMPUTED_FIELDS} == set(realtime.COMPUTED_FIGURE_KINDS)


# --- the ingest hook, run in-process (no broker in tests) -------------------------------------------


def make_segment(workspace, definition, name="s", refresh_minutes=60) -> Segment:
    segment = Segment.objects.create(
        workspace=workspace, name=name, definition=definition, refresh_minutes=refresh_minutes
    )
    recompute_membership(segment_id=segment.pk, trigger="manual")
    return segment


def realtime_changes(segment) -> list[tuple[str, str]]:
    rows = SegmentChange.objects.filter(segment=segment, snapshot__trigger="real_time").order_by("pk")
    return [(row.contact.external_id, row.change) for row in rows]


def test_an_event_makes_the_contact_enter_segments_that_use_events(workspace):
    anna = make_contact(workspace, external_id="anna")
    openers = make_segment(workspace, OPENED_LAST_WEEK, name="openers")
    make_event(anna, "email_open")

    on_contacts_changed(workspace_id=workspace.pk, contact_ids=[anna.pk], data_kinds={"events"})

    assert realtime_changes(openers) == [("anna", "entered")]
    snapshot = SegmentSnapshot.objects.filter(segment=openers).latest("pk")
    assert (snapshot.trigger, snapshot.size, snapshot.entered) == ("real_time", 1, 1)
    assert not RealtimeQueueEntry.objects.exists()


def test_segments_that_do_not_use_the_changed_kind_are_not_re_evaluated(workspace):
    anna = make_contact(workspace, external_id="anna")
    vips = make_segment(workspace, VIP, name="vips")
    anna.tags.create(workspace=workspace, name="vip", through_defaults={"workspace": workspace})  # nobody told

    on_contacts_changed(workspace_id=workspace.pk, contact_ids=[anna.pk], data_kinds={"events"})

    assert realtime_changes(vips) == []
    on_contacts_changed(workspace_id=workspace.pk, contact_ids=[anna.pk], data_kinds={"tags"})
    assert realtime_changes(vips) == [("anna", "entered")]


def test_a_computed_figure_follows_the_data_it_is_derived_from(workspace):
    anna = make_contact(workspace, external_id="anna")
    spenders = make_segment(workspace, BIG_SPENDERS, name="spenders")
    ContactStats.objects.filter(contact=anna).update(total_spent=500)

    on_contacts_changed(workspace_id=workspace.pk, contact_ids=[anna.pk], data_kinds={"events"})
    assert realtime_changes(spenders) == []
    on_contacts_changed(workspace_id=workspace.pk, contact_ids=[anna.pk], data_kinds={"orders"})
    assert realtime_changes(spenders) == [("anna", "entered")]


def test_a_contact_change_reaches_every_segment_because_it_may_be_a_new_contact(workspace):
    never_ordered = make_segment(workspace, cond(type="orders", measure="count", op="eq", value=0), name="no orders")
    newcomer = make_contact(workspace, external_id="new")

    on_contacts_changed(workspace_id=workspace.pk, contact_ids=[newcomer.pk], data_kinds={"contact"})

    assert realtime_changes(never_ordered) == [("new", "entered")]


def test_a_new_contact_enters_a_segment_of_every_contact(workspace):
    everyone = make_segment(workspace, {"match": "all", "conditions": []}, name="everyone")
    outside_everyone = make_segment(
        workspace, cond(type="segment", op="not_in", segment=everyone.pk), name="outside everyone"
    )
    newcomer = make_contact(workspace, external_id="new")

    on_contacts_changed(workspace_id=workspace.pk, contact_ids=[newcomer.pk], data_kinds={"contact"})

    assert realtime_changes(everyone) == [("new", "entered")]
    assert realtime_changes(outside_everyone) == []
    assert definition_kinds({"match": "any", "conditions": []}, definitions={}) == frozenset({"contact"})


def test_a_contact_leaves_in_real_time_too(workspace):
    anna = make_contact(workspace, external_id="anna", country="PL")
    poles = make_segment(workspace, POLISH, name="poles")
    Contact.objects.filter(pk=anna.pk).update(country="DE")

    on_contacts_changed(workspace_id=workspace.pk, contact_ids=[anna.pk], data_kinds={"contact"})

    assert realtime_changes(poles) == [("anna", "exited")]
    assert Segment.objects.get(pk=poles.pk).size == 0


def test_on_demand_and_never_computed_segments_are_left_alone(workspace):
    anna = make_contact(workspace, external_id="anna", country="PL")
    on_demand = make_segment(workspace, POLISH, name="on demand", refresh_minutes=0)
    fresh = Segment.objects.create(workspace=workspace, name="new", definition=POLISH)
    Contact.objects.filter(pk=anna.pk).update(country="DE")

    on_contacts_changed(workspace_id=workspace.pk, contact_ids=[anna.pk], data_kinds={"contact"})

    assert realtime_changes(on_demand) == []
    assert not SegmentSnapshot.objects.filter(segment=fresh).exists()
    assert not RealtimeQueueEntry.objects.exists()  # nothing to keep current: nothing queued


def test_a_broken_segment_is_recorded_and_the_others_still_update(workspace):
    anna = make_contact(workspace, external_id="anna", country="PL")
    target = Segment.objects.create(workspace=workspace, name="target", definition=VIP)
    broken = make_segment(workspace, cond(type="segment", op="in", segment=target.pk), name="broken")
    target.delete()
    poles = Segment.objects.create(workspace=workspace, name="poles", definition=POLISH)
    recompute_membership(segment_id=poles.pk, trigger="manual")
    Contact.objects.filter(pk=anna.pk).update(country="DE")

    on_contacts_changed(workspace_id=workspace.pk, contact_ids=[anna.pk], data_kinds={"contact"})

    assert realtime_changes(poles) == [("anna", "exited")]
    broken.refresh_from_db()
    assert broken.status == "failed" and broken.last_error
    assert not RealtimeQueueEntry.objects.exists()


# --- coalescing ---------------------------------------------------------------------------------------


@pytest.fixture
def sent_tasks(monkeypatch) -> list[int]:
    sent: list[int] = []
    monkeypatch.setattr(tasks.realtime_task, "delay", lambda workspace_id: sent.append(workspace_id))
    return sent


def test_a_burst_of_ingest_calls_shares_one_task(workspace, sent_tasks):
    contacts = [make_contact(workspace, external_id=f"p{n}", country="PL") for n in range(10)]
    poles = make_segment(workspace, POLISH, name="poles")
    Contact.objects.update(country="DE")

    for contact in contacts:
        on_contacts_changed(workspace_id=workspace.pk, contact_ids=[contact.pk], data_kinds={"contact"})

    assert sent_tasks == [workspace.pk]
    assert RealtimeQueueEntry.objects.count() == 10
    assert realtime.process_workspace_queue(workspace_id=workspace.pk) == 10
    assert SegmentSnapshot.objects.filter(segment=poles, trigger="real_time").get().exited == 10

    on_contacts_changed(workspace_id=workspace.pk, contact_ids=[contacts[0].pk], data_kinds={"contact"})
    assert sent_tasks == [workspace.pk, workspace.pk]  # the task started: the next call needs a new one


def test_a_task_lost_on_its_way_is_replaced(workspace, sent_tasks):
    anna = make_contact(workspace, external_id="anna")
    make_segment(workspace, POLISH)
    on_contacts_changed(workspace_id=workspace.pk, contact_ids=[anna.pk], data_kinds={"contact"})
    on_contacts_changed(workspace_id=workspace.pk, contact_ids=[anna.pk], data_kinds={"contact"})
    assert sent_tasks == [workspace.pk]

    RealtimeState.objects.filter(workspace=workspace).update(enqueued_at=timezone.now() - timedelta(minutes=5))
    on_contacts_changed(workspace_id=workspace.pk, contact_ids=[anna.pk], data_kinds={"contact"})
    assert sent_tasks == [workspace.pk, workspace.pk]


def test_the_dispatcher_picks_up_queued_contacts_nobody_is_processing(workspace, sent_tasks):
    anna = make_contact(workspace, external_id="anna")
    make_segment(workspace, POLISH)
    RealtimeQueueEntry.objects.create(workspace=workspace, contact_id=anna.pk, kinds=1)

    assert realtime.enqueue_pending_workspaces() == [workspace.pk]
    assert sent_tasks == [workspace.pk]


def test_unknown_data_kinds_are_refused(workspace):
    with pytest.raises(ValueError):
        on_contacts_changed(workspace_id=workspace.pk, contact_ids=[1], data_kinds={"weather"})
