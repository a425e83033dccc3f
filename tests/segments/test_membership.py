"""Stored membership: recompute writes members, entries, exits and a snapshot, all or nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from contacts.models import Contact
from segments_app import membership
from segments_app.membership import recompute_contacts, recompute_membership, run_recompute
from segments_app.models import Segment, SegmentChange, SegmentMember, SegmentSnapshot
from tests.factories import make_contact

POLISH = {"match": "all", "conditions": [{"type": "attribute", "field": "country", "op": "eq", "value": "PL"}]}
VIP = {"match": "all", "conditions": [{"type": "tag", "op": "has_any", "value": ["vip"]}]}


def make_segment(workspace, definition=POLISH, **fields) -> Segment:
    return Segment.objects.create(
        workspace=workspace, name=fields.pop("name", "Poles"), definition=definition, **fields
    )


def members(segment: Segment) -> set[str]:
    return set(SegmentMember.objects.filter(segment=segment).values_list("contact__external_id", flat=True))


def changes(segment: Segment) -> list[tuple[str, str]]:
    rows = SegmentChange.objects.filter(segment=segment).order_by("pk")
    return [(row.contact.external_id, row.change) for row in rows]


def move(contact: Contact, country: str | None) -> None:
    Contact.objects.filter(pk=contact.pk).update(country=country)


def test_first_recompute_stores_every_match_as_entered(workspace):
    make_contact(workspace, external_id="anna", country="PL")
    make_contact(workspace, external_id="jan", country="PL")
    make_contact(workspace, external_id="hans", country="DE")
    segment = make_segment(workspace)

    snapshot = recompute_membership(segment_id=segment.pk, trigger="manual")

    assert members(segment) == {"anna", "jan"}
    assert (snapshot.size, snapshot.entered, snapshot.exited, snapshot.trigger) == (2, 2, 0, "manual")
    assert sorted(changes(segment)) == [("anna", "entered"), ("jan", "entered")]
    assert set(SegmentChange.objects.values_list("snapshot_id", flat=True)) == {snapshot.pk}
    segment.refresh_from_db()
    assert (segment.size, segment.status, segment.computed_at) == (2, "fresh", snapshot.computed_at)


def test_recompute_records_who_entered_and_who_left(workspace):
    anna = make_contact(workspace, external_id="anna", country="PL")
    make_contact(workspace, external_id="jan", country="PL")
    hans = make_contact(workspace, external_id="hans", country="DE")
    segment = make_segment(workspace)
    recompute_membership(segment_id=segment.pk, trigger="manual")
    move(anna, "FR")
    move(hans, "PL")

    snapshot = recompute_membership(segment_id=segment.pk, trigger="schedule")

    assert members(segment) == {"jan", "hans"}
    assert (snapshot.size, snapshot.entered, snapshot.exited, snapshot.trigger) == (2, 1, 1, "schedule")
    assert sorted(changes(segment)[2:]) == [("anna", "exited"), ("hans", "entered")]
    assert all(c.at == snapshot.computed_at for c in SegmentChange.objects.filter(snapshot=snapshot))


def test_a_contact_who_stays_keeps_the_time_it_entered(workspace):
    make_contact(workspace, external_id="jan", country="PL")
    segment = make_segment(workspace)
    first = recompute_membership(segment_id=segment.pk, trigger="manual")
    make_contact(workspace, external_id="ola", country="PL")

    recompute_membership(segment_id=segment.pk, trigger="manual", now=first.computed_at + timedelta(hours=1))

    since = dict(SegmentMember.objects.filter(segment=segment).values_list("contact__external_id", "since"))
    assert since == {"jan": first.computed_at, "ola": first.computed_at + timedelta(hours=1)}


def test_recompute_when_nothing_changed_writes_only_the_snapshot(workspace):
    for n in range(5):
        make_contact(workspace, external_id=f"p{n}", country="PL")
    segment = make_segment(workspace)
    recompute_membership(segment_id=segment.pk, trigger="manual")
    member_rows = list(SegmentMember.objects.filter(segment=segment).order_by("pk").values_list("pk", "since"))
    change_rows = SegmentChange.objects.count()
    row_versions = _member_row_versions(segment)

    snapshot = recompute_membership(segment_id=segment.pk, trigger="schedule")

    assert (snapshot.size, snapshot.entered, snapshot.exited) == (5, 0, 0)
    assert list(SegmentMember.objects.filter(segment=segment).order_by("pk").values_list("pk", "since")) == member_rows
    assert SegmentChange.objects.count() == change_rows
    assert SegmentSnapshot.objects.filter(segment=segment).count() == 2
    assert _member_row_versions(segment) == row_versions


def _member_row_versions(segment: Segment) -> list | None:
    """PostgreSQL's xmin of every member row: changes if a row was rewritten, even to the same values."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, xmin::text FROM segments_app_segmentmember WHERE segment_id = %s ORDER BY id", [segment.pk]
        )
        return cursor.fetchall()


def test_a_crash_midway_leaves_the_previous_membership(workspace, monkeypatch):
    anna = make_contact(workspace, external_id="anna", country="PL")
    make_contact(workspace, external_id="hans", country="DE")
    segment = make_segment(workspace)
    recompute_membership(segment_id=segment.pk, trigger="manual")
    move(anna, "FR")

    def crash(**kwargs):
        raise RuntimeError("worker died after the diff was written")

    monkeypatch.setattr(membership, "_mark_fresh", crash)
    with pytest.raises(RuntimeError):
        recompute_membership(segment_id=segment.pk, trigger="schedule")

    assert members(segment) == {"anna"}
    assert changes(segment) == [("anna", "entered")]
    assert SegmentSnapshot.objects.filter(segment=segment).count() == 1
    segment.refresh_from_db()
    assert segment.size == 1


def test_partial_recompute_touches_only_the_given_contacts(workspace):
    anna = make_contact(workspace, external_id="anna", country="PL")
    jan = make_contact(workspace, external_id="jan", country="PL")
    hans = make_contact(workspace, external_id="hans", country="DE")
    eva = make_contact(workspace, external_id="eva", country="DE")
    segment = make_segment(workspace)
    recompute_membership(segment_id=segment.pk, trigger="manual")
    move(anna, "FR")
    move(jan, "FR")
    move(hans, "PL")
    move(eva, "PL")

    snapshot = recompute_contacts(segment_id=segment.pk, contact_ids=[anna.pk, hans.pk])

    # jan and eva changed too, but were not named: they wait for their own update or the next full recompute.
    assert members(segment) == {"jan", "hans"}
    assert (snapshot.trigger, snapshot.entered, snapshot.exited, snapshot.size) == ("real_time", 1, 1, 2)
    assert sorted(changes(segment)[2:]) == [("anna", "exited"), ("hans", "entered")]
    segment.refresh_from_db()
    assert segment.size == 2


def test_partial_recompute_without_changes_writes_nothing(workspace):
    anna = make_contact(workspace, external_id="anna", country="PL")
    segment = make_segment(workspace)
    recompute_membership(segment_id=segment.pk, trigger="manual")

    assert recompute_contacts(segment_id=segment.pk, contact_ids=[anna.pk]) is None

    assert SegmentSnapshot.objects.filter(segment=segment).count() == 1
    assert SegmentChange.objects.filter(segment=segment).count() == 1


def test_partial_recompute_waits_for_the_first_full_one(workspace):
    anna = make_contact(workspace, external_id="anna", country="PL")
    segment = make_segment(workspace)

    assert recompute_contacts(segment_id=segment.pk, contact_ids=[anna.pk]) is None
    assert members(segment) == set()


def test_partial_recompute_in_chunks_makes_one_snapshot(workspace, monkeypatch):
    monkeypatch.setattr(membership, "_CONTACT_CHUNK", 2)
    people = [make_contact(workspace, external_id=f"p{n}", country="DE") for n in range(5)]
    segment = make_segment(workspace)
    recompute_membership(segment_id=segment.pk, trigger="manual")
    Contact.objects.filter(pk__in=[p.pk for p in people]).update(country="PL")

    snapshot = recompute_contacts(segment_id=segment.pk, contact_ids=[p.pk for p in people])

    assert (snapshot.size, snapshot.entered, snapshot.exited) == (5, 5, 0)
    assert SegmentChange.objects.filter(snapshot=snapshot).count() == 5
    assert SegmentSnapshot.objects.filter(segment=segment).count() == 2


def test_a_deleted_contact_leaves_the_stored_membership_with_it(workspace):
    anna = make_contact(workspace, external_id="anna", country="PL")
    make_contact(workspace, external_id="jan", country="PL")
    segment = make_segment(workspace)
    recompute_membership(segment_id=segment.pk, trigger="manual")

    anna.delete()
    snapshot = recompute_membership(segment_id=segment.pk, trigger="manual")

    assert members(segment) == {"jan"}
    assert (snapshot.size, snapshot.entered, snapshot.exited) == (1, 0, 0)


def test_a_failed_recompute_is_recorded_on_the_segment_and_cleared_by_success(workspace):
    other = make_segment(workspace, name="Other")
    segment = make_segment(
        workspace, definition={"match": "all", "conditions": [{"type": "segment", "op": "in", "segment": other.pk}]}
    )
    other.delete()  # the reference now points nowhere

    for _ in range(2):
        with pytest.raises(Exception):  # noqa: B017 - whatever the engine raises, it must be recorded
            run_recompute(segment_id=segment.pk, trigger="schedule")

    segment.refresh_from_db()
    assert segment.status == "failed"
    assert segment.error_count == 2
    assert segment.last_error
    assert segment.next_attempt_at > timezone.now()
    assert not SegmentSnapshot.objects.filter(segment=segment).exists()

    Segment.objects.filter(pk=segment.pk).update(definition=POLISH)
    run_recompute(segment_id=segment.pk, trigger="manual")
    segment.refresh_from_db()
    assert (segment.status, segment.error_count, segment.last_error, segment.next_attempt_at) == ("fresh", 0, "", None)


def test_a_scheduled_run_of_a_segment_someone_just_recomputed_does_nothing(workspace):
    segment = make_segment(workspace, refresh_minutes=60)
    recompute_membership(segment_id=segment.pk, trigger="manual")

    assert run_recompute(segment_id=segment.pk, trigger="schedule") is None
    assert SegmentSnapshot.objects.filter(segment=segment).count() == 1


def test_failure_backoff_grows_and_is_capped(settings):
    settings.SEGMENT_RETRY_MAX_MINUTES = 10
    assert [membership.failure_backoff(n).total_seconds() / 60 for n in (1, 2, 3, 4, 5, 9)] == [1, 2, 4, 8, 10, 10]


def test_old_changes_are_pruned_after_the_retention_period(workspace, settings):
    settings.SEGMENT_CHANGE_RETENTION_DAYS = 30
    make_contact(workspace, external_id="anna", country="PL")
    segment = make_segment(workspace)
    now = timezone.now()
    recompute_membership(segment_id=segment.pk, trigger="manual", now=now - timedelta(days=31))
    make_contact(workspace, external_id="jan", country="PL")
    recompute_membership(segment_id=segment.pk, trigger="manual", now=now - timedelta(days=29))

    assert membership.prune_changes(now=now, batch_size=1) == 1

    assert changes(segment) == [("jan", "entered")]
    assert members(segment) == {"anna", "jan"}  # pruning the history does not touch membership
    assert SegmentSnapshot.objects.filter(segment=segment).count() == 2


def test_schedule_recompute_runs_after_commit(workspace, django_capture_on_commit_callbacks):
    make_contact(workspace, external_id="anna", country="PL")
    segment = make_segment(workspace)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        membership.schedule_recompute(segment_id=segment.pk, trigger="definition_change")
        assert not SegmentSnapshot.objects.filter(segment=segment).exists()

    assert callbacks  # deferred to the commit (which then also analyses the member table if it grew)
    snapshot = SegmentSnapshot.objects.get(segment=segment)
    assert (snapshot.trigger, snapshot.size) == ("definition_change", 1)


def test_schedule_recompute_refuses_an_unknown_trigger(workspace):
    with pytest.raises(ValueError):
        membership.schedule_recompute(segment_id=1, trigger="whenever")


def test_segments_do_not_share_members(workspace):
    make_contact(workspace, external_id="anna", country="PL", tags=["vip"])
    make_contact(workspace, external_id="jan", country="PL")
    poles = make_segment(workspace)
    vips = make_segment(workspace, definition=VIP, name="VIP")

    recompute_membership(segment_id=poles.pk, trigger="manual")
    recompute_membership(segment_id=vips.pk, trigger="manual")
    recompute_membership(segment_id=poles.pk, trigger="manual")

    assert members(poles) == {"anna", "jan"}
    assert members(vips) == {"anna"}


def test_a_catalog_cached_before_a_new_attribute_appeared_is_rebuilt(workspace):
    make_contact(workspace, external_id="anna", attributes={"plan": "pro"})
    segment = make_segment(workspace)
    recompute_membership(segment_id=segment.pk, trigger="manual")  # caches the catalog: no "shoe_size" yet
    make_contact(workspace, external_id="jan", attributes={"shoe_size": 44})
    Segment.objects.filter(pk=segment.pk).update(
        definition={"match": "all", "conditions": [
            {"type": "attribute", "field": "attributes.shoe_size", "op": "gt", "value": 40}]}
    )

    snapshot = recompute_membership(segment_id=segment.pk, trigger="definition_change")

    assert members(segment) == {"jan"}
    assert snapshot.entered == 1


def test_the_cached_catalog_follows_declared_attribute_types(workspace):
    make_contact(workspace, external_id="anna", attributes={"code": "7"})
    make_contact(workspace, external_id="jan", attributes={"code": 7})
    seven = {"match": "all", "conditions": [{"type": "attribute", "field": "attributes.code", "op": "eq", "value": 7}]}
    workspace.attribute_types = {"code": "number"}
    workspace.save()
    segment = make_segment(workspace, definition=seven)
    recompute_membership(segment_id=segment.pk, trigger="manual")
    assert members(segment) == {"jan"}  # only JSON numbers count for a number attribute

    workspace.attribute_types = {"code": "text"}
    workspace.save()
    Segment.objects.filter(pk=segment.pk).update(
        definition={"match": "all", "conditions": [
            {"type": "attribute", "field": "attributes.code", "op": "eq", "value": "7"}]}
    )
    recompute_membership(segment_id=segment.pk, trigger="definition_change")
    assert members(segment) == {"anna"}


def test_the_recompute_settings_do_not_leak_into_the_callers_transaction(workspace):
    if connection.vendor != "postgresql":
        pytest.skip("statement_timeout and work_mem are PostgreSQL settings")
    segment = make_segment(workspace)

    def current() -> tuple:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('statement_timeout'), current_setting('work_mem')")
            return cursor.fetchone()

    before = current()
    recompute_membership(segment_id=segment.pk, trigger="manual")  # inside the test's transaction

    assert current() == before
