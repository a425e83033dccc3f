"""The dispatcher and the Celery tasks: due segments oldest first, never twice, stuck ones released, failures kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError
from django.utils import timezone

from segments_app import dispatch, membership, tasks
from segments_app.models import Segment, SegmentSnapshot
from tests.factories import make_contact

POLISH = {"match": "all", "conditions": [{"type": "attribute", "field": "country", "op": "eq", "value": "PL"}]}


@pytest.fixture
def enqueued(monkeypatch) -> list[tuple]:
    """Recompute tasks sent to the broker (recorded instead of run)."""
    sent: list[tuple] = []
    monkeypatch.setattr(tasks.recompute_segment_task, "delay", lambda *args: sent.append(args))
    return sent


def make_segment(workspace, name: str, *, computed_minutes_ago: float | None, refresh_minutes: int = 15, **fields):
    computed_at = None if computed_minutes_ago is None else timezone.now() - timedelta(minutes=computed_minutes_ago)
    return Segment.objects.create(
        workspace=workspace,
        name=name,
        definition=POLISH,
        refresh_minutes=refresh_minutes,
        computed_at=computed_at,
        size=None if computed_at is None else 0,
        status="new" if computed_at is None else "fresh",
        **fields,
    )


def test_dispatcher_enqueues_due_segments_oldest_first(workspace, enqueued, django_capture_on_commit_callbacks):
    recent = make_segment(workspace, "recent", computed_minutes_ago=5)
    old = make_segment(workspace, "old", computed_minutes_ago=600)
    older = make_segment(workspace, "older", computed_minutes_ago=900)
    never = make_segment(workspace, "never", computed_minutes_ago=None)
    make_segment(workspace, "on demand", computed_minutes_ago=None, refresh_minutes=0)

    with django_capture_on_commit_callbacks(execute=True):
        result = dispatch.dispatch_due_segments()

    assert result.enqueued == [never.pk, older.pk, old.pk]
    assert enqueued == [(never.pk, "schedule"), (older.pk, "schedule"), (old.pk, "schedule")]
    statuses = dict(Segment.objects.values_list("name", "status"))
    assert statuses == {
        "recent": "fresh",
        "old": "computing",
        "older": "computing",
        "never": "computing",
        "on demand": "new",
    }
    assert recent.pk not in result.enqueued


def test_a_segment_is_due_one_dispatcher_tick_before_its_interval_ends(workspace, settings):
    settings.SEGMENT_DISPATCH_INTERVAL_S = 60
    almost = make_segment(workspace, "almost", computed_minutes_ago=14.5)  # due before the next tick
    make_segment(workspace, "later", computed_minutes_ago=13.5)

    assert [s.pk for s in dispatch.due_segments()] == [almost.pk]


def test_a_segment_is_never_dispatched_twice(workspace, enqueued, django_capture_on_commit_callbacks):
    segment = make_segment(workspace, "old", computed_minutes_ago=600)

    with django_capture_on_commit_callbacks(execute=True):
        first = dispatch.dispatch_due_segments()
        second = dispatch.dispatch_due_segments()

    assert first.enqueued == [segment.pk]
    assert second.enqueued == []
    assert enqueued == [(segment.pk, "schedule")]


def test_only_one_of_two_racing_claims_wins(workspace):
    segment = make_segment(workspace, "old", computed_minutes_ago=600)
    seen_by_first = dispatch.due_segments()[0]
    seen_by_second = dispatch.due_segments()[0]
    now = timezone.now()

    assert dispatch.claim_segment(seen_by_first, now=now) is True
    assert dispatch.claim_segment(seen_by_second, now=now) is False
    assert Segment.objects.get(pk=segment.pk).computing_since == now


def test_a_claim_loses_to_a_recompute_that_finished_meanwhile(workspace):
    make_contact(workspace, country="PL")
    segment = make_segment(workspace, "old", computed_minutes_ago=600)
    seen = dispatch.due_segments()[0]
    membership.recompute_membership(segment_id=segment.pk, trigger="manual")

    assert dispatch.claim_segment(seen, now=timezone.now()) is False


def test_a_stuck_segment_is_released_and_dispatched_again(
    workspace, enqueued, settings, django_capture_on_commit_callbacks
):
    settings.SEGMENT_STUCK_MINUTES = 30
    stuck = make_segment(workspace, "stuck", computed_minutes_ago=600, error_count=2)
    Segment.objects.filter(pk=stuck.pk).update(status="computing", computing_since=timezone.now() - timedelta(hours=1))
    busy = make_segment(workspace, "busy", computed_minutes_ago=600)
    Segment.objects.filter(pk=busy.pk).update(status="computing", computing_since=timezone.now() - timedelta(minutes=5))

    released = dispatch.release_stuck_segments()

    stuck.refresh_from_db()
    assert released == [stuck.pk]
    assert stuck.status == "failed"
    assert "longer than 30 minutes" in stuck.last_error
    assert stuck.error_count == 3
    with django_capture_on_commit_callbacks(execute=True):
        result = dispatch.dispatch_due_segments()
    assert result.enqueued == [stuck.pk]  # busy is still within its time


def test_a_failed_segment_waits_out_its_backoff(workspace, enqueued, django_capture_on_commit_callbacks):
    segment = make_segment(workspace, "broken", computed_minutes_ago=600)
    membership.record_failure(segment_id=segment.pk, error="boom")

    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch.dispatch_due_segments().enqueued == []
        later = timezone.now() + membership.failure_backoff(1) + timedelta(seconds=1)
        assert dispatch.dispatch_due_segments(now=later).enqueued == [segment.pk]


def test_an_unreachable_broker_is_recorded_instead_of_leaving_the_segment_computing(
    workspace, monkeypatch, django_capture_on_commit_callbacks
):
    from kombu.exceptions import OperationalError as BrokerError

    def refuse(*args):
        raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.recompute_segment_task, "delay", refuse)
    segment = make_segment(workspace, "old", computed_minutes_ago=600)

    with django_capture_on_commit_callbacks(execute=True):
        dispatch.dispatch_due_segments()

    segment.refresh_from_db()
    assert segment.status == "failed"
    assert "could not enqueue" in segment.last_error


def test_recompute_task_runs_the_service(workspace):
    make_contact(workspace, external_id="anna", country="PL")
    segment = make_segment(workspace, "never", computed_minutes_ago=None)
    Segment.objects.filter(pk=segment.pk).update(status="computing", computing_since=timezone.now())

    tasks.recompute_segment_task.apply(args=[segment.pk, "schedule"]).get()

    segment.refresh_from_db()
    assert (segment.status, segment.size, segment.computing_since) == ("fresh", 1, None)
    assert SegmentSnapshot.objects.get(segment=segment).trigger == "schedule"


def test_recompute_task_of_a_deleted_segment_does_nothing(db):
    tasks.recompute_segment_task.apply(args=[987654, "schedule"]).get()


def test_recompute_task_retries_database_errors_and_records_them(workspace, monkeypatch):
    from celery.exceptions import Retry

    segment = make_segment(workspace, "never", computed_minutes_ago=None)

    def unreachable(**kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(membership, "recompute_membership", unreachable)

    with pytest.raises(Retry):
        tasks.recompute_segment_task.apply(args=[segment.pk, "schedule"], throw=True)
    segment.refresh_from_db()
    assert (segment.status, segment.error_count) == ("failed", 1)
    assert "could not connect" in segment.last_error

    last_try = tasks.recompute_segment_task.max_retries
    with pytest.raises(OperationalError):  # retries used up: the error stays, recorded
        tasks.recompute_segment_task.apply(args=[segment.pk, "schedule"], retries=last_try, throw=True)
    segment.refresh_from_db()
    assert segment.error_count == 2


def test_tasks_acknowledge_late_and_have_time_limits():
    for task in (
        tasks.recompute_segment_task,
        tasks.dispatch_segments_task,
        tasks.realtime_task,
        tasks.prune_changes_task,
        tasks.deliver_segment_webhooks_task,
        tasks.deliver_webhooks_task,
    ):
        assert task.acks_late is True, task.name
        assert task.soft_time_limit and task.time_limit > task.soft_time_limit, task.name
        assert OperationalError in task.autoretry_for, task.name


def test_beat_runs_the_dispatcher_every_minute_and_keeps_the_other_entries(settings):
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["dispatch-segments"]["task"] == "segments_app.tasks.dispatch_segments_task"
    assert schedule["dispatch-segments"]["schedule"] == 60.0
    assert schedule["prune-segment-changes"]["task"] == "segments_app.tasks.prune_changes_task"
    assert "refresh-contact-stats" in schedule


def test_recompute_segments_command(workspace, other_workspace, capsys):
    make_contact(workspace, external_id="anna", country="PL")
    mine = make_segment(workspace, "mine", computed_minutes_ago=None)
    theirs = make_segment(other_workspace, "theirs", computed_minutes_ago=None)

    call_command("recompute_segments", "--workspace", workspace.name)

    assert "1 members, +1 -0" in capsys.readouterr().out
    assert SegmentSnapshot.objects.get(segment=mine).trigger == "manual"
    assert not SegmentSnapshot.objects.filter(segment=theirs).exists()
    call_command("recompute_segments", "--segment", str(theirs.pk))
    assert SegmentSnapshot.objects.filter(segment=theirs).exists()
    with pytest.raises(CommandError):
        call_command("recompute_segments", "--workspace", "nope")
    with pytest.raises(CommandError):
        call_command("recompute_segments", "--segment", "999999")
